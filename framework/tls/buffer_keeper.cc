#include "framework/tls/buffer_keeper.h"

#include <openssl/ssl.h>

#include <chrono>

namespace whorl::tls {

namespace {
// A connection that reads twice within kBufferIdle keeps the buffers until it has read nothing
// for that long; at most kMaxBufferKeepers connections per thread keep them.
constexpr std::chrono::seconds kBufferIdle{1};
constexpr size_t kMaxBufferKeepers = 256;
}  // namespace

// This thread's keepers, a list in the order of their last read.
struct BufferKeeper::ThreadList {
  BufferKeeper* head = nullptr;  // most recently read
  BufferKeeper* tail = nullptr;  // least recently read
  size_t count = 0;

  void pushFront(BufferKeeper* k) {
    k->prev_ = nullptr;
    k->next_ = head;
    if (head != nullptr) head->prev_ = k;
    head = k;
    if (tail == nullptr) tail = k;
    ++count;
  }
  void unlink(BufferKeeper* k) {
    (k->prev_ != nullptr ? k->prev_->next_ : head) = k->next_;
    (k->next_ != nullptr ? k->next_->prev_ : tail) = k->prev_;
    k->prev_ = k->next_ = nullptr;
    --count;
  }
};

std::shared_ptr<BufferKeeper::ThreadList>& BufferKeeper::threadList() {
  thread_local std::shared_ptr<ThreadList> list = std::make_shared<ThreadList>();
  return list;
}

void BufferKeeper::noteRead(TlsSession& session, api::Reactor::Clock::time_point now) {
  ThreadList& keepers = *threadList();
  if (list_ != nullptr) {
    lastRead_ = now;
    if (keepers.head != this) {
      keepers.unlink(this);
      keepers.pushFront(this);
    }
  } else {
    SSL* ssl = session.ssl();
    if ((SSL_get_mode(ssl) & SSL_MODE_RELEASE_BUFFERS) == 0) return;  // kept anyway
    bool busy = readSeen_ && now - lastRead_ < kBufferIdle;
    readSeen_ = true;
    lastRead_ = now;
    if (busy) {
      session_ = &session;
      list_ = threadList();
      keepers.pushFront(this);
      SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
      if (keepers.count > kMaxBufferKeepers) keepers.tail->release();
    }
  }
  BufferKeeper* last = keepers.tail;
  if (last != nullptr && last != this && now - last->lastRead_ >= kBufferIdle) last->release();
}

void BufferKeeper::release() {
  if (list_ == nullptr) return;
  list_->unlink(this);
  list_.reset();
  if (session_ == nullptr) return;
  // No SSL call of this connection is under way (reads and writes return before anything else
  // runs). SSL_free_buffers refuses while part of a record is buffered; the mode then frees that
  // buffer once the record is complete.
  SSL* ssl = session_->ssl();
  SSL_free_buffers(ssl);
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  session_->releaseBuffers();
}

}  // namespace whorl::tls
