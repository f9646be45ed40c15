// ByteBuffer: a contiguous FIFO of bytes, the unit of buffering on the data path.
//
//   ByteBuffer out;
//   out.append("hello ");
//   out.append("world");
//   send(fd, out.data(), out.size(), 0);   // then out.consume(bytesSent)
//
// Appends go to the back, consume() drops from the front in O(1); the storage is compacted when
// the consumed prefix outgrows the rest, so a buffer in steady use never reallocates. release()
// frees the storage of an empty buffer (idle connections keep no memory). Owns its bytes.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace whorl {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& o) noexcept { *this = std::move(o); }
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    capacity_ = o.capacity_;
    begin_ = o.begin_;
    end_ = o.end_;
    o.capacity_ = o.begin_ = o.end_ = 0;
    return *this;
  }

  const char* data() const { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return capacity_; }

  void append(std::string_view bytes) {
    if (bytes.empty()) return;
    char* dst = prepare(bytes.size());
    std::memcpy(dst, bytes.data(), bytes.size());
    end_ += bytes.size();
  }
  // Space for n more bytes at the back; commit(k) makes k of them part of the buffer.
  char* prepare(size_t n) {
    if (capacity_ - end_ < n) grow(n);
    return data_.get() + end_;
  }
  void commit(size_t n) { end_ += n; }
  void consume(size_t n) {
    begin_ += n < size() ? n : size();
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  void release() {
    data_.reset();
    capacity_ = begin_ = end_ = 0;
  }
  void swap(ByteBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(capacity_, o.capacity_);
    std::swap(begin_, o.begin_);
    std::swap(end_, o.end_);
  }

 private:
  void grow(size_t n) {
    size_t live = size();
    if (capacity_ - live >= n) {
      // Enough room once the consumed prefix is reclaimed: slide the live bytes down instead of
      // allocating, so steady use never reallocates.
      std::memmove(data_.get(), data(), live);
      begin_ = 0;
      end_ = live;
      return;
    }
    size_t cap = capacity_ ? capacity_ * 2 : 256;
    while (cap < live + n) cap *= 2;
    std::unique_ptr<char[]> fresh(new char[cap]);
    if (live) std::memcpy(fresh.get(), data(), live);
    data_ = std::move(fresh);
    capacity_ = cap;
    begin_ = 0;
    end_ = live;
  }

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace whorl
