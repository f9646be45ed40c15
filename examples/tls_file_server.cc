// tls_file_server: serves a directory over HTTPS with Transport::sendFile. Over kernel TLS the
// file pages are spliced to the socket and encrypted by the kernel (no user-space copy); in
// userspace TLS they are read and encrypted chunk by chunk, paced by the connection.
//
//   bazel run //examples:tls_file_server -- --root /usr/share/doc --port 8443
//   curl --cacert certs/public.pem --resolve example.com:8443:127.0.0.1 https://example.com:8443/README
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "framework/base/files.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/http/request_receiver.h"
#include "framework/http/response.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

namespace {

// GET /path HTTP/1.1 -> 200 with the file, 404, 400; keep-alive unless the client closes.
// Requests pipelined behind a file wait until it is out (holdRequests).
class FileServer : public http::RequestReceiver {
 public:
  explicit FileServer(std::string root) : root_(std::move(root)) {}

  void connectionLost(const Status&) override { closeFile(); }

  void requestReceived(const http::Request& request) override {
    bool close = !request.http11() || request.connectionClose;
    if (request.method != "GET" && request.method != "HEAD") {
      return reply(405, "only GET and HEAD\n", close);
    }
    std::string path(request.path());
    if (path.empty() || path[0] != '/' || path.find("..") != std::string::npos) {
      return reply(400, "bad path\n", true);
    }
    if (path.back() == '/') path += "index.html";
    int fd = open((root_ + path).c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      if (fd >= 0) ::close(fd);
      return reply(404, "not found\n", close);
    }
    http::ResponseHead head;
    head.contentType = "application/octet-stream";
    head.contentLength = static_cast<uint64_t>(st.st_size);
    if (close) head.connection = http::ConnectionField::kClose;
    transport()->write(http::formatResponseHead(head));
    if (request.method == "HEAD" || st.st_size == 0) {
      ::close(fd);
      if (close) transport()->loseConnection();
      return;
    }
    fd_ = fd;
    holdRequests();
    transport()->sendFile(fd, 0, static_cast<uint64_t>(st.st_size), [this, close](Status s) {
      closeFile();
      if (!s.isOk()) {
        WHORL_LOG(kWarning, "sendFile: %s", s.message().c_str());
        return;
      }
      if (close) {
        transport()->loseConnection();
        return;
      }
      resumeRequests();  // the requests that arrived meanwhile
    });
  }

 private:
  void reply(int code, std::string_view body, bool close) {
    http::ResponseHead head;
    head.status = code;
    head.contentType = "text/plain";
    head.contentLength = body.size();
    if (close) head.connection = http::ConnectionField::kClose;
    transport()->writeSequence({http::formatResponseHead(head), body});
    if (close) transport()->loseConnection();
  }

  void closeFile() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::string root_;
  int fd_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string root = ".";
  std::string certPath = "certs/server.pem";
  std::string ktls = "auto";
  Flags flags("tls_file_server", "Serves a directory over HTTPS with sendFile (kernel TLS where available).");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("root", &root, "directory to serve");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("ktls", &ktls, "kernel TLS: auto, off or require");
  flags.parseOrExit(argc, argv);

  auto mode = tls::parseKtlsMode(ktls);
  if (!mode) {
    std::fprintf(stderr, "tls_file_server: --ktls: %s\n", mode.status().message().c_str());
    return 2;
  }
  auto cert = tls::PrivateCertificate::loadPEMFile(findDataFile(certPath));
  if (!cert) {
    std::fprintf(stderr, "tls_file_server: %s\n", cert.status().message().c_str());
    return 1;
  }
  auto options = cert->options();
  options.ktls = *mode;
  reactor::RuntimeOptions ro;
  ro.shards = shards;
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "tls_file_server: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<FileServer>(root), options, interface);
  if (!listening) {
    std::fprintf(stderr, "tls_file_server: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "HTTPS file server for %s listening on %s; stop with Ctrl-C", root.c_str(),
            (*listening)->getHost().toString().c_str());
  return runtime.run();
}
