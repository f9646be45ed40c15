// Tests for endpoint descriptions: parsing (escapes, errors) and the endpoints the strings build,
// including a real listen/connect round trip on a one-shard runtime.
#include "framework/endpoint/description.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/api/protocol.h"

namespace whorl::endpoint {
namespace {

using KV = std::pair<std::string, std::string>;
using std::chrono::seconds;

// ---- parseDescription -----------------------------------------------------------------------

TEST(ParseDescription, TypeAndPositional) {
  auto d = parseDescription("tcp:8000");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->type, "tcp");
  EXPECT_EQ(d->args, std::vector<std::string>{"8000"});
  EXPECT_TRUE(d->kwargs.empty());
}

TEST(ParseDescription, TypeOnly) {
  auto d = parseDescription("tcp");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->type, "tcp");
  EXPECT_TRUE(d->args.empty());
  EXPECT_TRUE(d->kwargs.empty());
}

TEST(ParseDescription, KeywordsKeepTheirOrder) {
  auto d = parseDescription("tcp:port=8000:interface=127.0.0.1:backlog=50");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->type, "tcp");
  EXPECT_TRUE(d->args.empty());
  EXPECT_EQ(d->kwargs,
            (std::vector<KV>{{"port", "8000"}, {"interface", "127.0.0.1"}, {"backlog", "50"}}));
  ASSERT_NE(d->kwarg("interface"), nullptr);
  EXPECT_EQ(*d->kwarg("interface"), "127.0.0.1");
  EXPECT_EQ(d->kwarg("host"), nullptr);
}

TEST(ParseDescription, MixedPositionalAndKeywords) {
  auto d = parseDescription("tcp:b=2:x:a=1:y");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->args, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(d->kwargs, (std::vector<KV>{{"b", "2"}, {"a", "1"}}));
}

TEST(ParseDescription, EscapedColons) {
  auto d = parseDescription("tcp6:8000:interface=\\:\\:1");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->type, "tcp6");
  EXPECT_EQ(d->args, std::vector<std::string>{"8000"});
  EXPECT_EQ(d->kwargs, (std::vector<KV>{{"interface", "::1"}}));
}

TEST(ParseDescription, EscapedBackslashEqualsAndOthers) {
  // "\\" is one backslash, "\=" a literal '=' even in a key, "\x" is just 'x'.
  auto d = parseDescription("t:a\\\\b:k\\=ey=v:\\x\\y");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->args, (std::vector<std::string>{"a\\b", "xy"}));
  EXPECT_EQ(d->kwargs, (std::vector<KV>{{"k=ey", "v"}}));
}

TEST(ParseDescription, OnlyTheFirstEqualsSplitsKeyAndValue) {
  auto d = parseDescription("t:k=v=w");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->kwargs, (std::vector<KV>{{"k", "v=w"}}));
}

TEST(ParseDescription, EmptyFieldsAreEmptyPositionalArgs) {
  auto d = parseDescription("t::b:");
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ(d->args, (std::vector<std::string>{"", "b", ""}));
  auto e = parseDescription("t:k=");
  ASSERT_TRUE(e.isOk()) << e.status().message();
  EXPECT_EQ(e->kwargs, (std::vector<KV>{{"k", ""}}));
}

void expectInvalid(const Status& s, const std::string& message) {
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.toString();
  EXPECT_EQ(s.message(), message);
}

TEST(ParseDescription, Errors) {
  expectInvalid(parseDescription("").status(), "empty endpoint description \"\"");
  expectInvalid(parseDescription(":8000").status(), "missing endpoint type in \":8000\"");
  expectInvalid(parseDescription("port=80").status(), "missing endpoint type in \"port=80\"");
  expectInvalid(parseDescription("tcp:8000\\").status(), "trailing backslash in \"tcp:8000\\\"");
  expectInvalid(parseDescription("\\").status(), "trailing backslash in \"\\\"");
  expectInvalid(parseDescription("tcp:=5").status(), "empty key in \"tcp:=5\"");
  expectInvalid(parseDescription("tcp:port=1:port=2").status(),
                "duplicate key 'port' in \"tcp:port=1:port=2\"");
}

