// Kernel TLS against OpenSSL's own command line peers, which stay in userspace (Debian's openssl
// has no -ktls): whorl as a kernel-mode server for `openssl s_client`, and as a kernel-mode client
// of `openssl s_server` (-rev reverses lines). Runs in the VMs with tools/ktls-vm --with-openssl;
// without the openssl binary the tests skip and say so.
#include <thread>

#include "tests/ktls/ktls_support.h"
#include "tests/subprocess.h"

namespace whorl {
namespace {

using namespace ktlstest;
using testutil::Subprocess;

std::vector<std::string> versionArgs(const Case& c) {
  if (c.version == tls::TLSVersion::TLSv1_3) return {"-tls1_3", "-ciphersuites", c.tls13};
  return {"-tls1_2", "-cipher", c.tls12};
}

// openssl s_client verifying the whorl server as "localhost" against the test root.
std::vector<std::string> sClient(const Case& c, uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> a = {opensslPath(),
                                "s_client",
                                "-connect",
                                "127.0.0.1:" + std::to_string(port),
                                "-CAfile",
                                cert("test/ca.pem"),
                                "-verify_return_error",
                                "-verify_hostname",
                                "localhost"};
  for (auto& v : versionArgs(c)) a.push_back(v);
  for (auto& e : extra) a.push_back(e);
  return a;
}

// openssl s_server with the test leaf and its intermediate, one connection, any free port.
std::vector<std::string> sServer(const Case& c, std::vector<std::string> extra) {
  std::vector<std::string> a = {opensslPath(), "s_server",
                                "-accept",     "127.0.0.1:0",
                                "-naccept",    "1",
                                "-cert",       cert("test/localhost.pem"),
                                "-cert_chain", cert("test/intermediate.pem")};
  for (auto& v : versionArgs(c)) a.push_back(v);
  for (auto& e : extra) a.push_back(e);
  return a;
}

// The port from s_server's "ACCEPT 127.0.0.1:PORT" line, 0 if it did not come.
uint16_t acceptedPort(Subprocess& server) {
  std::string out = server.readStdoutUntil("ACCEPT ", 20s);
  out = server.readStdoutUntil("\n", 2s);
  auto at = out.find("ACCEPT ");
  if (at == std::string::npos) return 0;
  auto eol = out.find('\n', at);
  if (eol == std::string::npos) return 0;
  auto colon = out.rfind(':', eol);
  return static_cast<uint16_t>(std::atoi(out.substr(colon + 1, eol - colon - 1).c_str()));
}

std::string lines(int n, const char* prefix) {
  std::string s;
  char buf[64];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%s %06d abcdefghijklmnopqrstuvwxyz\n", prefix, i);
    s += buf;
  }
  return s;
}

std::string reversedLines(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol - pos);
    out.append(line.rbegin(), line.rend());
    out += '\n';
    pos = eol + 1;
  }
  return out;
}

// A whorl client that writes `payload` after the handshake, collects what comes back and its
// mode, and reports how the connection ended. With closeAfter > 0 it calls loseConnection()
// once that many bytes came back.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::string received;
  std::string mode;
  api::Transport* transport = nullptr;  // use on the client's shard only
  bool lost = false;
  Status reason;
  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds t = 30s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, t, pred);
  }
};
class Collector : public api::Protocol {
 public:
  Collector(Collected* out, std::string payload, size_t closeAfter)
      : out_(out), payload_(std::move(payload)), closeAfter_(closeAfter) {}
  void handshakeCompleted() override {
    out_->transport = transport();
    if (!payload_.empty()) transport()->write(payload_);
  }
  void dataReceived(std::string_view d) override {
    std::lock_guard<std::mutex> l(out_->mu);
    if (out_->mode.empty()) out_->mode = api::toString(transport()->tlsMode());
    out_->received.append(d);
    got_ += d.size();
    if (closeAfter_ > 0 && got_ >= closeAfter_) transport()->loseConnection();
    out_->cv.notify_all();
  }
  void connectionLost(const Status& r) override {
    std::lock_guard<std::mutex> l(out_->mu);
    out_->lost = true;
    out_->transport = nullptr;
    out_->reason = r;
    out_->cv.notify_all();
  }

 private:
  Collected* out_;
  std::string payload_;
  size_t closeAfter_;
  size_t got_ = 0;
};

