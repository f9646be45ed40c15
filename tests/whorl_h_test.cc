// framework/whorl.h on its own: it compiles under -Wall -Wextra -Werror, and the names a project
// uses (README.md, "Writing a protocol" and "TLS in whorl") need no other include.
#include "framework/whorl.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

namespace whorl {
namespace {

class Upper : public api::LineReceiver {
 public:
  void lineReceived(std::string_view line) override { sendLine(line); }
};

TEST(WhorlHeaderTest, NamesThePublicApi) {
  std::shared_ptr<api::Factory> factory = api::Factory::forProtocol<Upper>();
  EXPECT_NE(factory, nullptr);

  Result<Address> address = Address::parse("127.0.0.1", 8443);
  ASSERT_TRUE(address.isOk());
  EXPECT_EQ(address->toString(), "127.0.0.1:8443");

  reactor::RuntimeOptions options;
  options.shards = 1;
  reactor::Runtime runtime(options);  // not started: endpoints are only described
  auto bad = endpoint::serverFromString(runtime, "carrier-pigeon:8000");
  EXPECT_FALSE(bad.isOk());

  auto certificate = tls::PrivateCertificate::loadPEMFile("/nonexistent/server.pem");
  EXPECT_FALSE(certificate.isOk());

  metrics::Registry registry(1);
  registry.counter("whorl_test", "A counter.").inc(0);
  EXPECT_NE(registry.render().find("whorl_test_total"), std::string::npos);
}

}  // namespace
}  // namespace whorl