// ---- serverFromString / clientFromString: which endpoint, which errors ----------------------

// RuntimeOptions{.shards = 1} would trip -Wmissing-field-initializers (-Wextra) under -Werror.
reactor::RuntimeOptions oneShard() {
  reactor::RuntimeOptions options;
  options.shards = 1;
  return options;
}

// A runtime that is never started: building endpoints and reporting errors needs no shard thread.
class FromStringTest : public ::testing::Test {
 protected:
  reactor::Runtime runtime_{oneShard()};

  Status serverError(std::string_view text) {
    auto e = serverFromString(runtime_, text);
    EXPECT_FALSE(e.isOk()) << text;
    return e.status();
  }
  Status clientError(std::string_view text) {
    auto e = clientFromString(runtime_.shard(0), text);
    EXPECT_FALSE(e.isOk()) << text;
    return e.status();
  }
};

TEST_F(FromStringTest, ServerTypes) {
  for (const char* text :
       {"tcp:8000", "tcp:port=8000:interface=127.0.0.1:backlog=50", "tcp:8000:127.0.0.1:50",
        "tcp:8000:interface=:backlog=1", "tcp:port=0"}) {
    auto e = serverFromString(runtime_, text);
    ASSERT_TRUE(e.isOk()) << text << ": " << e.status().message();
    EXPECT_NE(dynamic_cast<TCP4ServerEndpoint*>(e->get()), nullptr) << text;
  }
  for (const char* text : {"tcp6:8000", "tcp6:8000:interface=\\:\\:1",
                           "tcp6:port=1:interface=\\:\\:", "tcp6:65535:[\\:\\:1]"}) {
    auto e = serverFromString(runtime_, text);
    ASSERT_TRUE(e.isOk()) << text << ": " << e.status().message();
    EXPECT_NE(dynamic_cast<TCP6ServerEndpoint*>(e->get()), nullptr) << text;
  }
}

TEST_F(FromStringTest, ServerErrors) {
  expectInvalid(
      serverError("tcp:8000:interfce=x"),
      "unknown key 'interfce' in \"tcp:8000:interfce=x\" (known: port, interface, backlog)");
  expectInvalid(serverError("tcp:abc"), "port 'abc' is not a number 0-65535 in \"tcp:abc\"");
  expectInvalid(serverError("tcp:65536"), "port '65536' is not a number 0-65535 in \"tcp:65536\"");
  expectInvalid(serverError("tcp:-1"), "port '-1' is not a number 0-65535 in \"tcp:-1\"");
  expectInvalid(serverError("tcp: 80"), "port ' 80' is not a number 0-65535 in \"tcp: 80\"");
  expectInvalid(serverError("tcp:80x"), "port '80x' is not a number 0-65535 in \"tcp:80x\"");
  expectInvalid(serverError("tcp:"), "port '' is not a number 0-65535 in \"tcp:\"");
  expectInvalid(serverError("tcp6:port=99999"),
                "port '99999' is not a number 0-65535 in \"tcp6:port=99999\"");
  expectInvalid(serverError("udp:53"),
                "unknown endpoint type 'udp' in \"udp:53\" (supported: tcp, tcp6, ssl)");
  expectInvalid(serverError("TCP:53"),
                "unknown endpoint type 'TCP' in \"TCP:53\" (supported: tcp, tcp6, ssl)");
  expectInvalid(serverError("tcp"), "missing port in \"tcp\"");
  expectInvalid(serverError("tcp:interface=127.0.0.1"),
                "missing port in \"tcp:interface=127.0.0.1\"");
  expectInvalid(serverError(""), "empty endpoint description \"\"");
  expectInvalid(serverError("tcp:80\\"), "trailing backslash in \"tcp:80\\\"");
  expectInvalid(serverError("tcp:80:port=81"),
                "'port' given both positionally and as port= in \"tcp:80:port=81\"");
  // Unescaped colons split the address into more (empty) positional fields.
  expectInvalid(serverError("tcp6:port=1:interface=::"),
                "'port' given both positionally and as port= in \"tcp6:port=1:interface=::\"");
  expectInvalid(
      serverError("tcp:1:2:3:4"),
      "too many arguments in \"tcp:1:2:3:4\" (tcp takes at most 3: port, interface, backlog)");
  expectInvalid(serverError("tcp:80:interface=localhost"),
                "interface 'localhost' is not an IPv4 address in \"tcp:80:interface=localhost\"");
  expectInvalid(serverError("tcp:80:interface=\\:\\:1"),
                "interface '::1' is not an IPv4 address in \"tcp:80:interface=\\:\\:1\"");
  expectInvalid(serverError("tcp6:80:interface=127.0.0.1"),
                "interface '127.0.0.1' is not an IPv6 address in \"tcp6:80:interface=127.0.0.1\"");
  expectInvalid(serverError("tcp:80:backlog=many"),
                "backlog 'many' is not a positive number in \"tcp:80:backlog=many\"");
  expectInvalid(serverError("tcp:80:backlog=0"),
                "backlog '0' is not a positive number in \"tcp:80:backlog=0\"");
}

