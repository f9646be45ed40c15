// ProvidedBufferRing: a kernel-registered ring of receive buffers (IORING_REGISTER_PBUF_RING).
//
//   auto br = ProvidedBufferRing::create(ring, {.groupId = 0, .count = 512, .size = 16384});
//   io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
//   sqe->flags |= IOSQE_BUFFER_SELECT;
//   sqe->buf_group = (*br)->groupId();
//   ...on completion with IORING_CQE_F_BUFFER:
//   uint16_t id = ProvidedBufferRing::bufferId(flags);
//   use((*br)->view(id, res));
//   (*br)->recycle(id);                          // hand the buffer back to the kernel
//
// Receives pick a buffer when data arrives, so idle connections pin no memory. When every buffer
// is in use the kernel ends multishot receives with -ENOBUFS; recycle and re-arm. Owns the buffer
// memory and the registration; belongs to the Ring's thread and must die before the Ring.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "framework/base/status.h"
#include "framework/uring/ring.h"

namespace whorl::uring {

struct BufferRingOptions {
  uint16_t groupId = 0;
  uint32_t count = 512;   // a power of two, at most 32768
  uint32_t size = 16384;  // bytes per buffer
};

class ProvidedBufferRing {
 public:
  static Result<std::unique_ptr<ProvidedBufferRing>> create(Ring& ring,
                                                            const BufferRingOptions& options);
  ~ProvidedBufferRing();
  ProvidedBufferRing(const ProvidedBufferRing&) = delete;
  ProvidedBufferRing& operator=(const ProvidedBufferRing&) = delete;

  static uint16_t bufferId(uint32_t cqeFlags) {
    return static_cast<uint16_t>(cqeFlags >> IORING_CQE_BUFFER_SHIFT);
  }
  uint16_t groupId() const { return options_.groupId; }
  uint32_t bufferSize() const { return options_.size; }
  uint32_t count() const { return options_.count; }
  std::string_view view(uint16_t id, size_t len) const {
    return {base_ + static_cast<size_t>(id) * options_.size, len};
  }
  void recycle(uint16_t id);
  // Buffers currently handed to the application (taken by the kernel, not yet recycled).
  uint32_t outstanding() const { return outstanding_; }
  void noteTaken() { ++outstanding_; }

 private:
  ProvidedBufferRing(Ring& ring, const BufferRingOptions& options)
      : ring_(ring), options_(options) {}
  Ring& ring_;
  BufferRingOptions options_;
  io_uring_buf_ring* br_ = nullptr;
  size_t ringBytes_ = 0;
  char* base_ = nullptr;
  size_t dataBytes_ = 0;
  uint32_t outstanding_ = 0;
  bool registered_ = false;
};

}  // namespace whorl::uring