class KtlsOpenSSL : public KtlsBase, public ::testing::WithParamInterface<Case> {
 protected:
  // Connects a Collector to 127.0.0.1:port; returns the connect status.
  Status connectCollector(uint16_t port, const Case& c, Collected* out, std::string payload,
                          size_t closeAfter) {
    auto connected = std::make_shared<std::promise<Status>>();
    endpoint::SSL4ClientEndpoint(rt_->shard(0), "127.0.0.1", port,
                                 clientOptions(c, tls::KtlsMode::kRequire))
        .connect(api::Factory::forProtocol<Collector>(out, std::move(payload), closeAfter),
                 [connected](Result<api::Protocol*> r) { connected->set_value(r.status()); });
    auto f = connected->get_future();
    if (f.wait_for(30s) != std::future_status::ready)
      return Status(Status::Code::kTimeout, "connect");
    return f.get();
  }
};

// whorl server in the kernel, openssl s_client in userspace: 256 KiB of lines there and back,
// then s_client's close_notify (stdin EOF) ends it cleanly.
TEST_P(KtlsOpenSSL, KernelServerEchoesToOpensslSClient) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  Subprocess client(sClient(c, port, {"-quiet", "-no_ign_eof", "-nocommands", "-verify_quiet"}));
  ASSERT_TRUE(client.started());
  std::string payload = lines(256 * 1024 / 48, "s_client");
  // A writer thread: s_client's stdout would fill up while we are still writing its stdin.
  std::thread writer([&] { client.writeStdin(payload); });
  std::string out = client.readStdoutUntil(payload, 60s);
  writer.join();
  EXPECT_NE(out.find(payload), std::string::npos)
      << "echo incomplete: " << out.size()
      << " bytes; tail: " << out.substr(out.size() > 400 ? out.size() - 400 : 0);
  EXPECT_EQ(log_.firstMode(), "kernel TX+RX");
  auto during = tlsStat();
  EXPECT_EQ(during["TlsCurrTxSw"] - before["TlsCurrTxSw"], 1)
      << "one socket (ours) encrypts in the kernel";
  EXPECT_EQ(during["TlsCurrRxSw"] - before["TlsCurrRxSw"], 1);
  client.closeStdin();  // s_client sends close_notify and exits
  EXPECT_EQ(client.wait(20s), 0) << client.output().substr(0, 2000);
  Status s = log_.waitLoss();
  EXPECT_TRUE(s.isCleanClose()) << "the server saw s_client's close_notify: " << s.toString();
  auto after = tlsStat();
  EXPECT_EQ(after["TlsTxSw"] - before["TlsTxSw"], 1);
  EXPECT_EQ(after["TlsRxSw"] - before["TlsRxSw"], 1);
  EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"]);
}

// whorl client in the kernel against openssl s_server -rev: lines come back reversed; "CLOSE"
// makes s_server send close_notify, which the kernel hands us as an alert record.
TEST_P(KtlsOpenSSL, KernelClientTalksToOpensslSServerRev) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  auto before = tlsStat();
  Subprocess server(sServer(c, {"-rev"}));
  ASSERT_TRUE(server.started());
  uint16_t port = acceptedPort(server);
  ASSERT_NE(port, 0) << server.output();
  std::string text = lines(2000, "s_server");
  Collected got;
  ASSERT_TRUE(connectCollector(port, c, &got, text + "CLOSE\n", 0).isOk());
  std::string expected = reversedLines(text);
  EXPECT_TRUE(got.waitFor([&] { return got.lost; })) << "s_server did not close";
  {
    std::lock_guard<std::mutex> l(got.mu);
    EXPECT_EQ(got.received.size(), expected.size());
    EXPECT_TRUE(got.received == expected);
    EXPECT_EQ(got.mode, "kernel TX+RX");
    EXPECT_TRUE(got.reason.isCleanClose()) << "s_server's close_notify: " << got.reason.toString();
  }
  EXPECT_EQ(server.wait(20s), 0);
  EXPECT_NE(server.output().find("CONNECTION CLOSED"), std::string::npos) << server.output();
  auto after = tlsStat();
  EXPECT_EQ(after["TlsTxSw"] - before["TlsTxSw"], 1);
  EXPECT_EQ(after["TlsRxSw"] - before["TlsRxSw"], 1);
  EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"]);
}