TEST_F(FromStringTest, ClientTypes) {
  for (const char* text : {"tcp:host=localhost:port=8000", "tcp:localhost:8000",
                           "tcp:port=1:host=127.0.0.1", "tcp:localhost:8000:timeout=0.25",
                           "tcp:host=\\:\\:1:port=65535:timeout=30", "tcp:localhost:port=80"}) {
    auto e = clientFromString(runtime_.shard(0), text);
    ASSERT_TRUE(e.isOk()) << text << ": " << e.status().message();
    EXPECT_NE(dynamic_cast<HostnameEndpoint*>(e->get()), nullptr) << text;
  }
}

TEST_F(FromStringTest, ClientErrors) {
  expectInvalid(clientError("tcp6:localhost:80"),
                "unknown endpoint type 'tcp6' in \"tcp6:localhost:80\" (supported: tcp, tls)");
  expectInvalid(clientError("tcp:port=80"), "missing host in \"tcp:port=80\"");
  expectInvalid(clientError("tcp:host=localhost"), "missing port in \"tcp:host=localhost\"");
  expectInvalid(clientError("tcp:localhost"), "missing port in \"tcp:localhost\"");
  expectInvalid(clientError("tcp:host=:port=80"), "empty host in \"tcp:host=:port=80\"");
  expectInvalid(clientError("tcp:localhost:0"),
                "port '0' is not a number 1-65535 in \"tcp:localhost:0\"");
  expectInvalid(clientError("tcp:localhost:http"),
                "port 'http' is not a number 1-65535 in \"tcp:localhost:http\"");
  expectInvalid(clientError("tcp:host=h:port=1:bindAddress=x"),
                "unknown key 'bindAddress' in \"tcp:host=h:port=1:bindAddress=x\" "
                "(known: host, port, timeout)");
  for (const char* bad : {"abc", "0", "-1", "nan", "inf", "1s", "", "1e300"}) {
    std::string text = std::string("tcp:h:1:timeout=") + bad;
    expectInvalid(clientError(text), std::string("timeout '") + bad +
                                         "' is not a positive number of seconds in \"" + text +
                                         "\"");
  }
  expectInvalid(clientError(""), "empty endpoint description \"\"");
  expectInvalid(clientError("tcp:h:1\\"), "trailing backslash in \"tcp:h:1\\\"");
}

// ---- Real sockets ----------------------------------------------------------------------------

class Echo : public api::Protocol {
 public:
  void dataReceived(std::string_view data) override { transport()->write(data); }
};

// Connects a blocking socket to `addr`, sends "x", and returns what comes back (one byte).
std::string echoOverSocket(const Address& addr) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  // A hung server fails the test instead of hanging it.
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string result;
  if (connect(fd, addr.addr(), addr.length()) != 0) {
    result = std::string("connect: ") + std::strerror(errno);
  } else if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
    result = std::string("send: ") + std::strerror(errno);
  } else {
    char c = 0;
    ssize_t n = recv(fd, &c, 1, 0);
    result = n == 1 ? std::string(1, c) : "recv returned " + std::to_string(n);
  }
  close(fd);
  return result;
}

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(runtime_.start().isOk()); }
  void TearDown() override {
    runtime_.stop(std::chrono::milliseconds(0));
    runtime_.join();
  }
  reactor::Runtime runtime_{oneShard()};
};

