// Op: the completion handler of an io_uring operation, which knows whether the operation is still
// in the ring. A completion's user_data is the Op*.
//
//   struct RecvDone : Op {
//     void complete(int res, uint32_t flags) override { conn->onRecv(res, flags); }
//     Conn* conn;
//   };
//   io_uring_sqe* sqe = ring.sqe();
//   io_uring_prep_recv(sqe, fd, buf, len, 0);
//   Ring::setOp(sqe, &recvDone);            // recvDone.armed() from here...
//   ...
//   if (!recvDone.armed()) freeConn();      // ...until its last completion was delivered
//
// Ops are usually members of the object that issued them, and that object must outlive every
// completion: it is freed only once none of its ops is armed(). The ring keeps the count, so
// owners do not: Ring::setOp arms an op, and Ring::dispatch disarms it just before it delivers the
// op's last completion, the one without IORING_CQE_F_MORE (a multishot op stays armed across the
// completions flagged MORE and ends with one that is not, also when it is cancelled). Inside
// complete() armed() already says whether more completions will come. An op submitted again
// before it completed (a cancel sent twice) stays armed until every submission has ended. Never
// set IOSQE_CQE_SKIP_SUCCESS on an op yourself (it would stay armed): Ring::prepSendQuiet does,
// and completes the op itself when the kernel posts nothing. user_data 0 means "no
// Op": its completion is dropped (used for fire-and-forget cancels). Like its Ring, an Op belongs
// to one thread.
#pragma once

#include <cstdint>

namespace whorl::uring {

class Op {
 public:
  // res: the kernel's result (-errno on failure). flags: IORING_CQE_F_* (MORE, BUFFER, ...).
  virtual void complete(int res, uint32_t flags) = 0;

  // In the ring: submitted (Ring::setOp), and its last completion not yet delivered.
  bool armed() const { return submissions_ != 0; }
  // A quiet send (Ring::prepSendQuiet) that has not been settled: it may well have sent
  // everything already, but its completion comes only with the ring's next dispatch.
  bool quiet() const { return quiet_; }

 protected:
  ~Op() = default;

 private:
  friend class Ring;
  uint32_t submissions_ = 0;  // submissions whose last completion is not delivered yet
  bool quiet_ = false;  // a quiet send (Ring::prepSendQuiet) that the ring has not settled yet
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
