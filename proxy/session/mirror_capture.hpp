#pragma once
// What a session records of its transactions on a mirrored route (docs/sync.md, "Mirror
// mode"): the frontend messages sent to the authoritative side, cut into units (each Query,
// Sync or FunctionCall and what came before it, plus its COPY data), and each unit's
// results as the server answers (command tags, errors, the ReadyForQuery status). At a
// transaction boundary take() returns what committed, as self-contained MirrorTxns:
//
//   - units are grouped into transactions: a group ends at a ReadyForQuery 'I';
//   - a group is replayed when one of its statements writes and it committed: no error, or
//     an error it recovered from (a savepoint) before a COMMIT;
//   - rolled-back transactions, failed autocommit statements and read-only transactions are
//     not replayed.
//
// Pure bookkeeping: no I/O, no clock, no locks; one per session, on the session's thread.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/prepared_set.hpp"
#include "pool/server_params.hpp"
#include "proxy/runtime/mirror_sink.hpp"

namespace pgshift::proxy {

// False when routing::classify_mirror_safety(sql) cannot flag `sql`: none of the words of its
// lists (routing/mirror_safety.cpp: time functions and keywords, time literals, random and
// sequence functions) occurs in it, case-insensitively, and it has no backslash (an escape
// could spell one). Most statements are skipped this way without being lexed a second time
// or allocating; mirror_capture_test checks it against the classifier. Pure.
bool mirror_safety_candidate(std::string_view sql);

class MirrorCapture {
 public:
  // The bytes of the unit being sent, for the caller to append one whole message to (the
  // StatementMapper writes Parse/Bind/Describe with unique names there).
  wire::Bytes& buffer();
  // The statement names prepared within the current unit (a unit carries the Parse of every
  // named statement it uses, so it replays on its own).
  pool::PreparedSet& unit_statements();
  // A whole frontend message was appended to buffer(): Query, Sync and FunctionCall end the
  // unit on the frontend side.
  void message_sent(std::uint8_t type);
  // A piece of COPY data (or CopyDone/CopyFail) for the running COPY.
  void copy_piece(std::span<const std::uint8_t> raw);
  // The statement being sent writes (or may write: unknown functions).
  void mark_write();
  // The statement being sent controls the transaction block (Classification::
  // controls_transaction): the replay does not join it with others.
  void mark_transaction_control();

  // Backend side, in the order the server answers.
  void on_command_complete(std::string_view tag);
  void on_error(std::string_view sqlstate);
  // `params`: the session's settings the unit ran with (MirrorSettings::current() before this
  // ReadyForQuery); `changing`: a statement of its transaction may have changed them.
  void on_ready_for_query(char status, const std::shared_ptr<const pool::StartupParams>& params,
                          bool changing);

  // At a transaction boundary (every unit answered): the committed write transactions, in
  // order, and the capture starts afresh.
  std::vector<std::shared_ptr<MirrorTxn>> take();
  // The server connection was lost or the transaction re-run elsewhere: nothing is known.
  void clear();
  std::size_t bytes() const { return buf_.size(); }
  // Statements that write were sent and not all of them answered.
  bool unanswered_writes() const {
    for (std::size_t i = answering_; i < units_.size(); ++i) {
      if (units_[i].writes) return true;
    }
    return false;
  }
  // The first statement of what was captured (for an in-doubt record).
  std::string fingerprint() const { return mirror_fingerprint(buf_); }

 private:
  struct Unit {
    std::size_t begin = 0, end = 0;  // in buf_
    bool sent = false;               // its Query/Sync/FunctionCall went out
    bool answered = false;           // its ReadyForQuery came back
    bool writes = false;
    // What its messages are: a Query (kQuery), extended-protocol messages (kExtended), a
    // FunctionCall or COPY data (kOther); bits.
    std::uint8_t shape = 0;
    bool controls = false;  // a statement controls the transaction block
    bool failed = false;
    bool committed = false;  // a COMMIT tag
    char status = 'I';
    bool changes_settings = false;
    std::shared_ptr<const pool::StartupParams> params;
    // Its results are outcomes_[previous unit's outcome_end, outcome_end): units are
    // answered in order, so one flat list serves all (no allocation per unit).
    std::size_t outcome_end = 0;
  };
  static constexpr std::uint8_t kQuery = 1, kExtended = 2, kOther = 4;
  Unit& open_unit();
  // MirrorTxn::joinable for the units [first, last].
  bool joinable(std::size_t first, std::size_t last) const;

  wire::Bytes buf_;
  std::vector<Unit> units_;
  std::vector<std::string> outcomes_;  // command tags and "ERROR sqlstate", in answer order
  std::size_t answering_ = 0;          // the first unit without its ReadyForQuery
  pool::PreparedSet unit_statements_{1u << 20};
};

}  // namespace pgshift::proxy
