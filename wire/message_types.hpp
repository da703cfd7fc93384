#pragma once
// Message type bytes of the PostgreSQL protocol (version 3.0), one name each, so that code
// says `fe::sync` rather than `'S'`. The two directions reuse letters ('S' is Sync from the
// client and ParameterStatus from the server; 'C', 'D', 'E' likewise), so they live in two
// namespaces: `fe` for client (frontend) messages, `be` for server (backend) messages.
// Reference: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <cstdint>

namespace pgshift::wire {

namespace fe {
inline constexpr std::uint8_t query = 'Q';
inline constexpr std::uint8_t parse = 'P';
inline constexpr std::uint8_t bind = 'B';
inline constexpr std::uint8_t describe = 'D';
inline constexpr std::uint8_t execute = 'E';
inline constexpr std::uint8_t close = 'C';
inline constexpr std::uint8_t sync = 'S';
inline constexpr std::uint8_t flush = 'H';
inline constexpr std::uint8_t function_call = 'F';
inline constexpr std::uint8_t terminate = 'X';
inline constexpr std::uint8_t copy_data = 'd';
inline constexpr std::uint8_t copy_done = 'c';
inline constexpr std::uint8_t copy_fail = 'f';
inline constexpr std::uint8_t password = 'p';  // also SASLInitialResponse, SASLResponse

// Describe and Close name their target with one of these bytes.
inline constexpr std::uint8_t target_statement = 'S';
inline constexpr std::uint8_t target_portal = 'P';
}  // namespace fe

namespace be {
inline constexpr std::uint8_t authentication = 'R';
inline constexpr std::uint8_t backend_key_data = 'K';
inline constexpr std::uint8_t parameter_status = 'S';
inline constexpr std::uint8_t ready_for_query = 'Z';
inline constexpr std::uint8_t row_description = 'T';
inline constexpr std::uint8_t data_row = 'D';
inline constexpr std::uint8_t command_complete = 'C';
inline constexpr std::uint8_t empty_query = 'I';
inline constexpr std::uint8_t error_response = 'E';
inline constexpr std::uint8_t notice_response = 'N';
inline constexpr std::uint8_t notification = 'A';
inline constexpr std::uint8_t parse_complete = '1';
inline constexpr std::uint8_t bind_complete = '2';
inline constexpr std::uint8_t close_complete = '3';
inline constexpr std::uint8_t no_data = 'n';
inline constexpr std::uint8_t portal_suspended = 's';
inline constexpr std::uint8_t parameter_description = 't';
inline constexpr std::uint8_t function_call_response = 'V';
inline constexpr std::uint8_t copy_in = 'G';
inline constexpr std::uint8_t copy_out = 'H';
inline constexpr std::uint8_t copy_both = 'W';
inline constexpr std::uint8_t copy_data = 'd';
inline constexpr std::uint8_t copy_done = 'c';
inline constexpr std::uint8_t negotiate_protocol_version = 'v';
}  // namespace be

// ReadyForQuery's transaction status byte.
namespace txn_status {
inline constexpr char idle = 'I';
inline constexpr char in_block = 'T';
inline constexpr char failed = 'E';
}  // namespace txn_status

// The one byte a server answers to SSLRequest (and GSSENCRequest) before any message:
// accepted (TLS records follow) or refused. An old server may send an ErrorResponse instead.
namespace ssl_answer {
inline constexpr std::uint8_t accepted = 'S';
inline constexpr std::uint8_t refused = 'N';
}  // namespace ssl_answer

}  // namespace pgshift::wire