INSTANTIATE_TEST_SUITE_P(Ciphers, KtlsOpenSSL, ::testing::ValuesIn(kCases), caseName);

// close_notify from a kernel-mode whorl, as OpenSSL sees it.
class KtlsOpenSSLClose : public KtlsOpenSSL {};

// The whorl server calls loseConnection(): s_client's SSL_read returns 0 with
// SSL_ERROR_ZERO_RETURN, which it reports as "closed" (a bare EOF is an error there, exit 1).
TEST_P(KtlsOpenSSLClose, OpensslSClientSeesOurCloseNotify) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire), /*closeOn=*/"bye");
  Subprocess client(sClient(c, port, {"-nocommands"}));
  ASSERT_TRUE(client.started());
  client.writeStdin("hello, then bye\n");
  // stdin stays open: only the server's close_notify can end s_client.
  std::string out = client.readStdoutUntil("\nclosed\n", 30s);
  EXPECT_NE(out.find("hello, then bye\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nclosed\n"), std::string::npos) << "no close_notify seen: " << out;
  EXPECT_EQ(client.wait(20s), 0);
  EXPECT_EQ(log_.firstMode(), "kernel TX+RX");
  EXPECT_TRUE(log_.waitLoss().isCleanClose());
}

// The whorl client writes and calls loseConnection(): s_server's SSL_read gets
// SSL_ERROR_ZERO_RETURN and prints "DONE" ("ERROR" on a bare EOF).
TEST_P(KtlsOpenSSLClose, OpensslSServerSeesOurCloseNotify) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  Subprocess server(sServer(c, {}));
  ASSERT_TRUE(server.started());
  uint16_t port = acceptedPort(server);
  ASSERT_NE(port, 0) << server.output();
  Collected got;
  ASSERT_TRUE(connectCollector(port, c, &got, "", 0).isOk());
  server.writeStdin("to the client\n");
  ASSERT_TRUE(got.waitFor([&] { return got.received == "to the client\n"; })) << got.received;
  {
    std::lock_guard<std::mutex> l(got.mu);
    EXPECT_EQ(got.mode, "kernel TX+RX");
  }
  EXPECT_EQ(server.output().find("DONE"), std::string::npos);
  // Write and close at once, on the client's shard: the data, then close_notify.
  rt_->shard(0).post([&got] {
    api::Transport* t = got.transport;
    if (t == nullptr) return;
    t->write("from the client\n");
    t->loseConnection();
  });
  std::string out = server.readStdoutUntil("DONE", 30s);
  EXPECT_NE(out.find("from the client\n"), std::string::npos) << out;
  EXPECT_NE(out.find("DONE"), std::string::npos) << "s_server did not see close_notify: " << out;
  EXPECT_EQ(out.find("ERROR"), std::string::npos) << out;
  EXPECT_TRUE(got.waitFor([&] { return got.lost; }));
  std::lock_guard<std::mutex> l(got.mu);
  EXPECT_TRUE(got.reason.isCleanClose()) << got.reason.toString();
}

const Case kCloseCases[] = {kCases[0], kCases[4]};
INSTANTIATE_TEST_SUITE_P(Versions, KtlsOpenSSLClose, ::testing::ValuesIn(kCloseCases), caseName);

// TLS 1.3 KeyUpdate typed into OpenSSL's tools ("K": update_requested, "k": not requested).
// From Linux 6.14 whorl follows it (new RX key; for "K" its own KeyUpdate and new TX key) and the
// data keeps flowing; before, the connection ends with the reason.
class KtlsOpenSSLKeyUpdate : public KtlsOpenSSL {};

