// The main() of every whorl test: GoogleTest with whorl's logging kept to warnings and above, so
// test output shows failures, not connection chatter. WHORL_LOG=debug brings it all back.
#include <gtest/gtest.h>

#include <cstdlib>

#include "framework/base/log.h"

int main(int argc, char** argv) {
  if (std::getenv("WHORL_LOG") == nullptr) whorl::log::setLevel(whorl::log::Level::kWarning);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
