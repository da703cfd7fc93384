#pragma once
// Tracks where a session stands in the protocol so it knows when it is at a transaction
// boundary: nothing sent by the client is still unanswered and the server last said
// ReadyForQuery 'I'. Pure bookkeeping, fed with message types from both directions.
#include <cstdint>

#include "wire/message_types.hpp"

namespace pgshift::proxy {

class TxnTracker {
 public:
  // A frontend message of this type is being forwarded to the server.
  void on_frontend(std::uint8_t type) {
    if (type == wire::fe::query || type == wire::fe::sync || type == wire::fe::function_call) {
      ++outstanding_;
      unsynced_ = false;
    } else if (type == wire::fe::parse || type == wire::fe::bind || type == wire::fe::describe ||
               type == wire::fe::execute || type == wire::fe::close) {
      unsynced_ = true;  // extended-protocol messages are answered only after a Sync
    }
    // CopyData/CopyDone/CopyFail belong to the Query or Execute that started the COPY;
    // Flush asks for output without ending anything.
  }
  // The server sent ReadyForQuery with this status.
  void on_ready_for_query(char status) {
    if (outstanding_ > 0) --outstanding_;
    status_ = status;
  }
  // The server connection was lost: nothing is outstanding on the next one.
  void reset() { *this = TxnTracker{}; }
  char status() const { return status_; }
  bool in_transaction() const { return status_ != wire::txn_status::idle; }
  // At a transaction boundary: safe to hand the server to someone else or to close.
  bool idle() const { return outstanding_ == 0 && !unsynced_ && status_ == wire::txn_status::idle; }
  std::uint32_t outstanding() const { return outstanding_; }
  // Extended-protocol messages were sent and no Sync yet.
  bool unsynced() const { return unsynced_; }

 private:
  std::uint32_t outstanding_ = 0;
  bool unsynced_ = false;
  char status_ = wire::txn_status::idle;
};

}  // namespace pgshift::proxy
