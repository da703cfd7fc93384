#pragma once
// Stale sidecars (docs/cutover.md "Stale sidecars"): what the current transaction sent and
// what its client was answered, kept for as long as the transaction has done nothing that
// could not run again on another server. When the side a route left refuses a statement with
// its fence error, relay/fence_retry.cpp runs the logged messages again on the new
// authoritative side and drops the answers the client already has.
//
// A transaction stays re-runnable while every answer the client got is one of:
// CommandComplete of BEGIN, START TRANSACTION, SET (SET LOCAL, SET TRANSACTION), SET
// CONSTRAINTS or SAVEPOINT; ParseComplete, BindComplete, CloseComplete, NoData,
// ParameterDescription, RowDescription, EmptyQueryResponse, ReadyForQuery. Notices,
// ParameterStatus and notifications are not counted. Anything else (rows, another command's
// completion, an error, COPY, a function result, a suspended portal) ends it for the rest of
// the transaction, and so does a client message other than Query, Parse, Bind, Describe,
// Execute, Close and Sync, or a log past kMaxBytes.
//
// Pure bookkeeping, no I/O; one per session (in its RelayState), used on its thread.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "wire/builder.hpp"

namespace pgshift::proxy {

class RerunLog {
 public:
  static constexpr std::size_t kMaxBytes = 64 * 1024;
  static constexpr std::size_t kMaxAnswers = 1024;
  // A transaction refused by a fence again where it was re-run is re-run at most this often
  // (a route switched back and forth meanwhile); then the client gets 40001.
  static constexpr int kMaxReruns = 3;

  // ---- client direction ----
  // A client message that starts a new transaction (at a transaction boundary, with nothing
  // held): the log starts over, re-runnable.
  void begin();
  // A client message of the current transaction as the client sent it (type, length, body).
  void client_message(std::span<const std::uint8_t> raw);

  // ---- server direction ----
  // One server message the client gets (the first piece of one the relay does not hold
  // whole): its type, and its body when whole (CommandComplete's tag is read).
  void answer(std::uint8_t type, std::span<const std::uint8_t> body);
  // Everything the transaction sent is logged and all it ran is harmless to run again.
  bool rerunnable() const { return ok_ && !messages_.empty() && reruns_ < kMaxReruns; }
  // Not re-runnable for the rest of the transaction.
  void clear();

  // ---- the re-run ----
  // Takes the logged messages out to run them again; the answers the client has become the
  // answers to drop from the re-run (rerun_answer). The log then starts over from the
  // messages the re-run sends.
  wire::Bytes take_for_rerun();
  enum class Verdict { forward, drop, mismatch };
  // A server message of the re-run the client would get: drop it while it repeats an answer
  // the client has (notices and ParameterStatus among them included), forward it once
  // those are through. `mismatch`: the new side answered otherwise than the old one did
  // (the client cannot be given a consistent stream). An ErrorResponse in the last expected
  // exchange (no ReadyForQuery left to drop) ends the dropping and is forwarded.
  Verdict rerun_answer(std::uint8_t type);
  bool dropping() const { return !expect_.empty(); }
  // The re-run was cut short before anything reached a server: nothing is to be dropped.
  void stop_dropping();

 private:
  wire::Bytes messages_;  // the transaction's client messages, whole
  std::string answers_;   // types of the answers the client got, in order (async ones aside)
  std::string expect_;    // re-run: types of the answers to drop, in order
  std::size_t expect_pos_ = 0;
  int reruns_ = 0;          // re-runs of the current transaction so far
  bool refeeding_ = false;  // taken for a re-run: the next begin() is the re-run's
  bool ok_ = false;
};

}  // namespace pgshift::proxy
