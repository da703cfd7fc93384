#pragma once
// The seam between the data path and the mirror (sync.mode mirror, docs/sync.md "Mirror
// mode"): sessions hand every transaction that committed on the authoritative side to a
// MirrorSink, which replays it on the other side (proxy/mirror/). Sessions only know this
// interface; the implementation is set in Runtime::mirror by the app.
//
// Thread-safety: every member may be called from any thread (sessions run on every I/O
// thread); calls are short (a lock and a queue push), never I/O.
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/side.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

// One transaction as it committed on the authoritative side (or a pipelined run of
// autocommit statements, each committed on its own there and replayed the same way).
struct MirrorTxn {
  std::string route;
  std::uint64_t session = 0;
  routing::Side to = routing::Side::target;  // the side it is replayed on
  // Whole frontend messages as the client sent them, with protocol-level prepared statement
  // names made unique per client and Parse (StatementMapper), and the Parse of every named
  // statement the transaction uses in front of its first use: self-contained.
  wire::Bytes messages;
  std::uint32_t answers = 0;  // ReadyForQuery the messages produce (one per Query, Sync)
  // The authoritative side's results in order: command tags ("UPDATE 1") and errors
  // ("ERROR 23505"); the replay must give the same.
  std::vector<std::string> outcome;
  // The first statement's text, for the journal; empty until needed (mirror_fingerprint()
  // makes it from `messages` then: the capture does not copy it for every transaction).
  std::string fingerprint;
  // The session's settings when the transaction began (proxy/session/mirror_settings.hpp:
  // startup parameters and `options`, SETs that took effect, reported values) without
  // application_name: the replay runs with them, as the client's statements did. Shared by
  // the session's transactions while they do not change.
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> params;
  // A statement of the transaction may change session settings (a SET): its replay leaves the
  // mirror's connection changed, so the mirror resets it before the next transaction.
  bool changes_settings = false;
  // Sent as separate round trips (simple Queries, or extended-protocol batches ending in a
  // Sync): a lone BEGIN first, a COMMIT last, no other statement that controls the
  // transaction block or changes a session setting, no COPY or FunctionCall, and it committed
  // without an error. The replay may send it as one round trip (replay_batch.hpp,
  // join_transaction()).
  bool joinable = false;
  std::chrono::steady_clock::time_point committed_at{};
  // ack sync: called once, on the mirror's thread, when the replay committed (true) or
  // failed or timed out (false; the divergence is recorded). Null for ack async.
  std::function<void(bool applied)> done;
  std::size_t size() const { return messages.size() + 256; }
};

// The text of the first Query or Parse in `messages` (whole frontend messages), at most 200
// bytes, on one line: what the journal and the logs show of a transaction.
inline std::string mirror_fingerprint(std::span<const std::uint8_t> messages) {
  std::size_t pos = 0;
  while (pos + 5 <= messages.size()) {
    const std::uint8_t type = messages[pos];
    const std::uint32_t len = wire::read_be32(messages.data() + pos + 1);
    if (len < 4 || pos + 1 + len > messages.size()) break;
    const auto body = messages.subspan(pos + 5, len - 4);
    pos += 1 + len;
    std::string_view sql;
    wire::Parse p;
    if (type == wire::fe::query && !wire::parse_query(body, sql)) {
    } else if (type == wire::fe::parse && !wire::parse_parse(body, p)) {
      sql = p.query;
    } else {
      continue;
    }
    std::string out(sql.substr(0, 200));
    for (char& c : out) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    return out;
  }
  return {};
}

// What a cutover or rollback needs to know of one route's mirror in this sidecar
// (docs/cutover.md, "Mirrored routes"): the fleet barrier acknowledges a hold only once
// `pending` is 0, and refuses it while `stopped`.
struct MirrorDrain {
  bool exists = false;        // the route mirrors in this sidecar (a RouteMirror was made)
  std::uint64_t pending = 0;  // committed transactions not yet replayed (queued or in flight)
  bool stopped = false;       // marked diverged (overflow, apply timeout): not mirroring
  std::string condition;      // streaming | copying | target_unreachable | diverged | ...
  std::string detail;         // the condition's explanation, the fix when stopped
  std::uint64_t divergences = 0;
  std::int64_t last_divergence_unix_ms = 0;  // 0: none since the mirror started
  std::string last_divergence;               // kind and statement of the last one
  std::chrono::milliseconds lag{0};          // age of the oldest pending transaction
};

class MirrorSink {
 public:
  virtual ~MirrorSink() = default;
  // At the start of a write transaction of a mirrored route: false while the route's queue
  // is full under overflow policy `block` (the session holds the transaction and asks
  // again).
  virtual bool has_room(std::string_view route) = 0;
  // overflow block, after has_room() said false: true when there is room now; else `wake` is
  // kept and called once (on the mirror's thread, never under a lock the caller holds) when
  // the queue has room again, and false is returned. The check and the registration are one
  // step under the route's lock, so a wakeup cannot be lost between them.
  virtual bool wait_for_room(std::string_view route, std::function<void()> wake) = 0;
  // Whether writes of `route` are being mirrored (not diverged and stopped).
  virtual bool mirroring(std::string_view route) = 0;
  virtual void submit(std::shared_ptr<MirrorTxn> txn) = 0;
  // A mirrored transaction with writes ended without its answer (the client or the server
  // connection went away after the statements were sent): whether it committed on the
  // authoritative side is unknown, so it is not replayed; recorded as a divergence of kind
  // in_doubt (verify settles it).
  virtual void in_doubt(std::string_view route, std::uint64_t session,
                        std::string_view statement) = 0;
  // ack sync with overflow mark_diverged: a commit waited sync.mirror.apply_timeout_ms for
  // its replay; the route is marked diverged and stops mirroring (clients go on).
  virtual void give_up(std::string_view route, std::string_view why) = 0;
  // A statement the replay cannot reproduce faithfully (routing/mirror_safety.hpp): counted
  // in pgshift_mirror_unsafe_total{route,reason}, logged once per reason and route.
  virtual void note_unsafe(std::string_view route, std::string_view reason,
                           std::string_view statement) = 0;
  // The route's mirror as GET /v1/routes/{name} shows it under sync.mirror; nullopt when
  // the route is not mirrored.
  virtual std::optional<boost::json::object> status(std::string_view route) const = 0;
  // The route's mirror for the fleet barrier and the cutover preconditions. Cheap (a lock).
  virtual MirrorDrain drain_state(std::string_view route) const = 0;
};

}  // namespace pgshift::proxy
