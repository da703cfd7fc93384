#pragma once
// Builders for the messages the proxy itself sends. Each appends one complete message
// (header included) to `out`, so several can be batched into one write.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::wire {

using Bytes = std::vector<std::uint8_t>;

// Low-level writer: begin(type) ... end() patches the length.
class MessageWriter {
 public:
  explicit MessageWriter(Bytes& out) : out_(out) {}
  MessageWriter& begin(char type);  // typed message
  MessageWriter& begin_untyped();   // startup-phase packet (no type byte)
  MessageWriter& i8(std::uint8_t v);
  MessageWriter& i16(std::int16_t v);
  MessageWriter& u16(std::uint16_t v);  // counts: unsigned on the wire (up to 65,535)
  MessageWriter& i32(std::int32_t v);
  MessageWriter& str(std::string_view s);  // with NUL terminator
  MessageWriter& raw(std::span<const std::uint8_t> b);
  MessageWriter& raw(std::string_view b);
  void end();

 private:
  Bytes& out_;
  std::size_t start_ = 0;
};

// ---- backend (proxy -> client) ----
struct ErrorSpec {
  std::string_view severity = "ERROR";  // ERROR, FATAL, PANIC (S and V fields)
  std::string_view sqlstate;            // e.g. "28P01"
  std::string_view message;
  std::string_view detail = {};
  std::string_view hint = {};
};
void error_response(Bytes& out, const ErrorSpec& e);
void notice_response(Bytes& out, const ErrorSpec& e);  // severity e.g. "NOTICE"/"WARNING"
void auth_ok(Bytes& out);
void auth_cleartext(Bytes& out);
void auth_md5(Bytes& out, std::span<const std::uint8_t, 4> salt);
void auth_sasl(Bytes& out, std::span<const std::string_view> mechanisms);
void auth_sasl_continue(Bytes& out, std::string_view data);
void auth_sasl_final(Bytes& out, std::string_view data);
void parameter_status(Bytes& out, std::string_view name, std::string_view value);
void backend_key_data(Bytes& out, std::int32_t pid, std::int32_t secret);
void ready_for_query(Bytes& out, char status);
void negotiate_protocol_version(Bytes& out, std::int32_t newest_minor,
                                std::span<const std::string> unrecognized_options);
void command_complete(Bytes& out, std::string_view tag);
void empty_query_response(Bytes& out);
// At most 65,535 types (the protocol's limit; callers pass what a parser accepted).
void parameter_description(Bytes& out, std::span<const std::uint32_t> types);

// ---- frontend (proxy -> server) ----
void startup_message(Bytes& out, std::span<const std::pair<std::string, std::string>> params);
void ssl_request(Bytes& out);
void cancel_request(Bytes& out, std::int32_t pid, std::int32_t secret);
void password_message(Bytes& out, std::string_view password);  // cleartext or md5 hash
void sasl_initial_response(Bytes& out, std::string_view mechanism, std::string_view data);
void sasl_response(Bytes& out, std::string_view data);
void query(Bytes& out, std::string_view sql);
// At most 65,535 parameter types (the protocol's limit; callers pass what parse_parse read).
void parse(Bytes& out, std::string_view statement, std::string_view sql,
           std::span<const std::uint32_t> param_types);
void close_statement(Bytes& out, std::string_view statement);
void sync(Bytes& out);
void flush(Bytes& out);
void terminate(Bytes& out);

}  // namespace pgshift::wire
