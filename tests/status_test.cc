// Status and Result<T>: values, messages, and what a caller's mistake does (value() on an error
// aborts with the status message instead of throwing std::bad_variant_access).
#include "framework/base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace whorl {
namespace {

Result<int> parsePort(std::string_view s) {
  if (s == "8000") return 8000;
  return Status::invalidArgument("'" + std::string(s) + "' is not a port");
}

TEST(ResultTest, ValueAndStatus) {
  auto ok = parsePort("8000");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok.value(), 8000);
  EXPECT_EQ(*ok, 8000);
  EXPECT_TRUE(ok.status().isOk());
  auto bad = parsePort("80x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "'80x' is not a port");
  // An ok Status is no value: it becomes an error saying so.
  Result<int> empty = Status::ok();
  EXPECT_FALSE(empty.isOk());
}

TEST(ResultTest, MoveOnlyValuesAndArrow) {
  Result<std::unique_ptr<std::string>> r = std::make_unique<std::string>("hello");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(**r, "hello");
  EXPECT_EQ(r->get()->size(), 5u);
  std::unique_ptr<std::string> taken = std::move(r).value();
  EXPECT_EQ(*taken, "hello");
  const Result<std::string> c = std::string("const");
  EXPECT_EQ(c.value(), "const");
  EXPECT_EQ(c->size(), 5u);
}

using ResultDeathTest = ::testing::Test;

TEST_F(ResultDeathTest, ValueOnAnErrorAbortsWithTheMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto bad = parsePort("80x");
  EXPECT_DEATH((void)bad.value(), "Result::value\\(\\) on an error: '80x' is not a port");
  EXPECT_DEATH((void)*bad, "Result::value\\(\\) on an error: '80x' is not a port");
  const Result<std::string> c = Status(Status::Code::kTimeout, "connect timed out");
  EXPECT_DEATH((void)c->size(), "Result::value\\(\\) on an error: connect timed out");
  EXPECT_DEATH((void)std::move(bad).value(), "on an error: '80x' is not a port");
}

}  // namespace
}  // namespace whorl
