// WeakAnchor and WeakRef: references that read null once their target is gone, instead of
// dangling. The one idiom for "a callback or another object may outlive me".
//
//   class Listener {
//     WeakAnchor<Listener> anchor_{this};   // a member: cleared when the Listener is destroyed
//   };
//   WeakRef<Listener> ref = listener->anchor_.ref();
//   post([ref] { if (Listener* l = ref.get()) l->stop(); });   // null once it was freed
//
//   // A reference made before its target exists (filled in by whoever builds it):
//   WeakRef<Listener> slot = WeakRef<Listener>::unbound();      // get() is null
//   ... on the target's thread: WeakAnchor<Listener> anchor_{this, slot};   // now get() == this
//
// Ownership: the target owns its anchor; the anchor and the references share one small slot (a
// pointer), allocated by the first ref() (or by unbound()), freed with the last of them: an anchor
// nobody asks for a reference allocates nothing. Make the anchor the target's last member, so
// that references read null before any other member is destroyed.
//
// Threads: get(), the anchor's construction and destruction, and clear() belong to the target's
// thread (its shard): nothing is atomic but the slot's reference count. So references may be
// copied, moved and destroyed on any thread (a ListeningPort on the main thread holds references
// to listeners on the shards), but read only on the target's thread, where a null check followed
// by a use is safe because nothing else runs there meanwhile.
#pragma once

#include <memory>

namespace whorl {

template <typename T>
class WeakAnchor;

template <typename T>
class WeakRef {
 public:
  WeakRef() = default;
  // A reference to a target that does not exist yet: null until a WeakAnchor is built from it.
  static WeakRef unbound() { return WeakRef(std::make_shared<T*>(nullptr)); }

  // The target, or null once its anchor was destroyed or cleared (or before it was bound).
  T* get() const { return slot_ != nullptr ? *slot_ : nullptr; }
  explicit operator bool() const { return get() != nullptr; }

 private:
  friend class WeakAnchor<T>;
  explicit WeakRef(std::shared_ptr<T*> slot) : slot_(std::move(slot)) {}

  std::shared_ptr<T*> slot_;
};

template <typename T>
class WeakAnchor {
 public:
  explicit WeakAnchor(T* target) : target_(target) {}
  // Binds `unbound` (from WeakRef::unbound()) to `target`; an empty WeakRef binds nothing.
  WeakAnchor(T* target, const WeakRef<T>& unbound) : target_(target), slot_(unbound.slot_) {
    if (slot_ != nullptr) *slot_ = target;
  }
  ~WeakAnchor() { clear(); }
  // The target's address is what the references hold: an anchor does not move.
  WeakAnchor(const WeakAnchor&) = delete;
  WeakAnchor& operator=(const WeakAnchor&) = delete;

  WeakRef<T> ref() {
    if (slot_ == nullptr) slot_ = std::make_shared<T*>(target_);
    return WeakRef<T>(slot_);
  }
  // Every reference reads null from now on, including those made later: for a target that is
  // finished before it is destroyed (e.g. a connection after connectionLost).
  void clear() {
    target_ = nullptr;
    if (slot_ != nullptr) *slot_ = nullptr;
  }

 private:
  T* target_;
  std::shared_ptr<T*> slot_;
};

}  // namespace whorl
