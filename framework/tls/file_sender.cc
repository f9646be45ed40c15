#include "framework/tls/file_sender.h"

#include <utility>

namespace whorl::tls {

namespace {
constexpr uint64_t kChunk = 65536;
}  // namespace

void FileSender::queue(int fd, uint64_t offset, uint64_t length,
                       std::function<void(Status)> done) {
  files_.push_back({fd, offset, length, std::move(done), {}});
}

bool FileSender::holdWrite(std::string_view data) {
  if (files_.empty() || (files_.size() == 1 && files_.front().remaining == 0)) return false;
  files_.back().after.append(data);  // after the file(s) queued before this write
  return true;
}

bool FileSender::pump() {
  while (!files_.empty() && !reading_) {
    Host::Route route = host_.fileRoute();
    if (route == Host::Route::kStopped) break;
    File& f = files_.front();
    if (f.remaining == 0) {
      File done = std::move(files_.front());
      files_.pop_front();
      // Before the next file, whatever comes after it.
      if (!done.after.empty()) host_.writeFileBytes(done.after);
      if (done.done) done.done(Status::ok());
      continue;
    }
    // Resumed once the handshake, the kernel hand-over and our KeyUpdate are settled.
    if (route == Host::Route::kWait) return false;
    if (route == Host::Route::kSplice) {
      // The kernel encrypts: splice the rest, then what was written after it.
      File rest = std::move(files_.front());
      files_.pop_front();
      host_.transportBelow().sendFile(rest.fd, rest.offset, rest.remaining, std::move(rest.done));
      if (!rest.after.empty()) host_.transportBelow().write(rest.after);
      continue;
    }
    if (pausedBelow_) return false;  // setPausedBelow(false) and a pump continue
    read(f);
    return false;
  }
  return files_.empty();
}

void FileSender::read(File& f) {
  reading_ = true;
  auto self = anchor_.ref();
  size_t chunk = f.remaining < kChunk ? static_cast<size_t>(f.remaining) : kChunk;
  auto onRead = [this, self](Result<std::string_view> r) {
    if (!self) return;
    reading_ = false;
    if (files_.empty()) return;
    File& cur = files_.front();
    if (!r || r->empty()) {
      Status why = !r ? r.status() : api::fileEndedEarly(cur.remaining);
      auto done = std::move(cur.done);
      files_.pop_front();
      if (done) done(why);
      host_.fileFailed();
      return;
    }
    cur.offset += r->size();
    cur.remaining -= r->size();
    host_.writeFileBytes(*r);  // behind everything written before the file
    host_.pumpFiles();
  };
  if (api::LowerTransport* lower = host_.lower(); lower != nullptr) {
    lower->readFile(f.fd, f.offset, chunk, std::move(onRead));
  } else {
    api::readFileBlocking(f.fd, f.offset, chunk, std::move(onRead));
  }
}

void FileSender::abortAll() {
  while (!files_.empty()) {
    auto done = std::move(files_.front().done);
    files_.pop_front();
    if (done) done(Status(Status::Code::kAborted, "sendFile: the connection closed first"));
  }
}

}  // namespace whorl::tls
