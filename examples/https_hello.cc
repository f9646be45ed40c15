// https_hello: a minimal HTTP/1.1 server over TLS for curl, wrk and comparisons with nginx. Any
// GET (or HEAD) of any path answers 200 "hello world\n"; other methods get 405. Connections are
// kept alive (HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"),
// pipelined requests in one read are all answered, request bodies (Content-Length) are skipped.
// A malformed request line or header, or a header block over 16 KiB, gets 400 and the connection
// is closed; so does a body framed with Transfer-Encoding (501), which this server does not parse.
// ALPN offers http/1.1 and http/1.0 (like nginx; a client offering neither fails the handshake).
//
//   bazel run -c opt //examples:https_hello -- --port 8443 --shards 4
//   curl --cacert certs/public.pem --resolve example.com:8443:127.0.0.1 https://example.com:8443/
//   wrk -t4 -c64 -d10s https://127.0.0.1:8443/
//
// Per request the parser only looks at string_views of the received bytes (no allocation unless
// a request is split across reads) and answers with one write of a prebuilt response.
#include <array>
#include <cstdio>
#include <string>
#include <string_view>

#include "framework/base/files.h"
#include "framework/api/protocol.h"
#include "framework/base/flags.h"
#include "framework/base/http_syntax.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;  // request line + headers + the empty line

using http::fieldValueOk;
using http::iequals;
using http::isToken;
using http::targetOk;
using http::trimOws;

// Prebuilt responses: one per (kind, connection handling), each sent with a single write.
enum Kind { kHello, kHelloHead, kMethodNotAllowed, kBadRequest, kNotImplemented, kKinds };
enum Conn { kKeepAlive11, kKeepAlive10, kClose, kConns };

std::string buildResponse(Kind kind, Conn conn) {
  std::string_view status, extra, body;
  bool head = false;
  switch (kind) {
    case kHello:
    case kHelloHead:
      status = "200 OK";
      body = "hello world\n";
      head = kind == kHelloHead;
      break;
    case kMethodNotAllowed:
      status = "405 Method Not Allowed";
      extra = "Allow: GET, HEAD\r\n";
      body = "method not allowed\n";
      break;
    case kBadRequest:
      status = "400 Bad Request";
      body = "bad request\n";
      break;
    case kNotImplemented:
      status = "501 Not Implemented";
      body = "not implemented\n";
      break;
    case kKinds:
      break;
  }
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\n";
  r += extra;
  r += "Content-Length: " + std::to_string(body.size()) + "\r\nContent-Type: text/plain\r\n";
  if (conn == kKeepAlive10) r += "Connection: keep-alive\r\n";
  if (conn == kClose) r += "Connection: close\r\n";
  r += "\r\n";
  if (!head) r += body;
  return r;
}

using ResponseTable = std::array<std::array<std::string, kConns>, kKinds>;
const ResponseTable& responses() {
  static const ResponseTable table = [] {
    ResponseTable t;
    for (int k = 0; k < kKinds; ++k) {
      for (int c = 0; c < kConns; ++c) {
        t[k][c] = buildResponse(static_cast<Kind>(k), static_cast<Conn>(c));
      }
    }
    return t;
  }();
  return table;
}

class HelloHttp : public api::Protocol {
 public:
  void dataReceived(std::string_view data) override {
    if (done_) return;
    if (pending_.empty()) {
      // The common case: whole requests in this read, parsed in place.
      size_t used = process(data);
      if (!done_ && used < data.size()) pending_.assign(data.substr(used));
      return;
    }
    pending_.append(data);
    size_t used = process(pending_);
    if (done_) {
      pending_.clear();
    } else {
      pending_.erase(0, used);
    }
  }

