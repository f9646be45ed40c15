// Op: one in-flight io_uring operation. A completion's user_data is the Op*.
//
//   struct RecvDone : Op {
//     void complete(int res, uint32_t flags) override { conn->onRecv(res, flags); }
//     Conn* conn;
//   };
//   io_uring_sqe* sqe = ring.sqe();
//   io_uring_prep_recv(sqe, fd, buf, len, 0);
//   Ring::setOp(sqe, &recvDone);
//
// Ops are usually members of the object that issued them; that object must outlive every
// completion (count them in flight, free the owner after the last one). user_data 0 means "no Op":
// its completion is dropped (used for fire-and-forget cancels).
#pragma once

#include <cstdint>

namespace whorl::uring {

class Op {
 public:
  // res: the kernel's result (-errno on failure). flags: IORING_CQE_F_* (MORE, BUFFER, ...).
  virtual void complete(int res, uint32_t flags) = 0;

 protected:
  ~Op() = default;
};

// An Op that forwards to a member function: MemberOp<Conn, &Conn::onRecv> recvOp{this};
template <typename T, void (T::*Fn)(int, uint32_t)>
class MemberOp final : public Op {
 public:
  explicit MemberOp(T* owner) : owner_(owner) {}
  void complete(int res, uint32_t flags) override { (owner_->*Fn)(res, flags); }

 private:
  T* owner_;
};

}  // namespace whorl::uring
