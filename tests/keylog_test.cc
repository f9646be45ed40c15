// SSLKEYLOGFILE: opt-in NSS key-log lines so a person can decrypt a capture in Wireshark (as the
// seed suggests for checking the switch to TLS). Its own binary: the variable is read once, when
// the first TLS context is built.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

TEST(KeylogTest, WritesNssKeyLogLinesWhenAskedTo) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/keys.log";
  setenv("SSLKEYLOGFILE", path.c_str(), 1);
  auto pc = PrivateCertificate::loadPEMFile(test::certPath("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk());
  auto serverOptions = pc->options();
  serverOptions.extraCertChain = {
      *Certificate::loadPEMFile(test::certPath("test/intermediate.pem"))};
  auto server = serverOptions.context();
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto ca = Certificate::loadPEMFile(test::certPath("test/ca.pem"));
  auto client = optionsForClientTLS("localhost", trustRootFromCertificates({*ca}));
  ASSERT_TRUE(client.isOk()) << client.status().message();
  auto cs = TlsSession::create(client.context());
  auto ss = TlsSession::create(*server);
  ASSERT_TRUE(cs.isOk() && ss.isOk());
  Status st = test::handshakeInMemory(**cs, **ss);
  EXPECT_TRUE(st.isOk()) << st.message();

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  // TLS 1.3: handshake and traffic secrets for both sides, each logged by both peers.
  // "LABEL <client random: 64 hex> <secret: 64 or 96 hex>", LABEL one of the TLS 1.3 names.
  auto isHex = [](const std::string& h) {
    return h.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  int matched = 0;
  std::istringstream lines(log);
  for (std::string l; std::getline(lines, l);) {
    std::istringstream fields(l);
    std::string label, random, secret, extra;
    fields >> label >> random >> secret;
    bool knownLabel = label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET" ||
                      label == "SERVER_HANDSHAKE_TRAFFIC_SECRET" ||
                      label == "CLIENT_TRAFFIC_SECRET_0" || label == "SERVER_TRAFFIC_SECRET_0" ||
                      label == "EXPORTER_SECRET";
    if (knownLabel && random.size() == 64 && isHex(random) &&
        (secret.size() == 64 || secret.size() == 96) && isHex(secret) && !(fields >> extra)) {
      ++matched;
    }
  }
  EXPECT_GE(matched, 8) << log;
  EXPECT_NE(log.find("CLIENT_TRAFFIC_SECRET_0 "), std::string::npos) << log;
  EXPECT_NE(log.find("SERVER_HANDSHAKE_TRAFFIC_SECRET "), std::string::npos) << log;
}

}  // namespace
}  // namespace whorl::tls