 private:
  // Answers every complete request in `in`; returns how many bytes were consumed.
  size_t process(std::string_view in) {
    size_t pos = 0;
    while (!done_) {
      if (bodyLeft_ > 0) {
        size_t n = std::min<uint64_t>(bodyLeft_, in.size() - pos);
        pos += n;
        bodyLeft_ -= n;
        if (bodyLeft_ > 0) break;
      }
      // Empty lines before a request line are ignored (RFC 9112 §2.2).
      while (in.size() - pos >= 2 && in[pos] == '\r' && in[pos + 1] == '\n') pos += 2;
      if (pos == in.size()) break;
      std::string_view rest = in.substr(pos);
      size_t end = rest.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (rest.size() > kMaxHeaderBytes) reject(kBadRequest);
        break;
      }
      if (end + 4 > kMaxHeaderBytes) {
        reject(kBadRequest);
        break;
      }
      handleRequest(rest.substr(0, end + 2));  // every line with its CRLF
      pos += end + 4;
    }
    return pos;
  }

  // `block`: the request line and header lines, each ending in CRLF.
  void handleRequest(std::string_view block) {
    size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return reject(kBadRequest);
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return reject(kBadRequest);
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!isToken(method) || !targetOk(target)) return reject(kBadRequest);
    bool http11;
    if (version == "HTTP/1.1") {
      http11 = true;
    } else if (version == "HTTP/1.0") {
      http11 = false;
    } else {
      return reject(kBadRequest);
    }

    bool close = false, keepAlive = false, chunked = false, haveLength = false;
    uint64_t length = 0;
    int hosts = 0;
    for (size_t pos = eol + 2; pos < block.size();) {
      size_t e = block.find("\r\n", pos);
      std::string_view field = block.substr(pos, e - pos);
      pos = e + 2;
      size_t colon = field.find(':');
      if (colon == std::string_view::npos) return reject(kBadRequest);
      std::string_view name = field.substr(0, colon);
      std::string_view value = trimOws(field.substr(colon + 1));
      // A space before the colon or a folded line (leading space) is not a token: rejected.
      if (!isToken(name) || !fieldValueOk(value)) return reject(kBadRequest);
      switch (name.size()) {
        case 4:
          if (iequals(name, "host")) ++hosts;
          break;
        case 10:
          if (iequals(name, "connection")) connectionTokens(value, &close, &keepAlive);
          break;
        case 14:
          if (iequals(name, "content-length")) {
            uint64_t n = 0;
            if (value.empty() || value.size() > 15) return reject(kBadRequest);
            for (char c : value) {
              if (c < '0' || c > '9') return reject(kBadRequest);
              n = n * 10 + static_cast<uint64_t>(c - '0');
            }
            if (haveLength && n != length) return reject(kBadRequest);
            haveLength = true;
            length = n;
          }
          break;
        case 17:
          if (iequals(name, "transfer-encoding")) chunked = true;
          break;
        default:
          break;
      }
    }
    if (http11 && hosts != 1) return reject(kBadRequest);  // RFC 9112 §3.2
    if (chunked) return reject(kNotImplemented);

    bool persist = http11 ? !close : (keepAlive && !close);
    Conn conn = !persist ? kClose : (http11 ? kKeepAlive11 : kKeepAlive10);
    Kind kind = method == "GET" ? kHello : method == "HEAD" ? kHelloHead : kMethodNotAllowed;
    transport()->write(responses()[kind][conn]);
    bodyLeft_ = length;
    if (!persist) {
      done_ = true;
      transport()->loseConnection();
    }
  }

  static void connectionTokens(std::string_view value, bool* close, bool* keepAlive) {
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view token = trimOws(value.substr(0, comma));
      if (iequals(token, "close")) *close = true;
      if (iequals(token, "keep-alive")) *keepAlive = true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }

  void reject(Kind kind) {
    done_ = true;
    transport()->write(responses()[kind][kClose]);
    transport()->loseConnection();
  }

  std::string pending_;  // the start of a request split across reads
  uint64_t bodyLeft_ = 0;
  bool done_ = false;  // closing: ignore further input
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  double drain = 10;
  Flags flags("https_hello", "Minimal HTTP/1.1 keep-alive server over TLS: GET answers hello world.");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);

  auto certificate = tls::PrivateCertificate::loadPEMFile(findDataFile(certPath));
  if (!certificate) {
    std::fprintf(stderr, "https_hello: %s\n", certificate.status().message().c_str());
    return 1;
  }
  tls::CertificateOptions options = certificate->options();
  options.acceptableProtocols = {"http/1.1", "http/1.0"};  // as nginx does
  (void)responses();  // build the table before the shards start

  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "https_hello: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<HelloHttp>(), options, interface);
  if (!listening) {
    std::fprintf(stderr, "https_hello: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "HTTPS hello server listening on %s as %s with %d shard%s; stop with Ctrl-C",
            (*listening)->getHost().toString().c_str(), certificate->toString().c_str(),
            runtime.shardCount(), runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
