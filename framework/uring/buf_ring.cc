#include "framework/uring/buf_ring.h"

#include <sys/mman.h>

namespace whorl::uring {

Result<std::unique_ptr<ProvidedBufferRing>> ProvidedBufferRing::create(
    Ring& ring, const BufferRingOptions& options) {
  if (options.count == 0 || (options.count & (options.count - 1)) != 0 || options.count > 32768) {
    return Status::invalidArgument("buffer ring count must be a power of two up to 32768");
  }
  std::unique_ptr<ProvidedBufferRing> br(new ProvidedBufferRing(ring, options));
  br->ringBytes_ = options.count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, br->ringBytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                   -1, 0);
  if (mem == MAP_FAILED) return Status::fromErrno(errno, "mmap buffer ring");
  br->br_ = static_cast<io_uring_buf_ring*>(mem);
  br->dataBytes_ = static_cast<size_t>(options.count) * options.size;
  mem = mmap(nullptr, br->dataBytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return Status::fromErrno(errno, "mmap receive buffers");
  br->base_ = static_cast<char*>(mem);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br->br_);
  reg.ring_entries = options.count;
  reg.bgid = options.groupId;
  int err = io_uring_register_buf_ring(ring.raw(), &reg, 0);
  if (err != 0) return Status::fromErrno(-err, "io_uring_register_buf_ring");
  br->registered_ = true;

  io_uring_buf_ring_init(br->br_);
  int mask = io_uring_buf_ring_mask(options.count);
  for (uint32_t i = 0; i < options.count; ++i) {
    io_uring_buf_ring_add(br->br_, br->base_ + static_cast<size_t>(i) * options.size,
                          options.size, static_cast<unsigned short>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br->br_, static_cast<int>(options.count));
  return br;
}

ProvidedBufferRing::~ProvidedBufferRing() {
  if (registered_) io_uring_unregister_buf_ring(ring_.raw(), options_.groupId);
  if (br_ != nullptr) munmap(br_, ringBytes_);
  if (base_ != nullptr) munmap(base_, dataBytes_);
}

void ProvidedBufferRing::recycle(uint16_t id) {
  io_uring_buf_ring_add(br_, base_ + static_cast<size_t>(id) * options_.size, options_.size, id,
                        io_uring_buf_ring_mask(options_.count), 0);
  io_uring_buf_ring_advance(br_, 1);
  if (outstanding_ > 0) --outstanding_;
}

}  // namespace whorl::uring
