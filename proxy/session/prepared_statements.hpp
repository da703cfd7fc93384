#pragma once
// Protocol-level prepared statements under transaction pooling. A client's named statement S
// is prepared on servers under a name unique to that client and that Parse
// ("pgs_<client>_<n>"), so statements of different clients never collide on a shared
// server and a re-Parse never meets a stale copy. When the client uses S (Bind, Describe)
// on a server that lacks it, a Parse is injected first and its ParseComplete is dropped on
// the way back (ResponseFilter). Close of S is forwarded as Close of its server name (closing
// a name the server does not have is not an error in PostgreSQL). When a server's cache is
// full the least recently used name is closed there, with its CloseComplete dropped.
// Pure: no I/O. One StatementMapper per client session, used on the session's thread.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "pool/prepared_set.hpp"
#include "wire/builder.hpp"
#include "wire/message_types.hpp"

namespace pgshift::proxy {

// Decides, per server message, whether the client sees it. ParseComplete ('1') and
// CloseComplete ('3') come back in the order their Parse/Close were sent, and after an
// ErrorResponse the server skips everything up to Sync, so a FIFO per type is exact.
class ResponseFilter {
 public:
  void expect_parse(std::string server_name, bool injected) {
    parses_.push_back({std::move(server_name), injected});
  }
  void expect_close(bool injected) { closes_.push_back(injected); }
  // Returns false when the message must be dropped. On ErrorResponse or ReadyForQuery the
  // Parses still unanswered were not executed: their names are removed from `server`.
  bool should_forward(std::uint8_t type, pool::PreparedSet& server);
  bool empty() const { return parses_.size() == parse_head_ && closes_.size() == close_head_; }
  void clear() {
    // Memory is given back: a session keeps no filter storage between transactions.
    std::vector<PendingParse>().swap(parses_);
    std::vector<bool>().swap(closes_);
    parse_head_ = close_head_ = 0;
  }

 private:
  struct PendingParse {
    std::string server_name;
    bool injected;
  };
  // FIFOs as vectors with a read position (a std::deque allocates even when empty, and
  // every idle client has a filter).
  std::vector<PendingParse> parses_;
  std::vector<bool> closes_;
  std::size_t parse_head_ = 0, close_head_ = 0;
};

class StatementMapper {
 public:
  explicit StatementMapper(std::uint64_t client_id) : client_id_(client_id) {}

  // Rewrites one complete frontend message (type + body) for the server currently attached,
  // appending the bytes to send to `out`. Messages that need no rewriting are appended as
  // they are. Returns false if the body is malformed (the caller ends the session).
  // With `tail`, a large Bind's parameters are not copied: `out` ends with the start of the
  // message and *tail is set to the rest of `body`, to be written right after `out`.
  bool rewrite(std::uint8_t type, std::span<const std::uint8_t> body, pool::PreparedSet& server,
               ResponseFilter& filter, wire::Bytes& out,
               std::span<const std::uint8_t>* tail = nullptr);

  // Appends one frontend message that rewrite() has just handled to a mirror capture
  // (mirror_capture.hpp): statement names as rewrite() gave them, and the Parse of each
  // named statement in front of its first use within `unit` (the statements the capture's
  // unit has prepared), so the unit replays on a connection that never saw the client.
  // Close of a statement is left out (the mirror keeps its own cache). Returns false if the
  // body is malformed.
  bool mirror_copy(std::uint8_t type, std::span<const std::uint8_t> body, pool::PreparedSet& unit,
                   wire::Bytes& out) const;

  // Records a named Parse without sending it anywhere: the statement is prepared on a
  // server when it is first used (Bind/Describe). For a Parse answered by the proxy itself
  // outside a transaction. Returns false if the body is malformed or the name is empty.
  bool remember(std::span<const std::uint8_t> parse_body);

  // Whether a message of this type may need rewriting (the relay asks for these whole).
  static bool inspects(std::uint8_t type) {
    return type == wire::fe::parse || type == wire::fe::bind || type == wire::fe::describe ||
           type == wire::fe::close;
  }
  std::size_t size() const { return statements().size(); }
  bool knows(const std::string& client_name) const { return statements().contains(client_name); }

 private:
  struct Statement {
    std::string server_name;
    std::string query;
    std::vector<std::uint32_t> param_types;
  };
  // Makes sure `st` exists on `server`, injecting a Parse (and an eviction Close) if needed.
  void ensure_prepared(const Statement& st, pool::PreparedSet& server, ResponseFilter& filter,
                       wire::Bytes& out);
  void append_raw(std::uint8_t type, std::span<const std::uint8_t> body, wire::Bytes& out);
  bool rewrite_bind(std::span<const std::uint8_t> body, pool::PreparedSet& server,
                    ResponseFilter& filter, wire::Bytes& out, std::span<const std::uint8_t>* tail);

  // The server-side name of the next statement: pgs_<client id>_<n>.
  std::string next_server_name();
  using Map = std::unordered_map<std::string, Statement>;  // by client name
  // Made at the first use: most idle clients never prepare a statement (a client's mapper is
  // part of its session object, docs/benchmarks.md "Memory per idle client").
  Map& statements() {
    if (!statements_) statements_ = std::make_unique<Map>();
    return *statements_;
  }
  const Map& statements() const {
    static const Map empty;
    return statements_ ? *statements_ : empty;
  }

  std::uint64_t client_id_;
  std::uint64_t next_ = 0;
  std::unique_ptr<Map> statements_;
};

}  // namespace pgshift::proxy
