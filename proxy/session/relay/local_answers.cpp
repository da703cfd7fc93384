// Answers the multiplexed relay gives itself, without a server: errors it raises, and the
// routing-key SET/RESET it handles (docs/routing.md).
#include "proxy/session/session.hpp"
#include "wire/builder.hpp"

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
    if (tracker_.status() == 'I') keys_->end_transaction();  // SET LOCAL outside a block
  }
  const bool reset = c.routing_key_change->kind == routing::RoutingKeyChange::Kind::reset;
  wire::Bytes out;
  for (std::size_t i = 0; i < c.statement_count; ++i) {
    wire::command_complete(out, reset ? "RESET" : "SET");
  }
  wire::ready_for_query(out, tracker_.status());
  queue_local(out);
}

}  // namespace pgshift::proxy
