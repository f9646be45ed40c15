// The echo service's configuration (flags and config file) and its failure classification.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "examples/service/classify.h"
#include "examples/service/config.h"

namespace whorl::service {
namespace {

Result<ServiceConfig> parseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "echo_service");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return loadConfig(static_cast<int>(argv.size()), argv.data());
}

std::string writeTemp(const std::string& text) {
  std::string path = ::testing::TempDir() + "/echo-" +
                     std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".conf";
  std::ofstream(path) << text;
  return path;
}

TEST(ServiceConfig, DefaultsServeTlsOnPort8000) {
  auto c = parseArgs({});
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0], kDefaultListen);
  EXPECT_EQ(c->idleTimeout, std::chrono::seconds(300));
  EXPECT_EQ(c->sendTimeout, std::chrono::seconds(60));
  EXPECT_EQ(c->metricsMaxConnections, 16u);
  EXPECT_EQ(c->metricsTimeout, std::chrono::seconds(10));
  EXPECT_EQ(c->proxyProtocol, net::ProxyProtocolMode::kOff);
  EXPECT_EQ(c->logFormat, log::Format::kText);
}

TEST(ServiceConfig, FlagsInBothSpellingsAndRepeatedListen) {
  auto c = parseArgs({"--listen", "tcp:1", "--listen=tcp:2", "--idle-timeout=1.5",
                      "--handshake-timeout", "0.25", "--proxy-protocol=any", "--log-format",
                      "json", "--max-connections=7", "--shards=3"});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->listen, (std::vector<std::string>{"tcp:1", "tcp:2"}));
  EXPECT_EQ(c->idleTimeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c->handshakeTimeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c->proxyProtocol, net::ProxyProtocolMode::kAny);
  EXPECT_EQ(c->logFormat, log::Format::kJson);
  EXPECT_EQ(c->maxConnections, 7u);
  EXPECT_EQ(c->shards, 3);
}

TEST(ServiceConfig, TimeoutsAndMetricsLimitsFromFlagsAndFile) {
  auto c = parseArgs({"--send-timeout", "2.5", "--metrics-max-connections=3",
                      "--metrics-timeout", "0.5"});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->sendTimeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c->metricsMaxConnections, 3u);
  EXPECT_EQ(c->metricsTimeout, std::chrono::milliseconds(500));
  c = parseArgs({"--send-timeout=0"});  // off
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->sendTimeout, std::chrono::milliseconds(0));
  c = parseConfigText("send-timeout = 7\nmetrics-max-connections = 2\nmetrics-timeout = 4\n",
                      "test.conf");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->sendTimeout, std::chrono::seconds(7));
  EXPECT_EQ(c->metricsMaxConnections, 2u);
  EXPECT_EQ(c->metricsTimeout, std::chrono::seconds(4));
  for (const char* bad : {"--send-timeout=-1", "--metrics-timeout=0",
                          "--metrics-max-connections=0", "--metrics-max-connections=1025"}) {
    c = parseArgs({bad});
    ASSERT_FALSE(c) << bad;
    std::string flag(bad, std::string_view(bad).find('='));
    EXPECT_NE(c.status().message().find(flag), std::string::npos) << c.status().message();
  }
  c = parseConfigText("metrics-timeout = 1\nmetrics-max-connections = 0\n", "test.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("test.conf:2: --metrics-max-connections"),
            std::string::npos)
      << c.status().message();
}

TEST(ServiceConfig, BadValuesNameTheFlag) {
  auto c = parseArgs({"--proxy-protocol", "v3"});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("--proxy-protocol"), std::string::npos);
  c = parseArgs({"--handshake-timeout=0"});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("--handshake-timeout"), std::string::npos);
  c = parseArgs({"--idle-timeout=-1"});
  ASSERT_FALSE(c);
  c = parseArgs({"--log-format=xml"});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("text or json"), std::string::npos);
  c = parseArgs({"--no-such-flag=1"});
  ASSERT_FALSE(c);
}

TEST(ServiceConfig, FileHoldsTheSameKeysAndTheCommandLineWins) {
  std::string path = writeTemp(
      "# comment\n"
      "listen = tcp:1\n"
      "\n"
      "listen=tcp:2\n"
      "  idle-timeout = 2  \r\n"
      "proxy-protocol = v2\n");
  auto c = parseArgs({"--config", path});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->listen, (std::vector<std::string>{"tcp:1", "tcp:2"}));
  EXPECT_EQ(c->idleTimeout, std::chrono::seconds(2));
  EXPECT_EQ(c->proxyProtocol, net::ProxyProtocolMode::kV2);
  EXPECT_EQ(c->configFile, path);

  c = parseArgs({"--config=" + path, "--listen=tcp:3", "--idle-timeout=5"});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->listen, (std::vector<std::string>{"tcp:3"}));
  EXPECT_EQ(c->idleTimeout, std::chrono::seconds(5));
  EXPECT_EQ(c->proxyProtocol, net::ProxyProtocolMode::kV2);  // still from the file
}

TEST(ServiceConfig, FileErrorsNameFileAndLine) {
  std::string path = writeTemp("listen = tcp:1\nthis line has no equals sign\n");
  auto c = parseArgs({"--config", path});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find(path + ":2"), std::string::npos) << c.status().message();

  path = writeTemp("listen = tcp:1\ncolour = blue\n");
  c = parseArgs({"--config", path});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find(path + ":2: unknown flag --colour"), std::string::npos)
      << c.status().message();

  path = writeTemp("idle-timeout = 3\n# comment\nidle-timeout = -1\n");
  c = parseArgs({"--config", path});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find(path + ":3: --idle-timeout"), std::string::npos)
      << c.status().message();

  c = parseArgs({"--config", "/nonexistent/echo.conf"});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("/nonexistent/echo.conf"), std::string::npos);
}

TEST(Classify, HandshakeFailures) {
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTimeout, "TLS handshake timed out")),
            "timeout");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "the peer closed the connection during the TLS handshake")),
            "peer_closed");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "error:0A00009C:SSL routines::http request")),
            "not_tls");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "error:0A000102:SSL routines::unsupported protocol")),
            "version");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "error:0A0000C7:SSL routines::peer did not return a "
                                        "certificate")),
            "client_certificate");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "error:0A000076:SSL routines::no suitable signature "
                                        "algorithm")),
            "no_shared_cipher");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls,
                                        "error:0A000418:SSL routines::tlsv1 alert unknown ca")),
            "peer_alert");
  EXPECT_EQ(handshakeFailureKind(Status(Status::Code::kTls, "something new")), "other");
}

TEST(Classify, ConnectionEnds) {
  EXPECT_EQ(closeKind(Status::connectionDone()), "closed");
  EXPECT_EQ(closeKind(Status(Status::Code::kConnectionLost, "reset")), "lost");
  EXPECT_EQ(closeKind(Status(Status::Code::kAborted, "drain deadline")), "aborted");
  EXPECT_EQ(closeKind(Status(Status::Code::kTimeout, "handshake")), "timeout");
  EXPECT_EQ(closeKind(Status(Status::Code::kTimeout,
                             "send timeout: the peer accepted no data for 60 s (it stopped "
                             "reading); closing")),
            "send_timeout");
  EXPECT_EQ(closeKind(Status(Status::Code::kTls, "bad record mac")), "tls");
}

}  // namespace
}  // namespace whorl::service
