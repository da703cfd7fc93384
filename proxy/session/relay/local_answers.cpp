// Answers the multiplexed relay gives itself, without a server: errors it raises, the
// routing-key SET/RESET it handles (docs/routing.md), and prepare round trips.
#include "proxy/session/session.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

void ClientSession::queue_local(const wire::Bytes& bytes) {
  local_out_.insert(local_out_.end(), bytes.begin(), bytes.end());
  wake_server_reader();
}

void ClientSession::reply_error(std::string_view sqlstate, std::string_view message,
                                std::string_view detail) {
  wire::Bytes out;
  wire::error_response(
      out, {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = detail});
  queue_local(out);
}

void ClientSession::answer_routing_key_locally(const routing::Classification& c) {
  if (keys_) {
    keys_->apply(*c.routing_key_change);
    if (tracker_.status() == wire::txn_status::idle)
      keys_->end_transaction();  // SET LOCAL outside a block
  }
  const bool reset = c.routing_key_change->kind == routing::RoutingKeyChange::Kind::reset;
  wire::Bytes out;
  for (std::size_t i = 0; i < c.statement_count; ++i) {
    wire::command_complete(out, reset ? "RESET" : "SET");
  }
  wire::ready_for_query(out, tracker_.status());
  queue_local(out);
}

void ClientSession::answer_parses_locally() {
  wire::Bytes out;
  const wire::Bytes& held = rs().pending;  // whole messages only
  for (std::size_t pos = 0; pos + 5 <= held.size();) {
    const std::size_t size = 1 + std::size_t{wire::read_be32(held.data() + pos + 1)};
    const std::span<const std::uint8_t> body(held.data() + pos + 5, size - 5);
    pos += size;
    wire::Parse p;
    if (!wire::parse_parse(body, p) && mapper_.knows(std::string(p.statement))) {
      // As the server would answer: the rest of the batch is skipped up to the Sync.
      const std::string message =
          "prepared statement \"" + std::string(p.statement) + "\" already exists";
      wire::error_response(out, {.severity = "ERROR", .sqlstate = "42P05", .message = message});
      break;
    }
    mapper_.remember(body);
    wire::MessageWriter(out).begin(wire::be::parse_complete).end();
  }
  clear_pending();
  wire::ready_for_query(out, tracker_.status());
  queue_local(out);
}

}  // namespace pgshift::proxy