TEST_P(KtlsOpenSSLKeyUpdate, OpensslSClientUpdatesTheKernelServersKeys) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  Subprocess client(sClient(c, port, {}));  // command letters on
  ASSERT_TRUE(client.started());
  client.writeStdin("before the update\n");
  ASSERT_NE(client.readStdoutUntil("\nbefore the update\n", 30s).find("\nbefore the update\n"),
            std::string::npos)
      << client.output();
  EXPECT_EQ(log_.firstMode(), "kernel TX+RX");
  client.writeStdin("K\n");
  client.readStdoutUntil("KEYUPDATE", 10s);
  client.writeStdin("after K\n");  // goes out behind the KeyUpdate
  if (!kernelCanRekey()) {
    Status s = log_.waitLoss();
    EXPECT_NE(s.message().find("KeyUpdate"), std::string::npos) << s.toString();
    EXPECT_NE(s.message().find("6.14"), std::string::npos) << s.toString();
    EXPECT_NE(client.wait(20s), 0) << "s_client saw the connection fail";
    return;
  }
  std::string out = client.readStdoutUntil("\nafter K\n", 30s);
  ASSERT_NE(out.find("\nafter K\n"), std::string::npos)
      << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
  std::string marker = out.substr(0, out.find("\nafter K\n") + 9);
  client.writeStdin("k\n");
  // The second KEYUPDATE line, then the echo under the newest keys.
  client.readStdoutUntil(marker + "KEYUPDATE", 10s);
  client.writeStdin("after k\n");
  out = client.readStdoutUntil("\nafter k\n", 30s);
  EXPECT_NE(out.find("\nafter k\n"), std::string::npos)
      << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
  auto during = tlsStat();
  EXPECT_EQ(during["TlsRxRekeyOk"] - before["TlsRxRekeyOk"], 2);
  EXPECT_EQ(during["TlsTxRekeyOk"] - before["TlsTxRekeyOk"], 1) << "only K asks for our update";
  EXPECT_EQ(during["TlsDecryptError"], before["TlsDecryptError"]);
  client.closeStdin();
  EXPECT_EQ(client.wait(20s), 0);
  EXPECT_TRUE(log_.waitLoss().isCleanClose());
}

TEST_P(KtlsOpenSSLKeyUpdate, OpensslSServerUpdatesTheKernelClientsKeys) {
  SKIP_WITHOUT_KTLS();
  SKIP_WITHOUT_OPENSSL();
  const Case& c = GetParam();
  auto before = tlsStat();
  Subprocess server(sServer(c, {}));
  ASSERT_TRUE(server.started());
  uint16_t port = acceptedPort(server);
  ASSERT_NE(port, 0) << server.output();
  Collected got;
  ASSERT_TRUE(connectCollector(port, c, &got, "", 0).isOk());
  server.writeStdin("before the update\n");
  ASSERT_TRUE(got.waitFor([&] { return got.received == "before the update\n"; })) << got.received;
  EXPECT_EQ(got.mode, "kernel TX+RX");
  server.writeStdin("K\n");
  server.readStdoutUntil("SSL_do_handshake -> ", 10s);
  server.writeStdin("after K\n");
  if (!kernelCanRekey()) {
    EXPECT_TRUE(got.waitFor([&] { return got.lost; }));
    std::lock_guard<std::mutex> l(got.mu);
    EXPECT_NE(got.reason.message().find("KeyUpdate"), std::string::npos) << got.reason.toString();
    EXPECT_EQ(got.received, "before the update\n");
    return;
  }
  ASSERT_TRUE(got.waitFor([&] {
    return got.received == "before the update\nafter K\n" || got.lost;
  })) << got.received;
  ASSERT_FALSE(got.lost) << got.reason.toString();
  // Our answer (KeyUpdate, then the new key) must have reached s_server for this to decrypt.
  rt_->shard(0).post([&got] {
    if (got.transport != nullptr) got.transport->write("client after K\n");
  });
  std::string out = server.readStdoutUntil("client after K\n", 30s);
  EXPECT_NE(out.find("client after K\n"), std::string::npos)
      << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
  auto during = tlsStat();
  EXPECT_EQ(during["TlsRxRekeyOk"] - before["TlsRxRekeyOk"], 1);
  EXPECT_EQ(during["TlsTxRekeyOk"] - before["TlsTxRekeyOk"], 1);
  EXPECT_EQ(during["TlsDecryptError"], before["TlsDecryptError"]);
  rt_->shard(0).post([&got] {
    if (got.transport != nullptr) got.transport->loseConnection();
  });
  out = server.readStdoutUntil("DONE", 30s);
  EXPECT_NE(out.find("DONE"), std::string::npos) << "close_notify under the new key";
  EXPECT_EQ(out.find("ERROR"), std::string::npos)
      << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
}

const Case kKeyUpdateCases[] = {kCases[0], kCases[1], kCases[2]};
INSTANTIATE_TEST_SUITE_P(Ciphers, KtlsOpenSSLKeyUpdate, ::testing::ValuesIn(kKeyUpdateCases),
                         caseName);

}  // namespace
}  // namespace whorl