TEST_F(RuntimeTest, ServerFromStringListensOnPortZero) {
  auto server = serverFromString(runtime_, "tcp:0:interface=127.0.0.1");
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto port = (*server)->listen(api::Factory::forProtocol<Echo>());
  ASSERT_TRUE(port.isOk()) << port.status().message();
  const Address& host = (*port)->getHost();
  EXPECT_EQ(host.host(), "127.0.0.1");
  ASSERT_NE(host.port(), 0);
  EXPECT_EQ(echoOverSocket(host), "x");
}

TEST_F(RuntimeTest, Tcp6ServerFromStringListensOnLoopback) {
  auto server = serverFromString(runtime_, "tcp6:port=0:interface=\\:\\:1");
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto port = (*server)->listen(api::Factory::forProtocol<Echo>());
  if (!port.isOk() && port.status().errnum() == EADDRNOTAVAIL) {
    GTEST_SKIP() << "no IPv6 loopback here: " << port.status().message();
  }
  ASSERT_TRUE(port.isOk()) << port.status().message();
  const Address& host = (*port)->getHost();
  EXPECT_TRUE(host.isIPv6());
  EXPECT_EQ(host.host(), "::1");
  ASSERT_NE(host.port(), 0);
  EXPECT_EQ(echoOverSocket(host), "x");
}

// What a client connection reports back to the test thread (set on the shard thread).
struct Probe {
  std::promise<Status> connected;
  std::promise<std::string> echoed;
};

// Sends "hello" and reports the echo once all of it is back.
class Greeter : public api::Protocol {
 public:
  explicit Greeter(std::shared_ptr<Probe> probe) : probe_(std::move(probe)) {}
  void connectionMade() override { transport()->write("hello"); }
  void dataReceived(std::string_view data) override {
    received_.append(data);
    if (received_.size() >= 5 && !reported_) {
      reported_ = true;
      probe_->echoed.set_value(received_);
      transport()->loseConnection();
    }
  }

 private:
  std::shared_ptr<Probe> probe_;
  std::string received_;
  bool reported_ = false;
};

