#pragma once
// The on-disk part of a route's mirror queue (sync.mirror.spool_dir, docs/sync.md "Queue,
// outages and overflow"): once the in-memory queue holds sync.mirror.max_queue_bytes, new
// transactions are appended to a file instead, and the replay reads them back in order as
// the memory queue empties. The file is scratch space of this process: not fsynced, emptied
// (truncated) when the spool drains and removed when the process ends (a sidecar that dies loses
// its spool as it loses its memory queue; verify finds what was not replayed).
//
// Records: u32 length, then the MirrorTxn's fields (session, side, answers, commit time,
// fingerprint, outcome, parameters, messages) in this process's byte order. The ack-sync
// completion (`done`) stays in memory, keyed by the record's sequence number.
//
// Thread-safety: none; RouteMirror calls it under its mutex.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/runtime/mirror_sink.hpp"

namespace pgshift::mirror {

class Spool {
 public:
  Spool() = default;
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Opens (creating) `dir`/`name`; false with `error` set when it cannot.
  bool open(const std::string& dir, const std::string& name, std::string& error);
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Appends `txn`; false with `error` set when the write failed (the record is not kept).
  bool append(std::shared_ptr<proxy::MirrorTxn> txn, std::string& error);
  // Reads the oldest records back, at least one when any, until `max_bytes` of them.
  std::vector<std::shared_ptr<proxy::MirrorTxn>> take(std::uint64_t max_bytes, std::string& error);
  // Drops everything; returns the ack-sync completions of the dropped records.
  std::vector<std::function<void(bool)>> clear();

  std::uint64_t count() const { return count_; }
  std::uint64_t bytes() const { return write_offset_ - read_offset_; }
  // MirrorTxn::size() of the records, as the memory queue counts them.
  std::uint64_t txn_bytes() const { return txn_bytes_; }

 private:
  void reset_file();

  int fd_ = -1;
  std::string path_;
  std::uint64_t read_offset_ = 0, write_offset_ = 0;
  std::uint64_t count_ = 0, txn_bytes_ = 0, next_seq_ = 0, read_seq_ = 0;
  std::map<std::uint64_t, std::function<void(bool)>> done_;  // by record sequence
};

}  // namespace pgshift::mirror
