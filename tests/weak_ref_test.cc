// Tests for WeakAnchor / WeakRef (framework/base/weak_ref.h): references read the target until its
// anchor goes or is cleared, then null; an unbound reference reads null until an anchor binds it;
// references may be copied and dropped on other threads (run under --config=tsan).
#include "framework/base/weak_ref.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace whorl {
namespace {

struct Target {
  int value = 7;
  WeakAnchor<Target> anchor{this};
};

TEST(WeakRefTest, EmptyReferenceIsNull) {
  WeakRef<Target> ref;
  EXPECT_EQ(ref.get(), nullptr);
  EXPECT_FALSE(ref);
}

TEST(WeakRefTest, ReadsTheTargetUntilItIsDestroyed) {
  auto target = std::make_unique<Target>();
  WeakRef<Target> ref = target->anchor.ref();
  WeakRef<Target> copy = ref;
  ASSERT_EQ(ref.get(), target.get());
  EXPECT_EQ(copy.get()->value, 7);
  target.reset();
  EXPECT_EQ(ref.get(), nullptr);
  EXPECT_EQ(copy.get(), nullptr);
  EXPECT_FALSE(copy);
}

TEST(WeakRefTest, ReferencesOutlivingTheirTargetAreHarmless) {
  WeakRef<Target> ref;
  {
    Target target;
    ref = target.anchor.ref();
  }
  WeakRef<Target> later = ref;
  EXPECT_EQ(later.get(), nullptr);
}

TEST(WeakRefTest, ClearEndsEveryReferenceIncludingLaterOnes) {
  Target target;
  WeakRef<Target> before = target.anchor.ref();
  target.anchor.clear();
  EXPECT_EQ(before.get(), nullptr);
  EXPECT_EQ(target.anchor.ref().get(), nullptr);
}

TEST(WeakRefTest, ClearBeforeAnyReference) {
  Target target;
  target.anchor.clear();
  EXPECT_EQ(target.anchor.ref().get(), nullptr);
}

// A target whose reference was made before it (as a ListeningPort's are, before the shards
// start their listeners).
struct Late {
  explicit Late(const WeakRef<Late>& slot) : anchor(this, slot) {}
  WeakAnchor<Late> anchor;
};

TEST(WeakRefTest, UnboundReferenceIsNullUntilAnAnchorBindsIt) {
  WeakRef<Late> slot = WeakRef<Late>::unbound();
  WeakRef<Late> copy = slot;
  EXPECT_EQ(slot.get(), nullptr);
  auto late = std::make_unique<Late>(slot);
  EXPECT_EQ(slot.get(), late.get());
  EXPECT_EQ(copy.get(), late.get());
  EXPECT_EQ(late->anchor.ref().get(), late.get()) << "ref() shares the bound slot";
  late.reset();
  EXPECT_EQ(slot.get(), nullptr);
}

TEST(WeakRefTest, EmptyReferenceBindsNothing) {
  Late late{WeakRef<Late>()};
  EXPECT_EQ(late.anchor.ref().get(), &late);
}

// The count is the only shared state another thread touches: copies made and dropped there race
// with nothing, not even with the anchor being destroyed on the target's thread.
TEST(WeakRefTest, ReferencesMayBeCopiedAndDroppedOnOtherThreads) {
  auto target = std::make_unique<Target>();
  WeakRef<Target> ref = target->anchor.ref();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([ref] {
      for (int i = 0; i < 10000; ++i) {
        WeakRef<Target> copy = ref;
        WeakRef<Target> moved = std::move(copy);
      }
    });
  }
  target.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ref.get(), nullptr);
}

}  // namespace
}  // namespace whorl