void expectClientEchoes(reactor::Runtime& runtime, const std::string& description) {
  SCOPED_TRACE(description);
  auto client = clientFromString(runtime.shard(0), description);
  ASSERT_TRUE(client.isOk()) << client.status().message();
  auto probe = std::make_shared<Probe>();
  auto connected = probe->connected.get_future();
  auto echoed = probe->echoed.get_future();
  (*client)->connect(api::Factory::forProtocol<Greeter>(probe), [probe](Result<api::Protocol*> p) {
    EXPECT_NE(reactor::Shard::current(), nullptr);  // runs on the shard
    probe->connected.set_value(p.isOk() ? Status::ok() : p.status());
  });
  ASSERT_EQ(connected.wait_for(seconds(10)), std::future_status::ready);
  Status s = connected.get();
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(echoed.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_EQ(echoed.get(), "hello");
}

TEST_F(RuntimeTest, ClientFromStringConnects) {
  auto server = serverFromString(runtime_, "tcp:0");
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto port = (*server)->listen(api::Factory::forProtocol<Echo>());
  ASSERT_TRUE(port.isOk()) << port.status().message();
  std::string p = std::to_string((*port)->getHost().port());
  expectClientEchoes(runtime_, "tcp:host=localhost:port=" + p + ":timeout=5");
  expectClientEchoes(runtime_, "tcp:127.0.0.1:" + p);
  expectClientEchoes(runtime_, "tcp:port=" + p + ":host=127.0.0.1:timeout=0.5");
}

TEST_F(RuntimeTest, ClientFromStringReportsRefusal) {
  // Bind a port and close it without listening: nothing accepts there.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  Address any = Address::loopbackIPv4(0);
  ASSERT_EQ(bind(fd, any.addr(), any.length()), 0);
  uint16_t port = Address::fromSocketName(fd).port();
  auto client = clientFromString(runtime_.shard(0), "tcp:127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(client.isOk()) << client.status().message();
  auto probe = std::make_shared<Probe>();
  auto connected = probe->connected.get_future();
  (*client)->connect(api::Factory::forProtocol<Greeter>(probe), [probe](Result<api::Protocol*> p) {
    probe->connected.set_value(p.isOk() ? Status::ok() : p.status());
  });
  ASSERT_EQ(connected.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_FALSE(connected.get().isOk());
  close(fd);
}


// ---- TLS strings ----------------------------------------------------------------------------

std::string certPath(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

TEST_F(FromStringTest, SslServerErrorsNameTheBadPart) {
  std::string key = certPath("test/localhost.pem");
  expectInvalid(serverError("ssl:8443"), "missing privateKey in \"ssl:8443\"");
  Status s = serverError("ssl:8443:privateKey=" + key + ":color=blue");
  EXPECT_NE(s.message().find("unknown key 'color'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("caCerts"), std::string::npos) << "lists the known keys: " << s.message();
  s = serverError("ssl:8443:privateKey=/nonexistent/key.pem");
  EXPECT_NE(s.message().find("privateKey: cannot read /nonexistent/key.pem"), std::string::npos) << s.message();
  s = serverError("ssl:8443:privateKey=" + certPath("test/mismatch.pem"));
  EXPECT_NE(s.message().find("private key does not match certificate"), std::string::npos) << s.message();
  s = serverError("ssl:8443:privateKey=" + key + ":tlsMinimum=TLSv9");
  EXPECT_NE(s.message().find("tlsMinimum: unknown TLS version 'TLSv9'"), std::string::npos) << s.message();
  s = serverError("ssl:8443:privateKey=" + key + ":tlsMinimum=1.3:tlsMaximum=1.2");
  EXPECT_NE(s.message().find("above the maximum"), std::string::npos) << s.message();
}

TEST(ServerSpec, SslSpecCarriesTheTlsOptions) {
  std::string key = certPath("test/localhost.pem");
  auto spec = serverSpecFromString("ssl:0:privateKey=" + key +
                                   ":alpn=h2,http/1.1:tlsMinimum=1.3:interface=127.0.0.1");
  ASSERT_TRUE(spec) << spec.status().message();
  ASSERT_TRUE(spec->tls.has_value());
  EXPECT_EQ(spec->tls->acceptableProtocols, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(spec->tcp.interface, "127.0.0.1");
  EXPECT_EQ(spec->family, AF_INET);
  auto tcp = serverSpecFromString("tcp6:8007:interface=\\:\\:1");
  ASSERT_TRUE(tcp) << tcp.status().message();
  EXPECT_FALSE(tcp->tls.has_value());
  EXPECT_EQ(tcp->family, AF_INET6);
  EXPECT_EQ(tcp->port, 8007);
  for (const char* bad : {":alpn=", ":alpn=h2,", ":alpn=,h2"}) {
    auto s = serverSpecFromString("ssl:0:privateKey=" + key + bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.status().message().find("alpn"), std::string::npos) << s.status().message();
  }
}

// A file in the test's scratch directory holding `text`.
std::string scratchFile(const std::string& name, const std::string& text) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string fileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(ServerSpec, SslKeyAndCertificateFiles) {
  std::string key = certPath("test/localhost.key");
  // certKey names the certificate; a chain after it counts only in a file that holds the key too.
  auto spec = serverSpecFromString("ssl:0:privateKey=" + key +
                                   ":certKey=" + certPath("test/localhost-chain.pem"));
  ASSERT_TRUE(spec) << spec.status().message();
  EXPECT_EQ(spec->tls->certificate.commonName(), "localhost");
  EXPECT_TRUE(spec->tls->extraCertChain.empty());
  std::string combined = scratchFile("combined.pem", fileText(certPath("test/localhost.pem")) +
                                                         fileText(certPath("test/intermediate.pem")));
  spec = serverSpecFromString("ssl:0:privateKey=" + combined);
  ASSERT_TRUE(spec) << spec.status().message();
  ASSERT_EQ(spec->tls->extraCertChain.size(), 1u);
  EXPECT_EQ(spec->tls->extraCertChain[0].commonName(), "whorl Test Intermediate CA");

  auto error = [](const std::string& text) {
    auto s = serverSpecFromString(text);
    EXPECT_FALSE(s) << text;
    return s ? std::string() : s.status().message();
  };
  std::string m = error("ssl:0:privateKey=" + key + ":certKey=/nonexistent/cert.pem");
  EXPECT_NE(m.find("certKey: cannot read /nonexistent/cert.pem"), std::string::npos) << m;
  std::string crt = certPath("test/localhost.crt");
  m = error("ssl:0:privateKey=" + crt);
  EXPECT_NE(m.find("privateKey: " + crt + ": no PEM private key found"), std::string::npos) << m;
  m = error("ssl:0:privateKey=" + key + ":certKey=" + key);
  EXPECT_NE(m.find("certKey: " + key + ": no PEM certificate found"), std::string::npos) << m;
}

// A self-signed certificate with a 512-bit RSA key, key first, as one PEM text.
std::string weakIdentityPem() {
  EVP_PKEY* key = EVP_RSA_gen(512);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("weak.example"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_X509(out, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(out);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

// Only building the TLS context finds some problems (here OpenSSL's security level, which
// depends on the other options): parsing builds it so that they are reported at once.
TEST(ServerSpec, SslOptionsOnlyOpenSslJudgesAreCheckedWhenParsing) {
  std::string weak = scratchFile("weak.pem", weakIdentityPem());
  auto spec = serverSpecFromString("ssl:0:privateKey=" + weak);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.status().message().find("ee key too small"), std::string::npos)
      << spec.status().message();
  // Allowing TLS 1.0 lowers the security level to 0, where the key is accepted.
  spec = serverSpecFromString("ssl:0:privateKey=" + weak + ":tlsMinimum=1.0");
  EXPECT_TRUE(spec) << spec.status().message();
}

TEST_F(FromStringTest, TlsClientErrors) {
  Status s = clientError("tls:localhost:443:trustRoots=/nonexistent");
  EXPECT_NE(s.message().find("trustRoots:"), std::string::npos) << s.message();
  s = clientError("tls:localhost:443:verify=no");
  EXPECT_NE(s.message().find("unknown key 'verify'"), std::string::npos) << s.message();
}

class TlsGreeter : public Greeter {
 public:
  using Greeter::Greeter;
  void handshakeCompleted() override { handshook = true; }
  bool handshook = false;
};

TEST_F(RuntimeTest, SslServerAndTlsClientFromStrings) {
  auto server = serverFromString(
      runtime_, "ssl:0:privateKey=" + certPath("test/localhost.pem") +
                    ":extraCertChain=" + certPath("test/intermediate.pem") + ":interface=127.0.0.1");
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto port = (*server)->listen(api::Factory::forProtocol<Echo>());
  ASSERT_TRUE(port.isOk()) << port.status().message();
  std::string p = std::to_string((*port)->getHost().port());
  expectClientEchoes(runtime_, "tls:localhost:" + p + ":trustRoots=" + certPath("test/ca.pem"));
  // The wrong authority: the connect fails, naming the verification problem.
  auto client = clientFromString(runtime_.shard(0),
                                 "tls:localhost:" + p + ":trustRoots=" + certPath("public.pem"));
  ASSERT_TRUE(client.isOk()) << client.status().message();
  auto probe = std::make_shared<Probe>();
  auto connected = probe->connected.get_future();
  (*client)->connect(api::Factory::forProtocol<Greeter>(probe), [probe](Result<api::Protocol*> r) {
    probe->connected.set_value(r.isOk() ? Status::ok() : r.status());
  });
  ASSERT_EQ(connected.wait_for(seconds(10)), std::future_status::ready);
  Status s = connected.get();
  EXPECT_EQ(s.code(), Status::Code::kTls) << s.toString();
  EXPECT_NE(s.message().find("certificate verify failed"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace whorl::endpoint
