// Framing of typed messages: 1 type byte + Int32 length (counting itself, not the type byte).
// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
#include "wire/scanner.hpp"

#include <algorithm>

#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"

namespace pgshift::wire {
namespace {

constexpr std::size_t kHeaderSize = 5;
// Length field + Int16 count + 65,535 OIDs: the largest ParameterDescription a server sends.
// (libpq itself refuses a 't' above 30,000 bytes, but other drivers read them: pgJDBC, pgx.)
constexpr std::uint32_t kMaxParameterDescriptionLength = 4 + 2 + 4 * 65'535;

}  // namespace

MessageScanner::MessageScanner(Direction dir, Limits limits, TypeSet wanted)
    : dir_(dir), limits_(limits), wanted_(wanted) {}

// Type lists: https://www.postgresql.org/docs/15/protocol-message-formats.html. The size classes
// mirror the server (postgres.c SocketBackend: PQ_SMALL_MESSAGE_LIMIT for the small frontend
// messages, PG_MAX_AUTH_TOKEN_LENGTH for 'p') and libpq (fe-protocol3.c VALID_LONG_MESSAGE_TYPE).
std::uint32_t MessageScanner::max_length_for(Direction dir, const Limits& limits,
                                             std::uint8_t type) {
  if (dir == Direction::frontend) {
    switch (type) {
      case fe::sync:
      case fe::flush:
      case fe::terminate:
      case fe::close:
      case fe::describe:
      case fe::execute:
      case fe::copy_done:
        return limits.max_small_length;
      case fe::password:  // PasswordMessage, SASL and GSS responses
        return limits.max_auth_length;
      case fe::query:
      case fe::parse:
      case fe::bind:
      case fe::function_call:
      case fe::copy_data:
      case fe::copy_fail:
        return limits.max_message_length;
      default:
        return 0;
    }
  }
  switch (type) {
    case be::row_description:
    case be::data_row:
    case be::copy_data:
    case be::function_call_response:
    case be::error_response:
    case be::notice_response:
    case be::notification:
      return limits.max_message_length;
    case be::authentication:
    case be::backend_key_data:
    case be::parameter_status:
    case be::ready_for_query:
    case be::command_complete:
    case be::empty_query:
    case be::parse_complete:
    case be::bind_complete:
    case be::close_complete:
    case be::no_data:
    case be::portal_suspended:
    case be::copy_in:
    case be::copy_out:
    case be::copy_both:
    case be::copy_done:
    case be::negotiate_protocol_version:
      return limits.max_small_backend_length;
    case be::parameter_description:  // up to 65,535 parameters (4 bytes each) is legal
      return std::min(limits.max_message_length, kMaxParameterDescriptionLength);
    default:
      return 0;
  }
}

ScanResult MessageScanner::feed(std::span<const std::uint8_t> data) {
  ScanResult r;
  auto fail = [&](errc e) {
    failed_ = true;
    error_ = e;
    needed_ = 0;
    r.kind = ScanKind::error;
    r.error = e;
    return r;
  };
  if (failed_) {
    r.kind = ScanKind::error;
    r.error = error_;
    return r;
  }

  // Inside a skipped message: hand out whatever part of the body is here.
  if (skip_remaining_ > 0) {
    if (data.empty()) return r;  // need_more
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), skip_remaining_));
    skip_remaining_ -= n;
    r.kind = ScanKind::skip;
    r.consumed = n;
    r.type = skip_type_;
    r.length = skip_length_;
    r.last_piece = skip_remaining_ == 0;
    return r;
  }

  // The type byte alone already tells whether framing is lost; do not wait for more.
  if (!data.empty() && max_length_for(dir_, limits_, data[0]) == 0) {
    return fail(errc::unknown_message_type);
  }
  if (data.size() < kHeaderSize) {
    needed_ = kHeaderSize;
    return r;
  }

  // Validate the header before trusting it: a length field is peer input.
  const std::uint8_t type = data[0];
  const std::uint32_t length = read_be32(data.data() + 1);
  if (length < 4) return fail(errc::length_too_small);
  if (length > max_length_for(dir_, limits_, type)) return fail(errc::message_too_large);

  r.type = type;
  r.length = length;
  const std::size_t total = std::size_t{length} + 1;
  if (wanted_[type]) {
    if (data.size() < total) {
      needed_ = total;
      return r;  // need_more
    }
    needed_ = 0;
    r.kind = ScanKind::message;
    r.consumed = total;
    r.body = data.subspan(kHeaderSize, length - 4);
    return r;
  }

  // Not wanted: relay the header plus whatever of the body is already here.
  needed_ = 0;
  const std::size_t body_here = std::min<std::size_t>(data.size() - kHeaderSize, length - 4);
  skip_remaining_ = (length - 4) - body_here;
  skip_type_ = type;
  skip_length_ = length;
  r.kind = ScanKind::skip;
  r.consumed = kHeaderSize + body_here;
  r.first_piece = true;
  r.last_piece = skip_remaining_ == 0;
  return r;
}

MessageScanner::TypeSet type_set(std::initializer_list<char> types) {
  MessageScanner::TypeSet set;
  for (char t : types) set.set(static_cast<unsigned char>(t));
  return set;
}

}  // namespace pgshift::wire
