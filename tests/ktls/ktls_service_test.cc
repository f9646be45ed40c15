// The echo service's connection stack (PROXY header -> admission -> TLS -> echo) with kernel TLS:
// the PROXY header is read before the TLS layer starts, so the exact reads that keep the
// kernel's records in the socket must still line up, and the service's metrics must count the
// connection as kernel TLS.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "examples/service/echo_connection.h"
#include "examples/service/service_metrics.h"
#include "tests/ktls/ktls_support.h"

namespace whorl::ktlstest {
namespace {

// A PROXY v2 header: TCP over IPv4 from `src:srcPort` to 127.0.0.1:`dstPort`.
std::string proxyV2(const char* src, uint16_t srcPort, uint16_t dstPort) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // version 2, PROXY
  h += '\x11';  // TCP over IPv4
  h += '\x00';
  h += '\x0c';  // 12 bytes of addresses
  in_addr a{}, b{};
  inet_pton(AF_INET, src, &a);
  inet_pton(AF_INET, "127.0.0.1", &b);
  h.append(reinterpret_cast<const char*>(&a), 4);
  h.append(reinterpret_cast<const char*>(&b), 4);
  uint16_t sp = htons(srcPort), dp = htons(dstPort);
  h.append(reinterpret_cast<const char*>(&sp), 2);
  h.append(reinterpret_cast<const char*>(&dp), 2);
  return h;
}

class KtlsService : public KtlsBase {};

TEST_F(KtlsService, ProxiedClientEchoesInKernelTlsAndIsCountedSo) {
  SKIP_WITHOUT_KTLS();
  const Case& c = kCases[0];
  auto statBefore = tlsStat();
  auto modesBefore = tls::tlsModeCounts();
  {
    service::ServiceMetrics metrics(rt_->shardCount());
    service::ServiceState state{metrics, {}};
    state.limits.maxConnections = 10;
    auto context = serverOptions(c, tls::KtlsMode::kRequire).context();
    ASSERT_TRUE(context.isOk()) << context.status().message();
    auto stack = std::make_shared<tls::TlsFactory>(
        *context, std::make_shared<service::ServiceFactory>(state, "ssl:test", true));
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    tcp.transport.proxyProtocol = net::ProxyProtocolMode::kV2;
    auto port = endpoint::TCP4ServerEndpoint(*rt_, 0, tcp)
                    .listen(std::make_shared<service::AdmissionFactory>(state, stack));
    ASSERT_TRUE(port.isOk()) << port.status().message();
    uint16_t p = (*port)->getHost().port();

    {
      RawClient client(p, clientOptions(c, tls::KtlsMode::kOff));
      // The header and the ClientHello may arrive in one read: the layer must get the rest.
      testutil::sendAll(client.fd(), proxyV2("203.0.113.9", 4242, p));
      ASSERT_TRUE(client.handshake());
      std::string payload(200 * 1024, 'k');
      for (size_t i = 0; i < payload.size(); i += 97) payload[i] = static_cast<char>('a' + i % 26);
      ASSERT_TRUE(client.send(payload));
      EXPECT_EQ(client.receive(payload.size()), payload);
      auto during = tlsStat();
      EXPECT_EQ(during["TlsCurrTxSw"] - statBefore["TlsCurrTxSw"], 1) << "the server encrypts in the kernel";
      EXPECT_EQ(during["TlsCurrRxSw"] - statBefore["TlsCurrRxSw"], 1) << "and decrypts there";
    }  // the client closes its socket
    auto deadline = std::chrono::steady_clock::now() + 20s;
    // The shard counts the close, then the open connection, in that order: wait for both.
    while ((metrics.closed.value("lost") + metrics.closed.value("closed") == 0 ||
            metrics.open.value() != 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);  // polling a counter another thread sets, with a deadline
    }
    EXPECT_EQ(metrics.accepted.value(), 1u);
    EXPECT_EQ(metrics.handshakesOk.value(), 1u);
    EXPECT_EQ(metrics.bytesReceived.value(), 200u * 1024);
    EXPECT_EQ(metrics.open.value(), 0);
    auto modes = tls::tlsModeCounts();
    EXPECT_EQ(modes.kernelTxRx - modesBefore.kernelTxRx, 1u);
    std::string text = metrics.render(*rt_);
    EXPECT_NE(text.find("whorl_tls_connections_total{mode=\"kernel_tx_rx\"}"), std::string::npos);
    EXPECT_NE(text.find("whorl_proxy_header_errors_total{shard=\"0\"} 0"), std::string::npos) << text;
    // ServiceState must outlive the connections: stop the shards before it goes.
    rt_->stop(0ms);
    rt_->join();
    rt_.reset();
  }
  auto after = tlsStat();
  EXPECT_EQ(after["TlsDecryptError"], statBefore["TlsDecryptError"]);
}

}  // namespace
}  // namespace whorl::ktlstest
