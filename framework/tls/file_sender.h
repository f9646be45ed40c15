// FileSender: Transport::sendFile for a TLS connection, whenever the transport below cannot
// simply splice the file (the kernel does not make the records, or something waits ahead of the
// file): files wait in a queue, are read 64 KiB at a time, paced by the transport below, and
// given to the layer to encrypt; what the application writes meanwhile waits behind the file it
// follows, so that bytes leave in the order they were given.
//
//   // In TlsLayer, its Host:
//   files_.queue(fd, offset, length, std::move(done));   // Upper::sendFile
//   pumpFiles();                                         // -> files_.pump()
//   if (files_.holdWrite(data)) return;                  // Upper::write behind a queued file
//
// Where a file's bytes go is the layer's choice (Host::fileRoute): nowhere yet while the
// handshake, the kernel hand-over or a KeyUpdate is under way; spliced by the transport below
// once the kernel encrypts and nothing written before waits; else read here and encrypted by the
// layer. Reads go through the LowerTransport so that they do not block the loop (pread over a
// plain Transport).
//
// The layer owns the sender (a member). The sender owns the queue and each file's `done`, which
// it calls once: sent, failed, or the connection closed first (abortAll). The application owns
// the file descriptors and keeps them open until `done`.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "framework/api/lower_transport.h"
#include "framework/api/transport.h"
#include "framework/base/status.h"
#include "framework/base/weak_ref.h"

namespace whorl::tls {

class FileSender {
 public:
  // What the sender needs from the layer it serves (TlsLayer).
  class Host {
   public:
    // Where a file's next bytes go now.
    enum class Route {
      kStopped,  // nowhere ever: the connection is lost or aborted
      kWait,     // nowhere yet: a handshake, kernel hand-over or KeyUpdate is under way
      kSplice,   // to the kernel, which encrypts: the transport below sends the rest of the file
      kRead,     // read here, then given to writeFileBytes
    };
    virtual Route fileRoute() = 0;
    // Bytes of a file (or written after one), in order with the application's writes.
    virtual void writeFileBytes(std::string_view bytes) = 0;
    // pump(), then whatever waited for the queue to empty (a close).
    virtual void pumpFiles() = 0;
    // A file could not be read (its `done` has the reason): the connection aborts.
    virtual void fileFailed() = 0;
    // The layer's transport: the connection as a whole (it may wrap the LowerTransport).
    virtual api::Transport& transportBelow() = 0;
    // Null over a plain Transport: files are then read with pread.
    virtual api::LowerTransport* lower() = 0;

   protected:
    ~Host() = default;
  };

  explicit FileSender(Host& host) : host_(host) {}
  FileSender(const FileSender&) = delete;
  FileSender& operator=(const FileSender&) = delete;

  bool empty() const { return files_.empty(); }
  // Appends a file to the queue; pump() sends it.
  void queue(int fd, uint64_t offset, uint64_t length, std::function<void(Status)> done);
  // A write while a file is still to go: kept to follow the last queued file (true), or not
  // (false: nothing is queued ahead of it).
  bool holdWrite(std::string_view data);
  // Sends what can go now. True when it stopped because the queue is empty; false when a file
  // waits (a read under way pumps again when it completes).
  bool pump();
  // The transport below paused (true) or resumed its protocol: reads wait meanwhile.
  void setPausedBelow(bool paused) { pausedBelow_ = paused; }
  // The connection is gone: every queued file's `done` gets kAborted.
  void abortAll();

 private:
  struct File {
    int fd;
    uint64_t offset;
    uint64_t remaining;
    std::function<void(Status)> done;
    std::string after;  // written by the application after this file
  };

  void read(File& file);

  Host& host_;
  // A list, not a deque: an empty std::deque allocates ~600 bytes, on every idle connection.
  std::list<File> files_;
  // A read's callback checks it before touching this sender (which dies with its layer). Last.
  WeakAnchor<FileSender> anchor_{this};
  bool reading_ = false;
  bool pausedBelow_ = false;
};

}  // namespace whorl::tls
