// Memory bounds of the multiplexed relay (docs/configuration.md, limits): a message the relay
// must hold whole (Query to classify, Parse/Bind to rewrite or hold until the batch is
// routed, FunctionCall...) is admitted within limits.max_buffered_message_length and the
// process-wide budget limits.buffered_memory_bytes (Runtime::buffered_messages), or refused:
// its bytes are then dropped as they arrive, never held, and the client gets 54000 / 53200.
// CopyData is never held whole (forwarded in pieces) and never refused here.
#include <string>

#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/builder.hpp"

namespace pgshift::proxy {
namespace {

// Pending extended-protocol messages below this size are not charged (the common case: no
// atomic operation per message).
constexpr std::size_t kChargeFrom = 64 * 1024;

std::string message_name(std::uint8_t type) {
  switch (type) {
    case wire::fe::query:
      return "Query";
    case wire::fe::parse:
      return "Parse";
    case wire::fe::bind:
      return "Bind";
    case wire::fe::function_call:
      return "FunctionCall";
    case wire::fe::copy_fail:
      return "CopyFail";
    default:
      return std::string("message '") + static_cast<char>(type) + "'";
  }
}

}  // namespace

wire::MessageScanner::TypeSet ClientSession::mux_client_types() {
  wire::MessageScanner::TypeSet t;
  t.set();
  t.reset(wire::fe::copy_data);  // CopyData: forwarded in pieces
  return t;
}

bool ClientSession::admit_buffered(wire::MessageScanner& scanner, IoBuffer& buf) {
  const std::size_t total = scanner.bytes_needed();
  if (total <= IoBuffer::kBlockSize) {
    buf.reserve_total(total);
    return true;
  }
  const config::Limits& limits = snap_->config->limits;
  const std::uint8_t type = buf.data()[0];
  const std::string what = message_name(type) + " of " + std::to_string(total - 1) + " bytes";
  auto refusal = std::make_unique<Refusal>();
  refusal->type = type;
  if (total - 1 > limits.max_buffered_message_length) {
    refusal->sqlstate = "54000";  // program_limit_exceeded
    refusal->message = "pgshift cannot hold a " + what +
                       ": limits.max_buffered_message_length is " +
                       std::to_string(limits.max_buffered_message_length) + " bytes";
    refusal->detail =
        "pgshift reads this kind of message whole to route it. Raise "
        "limits.max_buffered_message_length, or send large values with COPY (relayed in pieces).";
  } else if (!buf.reserve_charged(total, runtime_.buffered_messages,
                                  limits.buffered_memory_bytes)) {
    refusal->sqlstate = "53200";  // out_of_memory
    refusal->message = "out of memory: pgshift cannot hold a " + what +
                       " now; limits.buffered_memory_bytes (" +
                       std::to_string(limits.buffered_memory_bytes) +
                       " bytes) is taken by large messages of other sessions";
    refusal->detail =
        "Retry when fewer large messages are in flight, or raise limits.buffered_memory_bytes.";
  } else {
    return true;
  }
  log_warn("large message refused",
           {f("session", id_), f("sqlstate", refusal->sqlstate), f("detail", refusal->message)});
  metrics().errors(ErrorKind::resource_limit).Increment();
  refusing_ = std::move(refusal);
  auto wanted = mux_client_types();
  wanted.reset(type);  // its bytes come as pieces from now on
  scanner.set_wanted(wanted);
  return false;
}

void ClientSession::finish_refusal(wire::MessageScanner& scanner) {
  scanner.set_wanted(mux_client_types());
  std::unique_ptr<Refusal> r = std::move(refusing_);
  answer_refused(r->type, r->sqlstate, r->message, r->detail);
}

void ClientSession::answer_refused(std::uint8_t type, std::string_view sqlstate,
                                   const std::string& message, std::string_view detail) {
  // Skipping up to a Sync already: the message would have been ignored anyway.
  if (skip_until_sync_) return;
  if (!at_boundary() || (rs_ && !rs_->pending.empty()) || lost_transaction_) {
    // The server (or the held batch) expects this message's effect; it cannot be failed
    // alone as PostgreSQL would, so the session ends and its transaction rolls back.
    end_note().sqlstate = std::string(sqlstate);
    end(EndReason::limit_exceeded, message);
    return;
  }
  reply_error(sqlstate, message, detail);
  if (type == wire::fe::query || type == wire::fe::function_call) {
    wire::Bytes z;
    wire::ready_for_query(z, tracker_.status());
    queue_local(z);
  } else {
    skip_until_sync_ = true;  // the extended protocol: as the server does after an error
  }
}

bool ClientSession::hold_pending(std::uint8_t type, std::span<const std::uint8_t> raw) {
  RelayState& st = rs();
  const std::size_t size = st.pending.size() + raw.size();
  if (size >= kChargeFrom && !st.pending_charge.set(runtime_.buffered_messages, size,
                                                    snap_->config->limits.buffered_memory_bytes)) {
    const std::string message =
        "out of memory: pgshift cannot hold a " + message_name(type) + " batch of " +
        std::to_string(size) + " bytes until its Sync; limits.buffered_memory_bytes (" +
        std::to_string(snap_->config->limits.buffered_memory_bytes) + " bytes) is taken";
    metrics().errors(ErrorKind::resource_limit).Increment();
    answer_refused(type, "53200", message,
                   "Send Sync more often, retry later, or raise limits.buffered_memory_bytes.");
    return false;
  }
  st.pending.insert(st.pending.end(), raw.begin(), raw.end());
  return true;
}

void ClientSession::clear_pending() {
  if (!rs_) return;
  rs_->pending.clear();
  if (rs_->pending.capacity() > kChargeFrom) wire::Bytes().swap(rs_->pending);
  rs_->pending_charge.reset();
  rs_->pending_only_named_parses = false;
}

}  // namespace pgshift::proxy
