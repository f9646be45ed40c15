// BufferKeeper: whether one userspace-TLS connection keeps OpenSSL's record buffers between
// records, decided by how often it reads.
//
//   keeper_.noteRead(*session_, transport()->reactor().now());   // each read after the handshake
//   keeper_.release();                                          // the connection ends
//
// Every context sets SSL_MODE_RELEASE_BUFFERS so that idle connections hold no record buffers;
// OpenSSL then frees its ~17 KiB read and write buffers after each record and allocates them
// again for the next one: a malloc/free pair of that size per record each way, per request. A
// connection that reads twice within a second keeps them instead (it clears the mode). No timer
// tells when it goes quiet: the reads of its thread are the clock. Each read lets the least
// recently read keeper of the thread give its buffers back once that one has read nothing for a
// second, and a thread holds at most 256 keepers (about 34 KiB each) even if it reads nothing.
//
// The layer owns its keeper (a member) and the session; the keeper borrows the session while it
// keeps its buffers (it must be released before the session goes). Keepers are on their
// thread's list, most recently read first, and hold that list (shared) while they are on it.
#pragma once

#include <cstddef>
#include <memory>

#include "framework/api/reactor.h"
#include "framework/tls/session.h"

namespace whorl::tls {

class BufferKeeper {
 public:
  BufferKeeper() = default;
  ~BufferKeeper() { release(); }
  BufferKeeper(const BufferKeeper&) = delete;
  BufferKeeper& operator=(const BufferKeeper&) = delete;

  // `session` read (userspace TLS, after the handshake) at `now`.
  void noteRead(TlsSession& session, api::Reactor::Clock::time_point now);
  // Gives the buffers back (OpenSSL frees them after each record again); leaves the list.
  void release();

 private:
  struct ThreadList;
  static std::shared_ptr<ThreadList>& threadList();

  std::shared_ptr<ThreadList> list_;  // set while this connection keeps the buffers
  BufferKeeper* prev_ = nullptr;      // more recently read
  BufferKeeper* next_ = nullptr;      // less recently read
  TlsSession* session_ = nullptr;     // set while on the list
  bool readSeen_ = false;
  api::Reactor::Clock::time_point lastRead_{};
};

}  // namespace whorl::tls
