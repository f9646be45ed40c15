// Log events with fields, in text and JSON: what log pipelines parse.
#include <gtest/gtest.h>

#include "framework/base/log.h"

namespace whorl::log {
namespace {

TEST(LogFields, TextQuotesOnlyWhatNeedsIt) {
  std::string line = formatFields(Format::kText, "connection closed",
                                  {{"peer", "203.0.113.7:5123"},
                                   {"bytes_in", uint64_t{42}},
                                   {"resumed", true},
                                   {"empty", ""},
                                   {"reason", "peer closed: \"bye\"\nforged=1"}});
  EXPECT_EQ(line,
            "connection closed peer=203.0.113.7:5123 bytes_in=42 resumed=true empty=\"\" "
            "reason=\"peer closed: \\\"bye\\\"\\nforged=1\"");
}

TEST(LogFields, JsonEscapesEverythingAPeerControls) {
  std::string line = formatFields(Format::kJson, "closed",
                                  {{"peer", "[::1]:443"},
                                   {"duration_ms", 1.5},
                                   {"n", int64_t{-3}},
                                   {"reason", std::string_view("a\"b\\c\x01", 6)}});
  EXPECT_EQ(line,
            "\"msg\":\"closed\",\"peer\":\"[::1]:443\",\"duration_ms\":1.500,\"n\":-3,"
            "\"reason\":\"a\\\"b\\\\c\\u0001\"}");
}

TEST(LogFields, ParseFormat) {
  Format f = Format::kText;
  EXPECT_TRUE(parseFormat("json", &f));
  EXPECT_EQ(f, Format::kJson);
  EXPECT_TRUE(parseFormat("text", &f));
  EXPECT_EQ(f, Format::kText);
  EXPECT_FALSE(parseFormat("xml", &f));
}

}  // namespace
}  // namespace whorl::log
