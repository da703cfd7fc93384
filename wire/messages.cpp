// Bounded parsers of the message bodies the proxy inspects. Layouts:
// https://www.postgresql.org/docs/15/protocol-message-formats.html
// Error policy: a fixed-size field past the end is truncated_message; a missing NUL
// terminator, an out-of-range value or trailing bytes are malformed_message.
#include "wire/messages.hpp"

#include "wire/body_reader.hpp"
#include "wire/message_types.hpp"

namespace pgshift::wire {

using detail::BodyReader;

namespace {

// Int16 count (unsigned: up to 65,535, as the server reads it) then count Int32 OIDs. The
// size is checked before reserving, so a bogus count cannot make us allocate.
std::error_code read_oids(BodyReader& in, std::vector<std::uint32_t>& out) {
  const std::uint16_t count = in.u16();
  if (in.error()) return in.error();
  if (in.remaining() < std::size_t{4} * count) return errc::truncated_message;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) out.push_back(in.u32());
  return in.error();
}

// Int16 count (unsigned) then count Int16 format codes.
std::error_code read_formats(BodyReader& in, std::vector<std::int16_t>& out) {
  const std::uint16_t count = in.u16();
  if (in.error()) return in.error();
  if (in.remaining() < std::size_t{2} * count) return errc::truncated_message;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) out.push_back(in.i16());
  return in.error();
}

}  // namespace

// ---- backend ----

std::error_code parse_authentication(Body body, Authentication& out) {
  out = {};
  BodyReader in(body);
  const std::int32_t code = in.i32();
  if (in.error()) return in.error();
  out.code = static_cast<AuthCode>(code);
  switch (out.code) {
    case AuthCode::ok:
    case AuthCode::cleartext:
    case AuthCode::gss:
    case AuthCode::sspi:
      break;
    case AuthCode::md5:
      out.md5_salt = in.bytes(4);
      break;
    case AuthCode::sasl:
      // A list of mechanism names, terminated by an empty name.
      for (;;) {
        const std::string_view mechanism = in.cstr();
        if (in.error() || mechanism.empty()) break;
        out.sasl_mechanisms.push_back(mechanism);
      }
      if (!in.error() && out.sasl_mechanisms.empty()) in.fail(errc::malformed_message);
      break;
    case AuthCode::gss_continue:  // GSS/SSPI data is also returned in sasl_data
    case AuthCode::sasl_continue:
    case AuthCode::sasl_final:
      out.sasl_data = in.rest();
      break;
    default:
      return errc::malformed_message;  // obsolete (Kerberos V5, SCM) or unknown
  }
  return in.finish();
}

std::error_code parse_backend_key_data(Body body, BackendKeyData& out) {
  BodyReader in(body);
  out.pid = in.i32();
  out.secret = in.i32();
  return in.finish();
}

std::error_code parse_parameter_status(Body body, ParameterStatus& out) {
  BodyReader in(body);
  out.name = in.cstr();
  out.value = in.cstr();
  return in.finish();
}

std::error_code parse_ready_for_query(Body body, char& status) {
  BodyReader in(body);
  const auto s = static_cast<char>(in.u8());
  if (std::error_code ec = in.finish()) return ec;
  if (s != txn_status::idle && s != txn_status::in_block && s != txn_status::failed)
    return errc::malformed_message;
  status = s;
  return {};
}

std::string_view ErrorFields::get(char code) const {
  for (const auto& [c, value] : fields) {
    if (c == code) return value;
  }
  return {};
}

// (Byte1 code, String value)* terminated by a zero byte.
std::error_code parse_error_fields(Body body, ErrorFields& out) {
  out.fields.clear();
  BodyReader in(body);
  for (;;) {
    const auto code = static_cast<char>(in.u8());
    if (in.error() || code == '\0') break;
    const std::string_view value = in.cstr();
    if (in.error()) break;
    out.fields.emplace_back(code, value);
  }
  return in.finish();
}

std::error_code parse_command_complete(Body body, std::string_view& tag) {
  BodyReader in(body);
  tag = in.cstr();
  return in.finish();
}

std::error_code parse_parameter_description(Body body, std::vector<std::uint32_t>& types) {
  types.clear();
  BodyReader in(body);
  if (std::error_code ec = read_oids(in, types)) return ec;
  return in.finish();
}

// ---- frontend ----

std::error_code parse_query(Body body, std::string_view& sql) {
  BodyReader in(body);
  sql = in.cstr();
  return in.finish();
}

std::error_code parse_parse(Body body, Parse& out) {
  out.param_types.clear();
  BodyReader in(body);
  out.statement = in.cstr();
  out.query = in.cstr();
  if (std::error_code ec = read_oids(in, out.param_types)) return ec;
  return in.finish();
}

// portal, statement, Int16 n + n Int16 formats, Int16 n + n (Int32 length, bytes; -1 NULL),
// Int16 n + n Int16 result formats.
std::error_code parse_bind(Body body, Bind& out) {
  out.param_formats.clear();
  out.params.clear();
  out.result_formats.clear();
  BodyReader in(body);
  out.portal = in.cstr();
  out.statement = in.cstr();
  if (std::error_code ec = read_formats(in, out.param_formats)) return ec;
  const std::uint16_t count = in.u16();
  if (in.error()) return in.error();
  // Each value takes at least its 4-byte length: check before reserving.
  if (in.remaining() < std::size_t{4} * count) return errc::truncated_message;
  out.params.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::int32_t length = in.i32();
    if (in.error()) return in.error();
    if (length < -1) return errc::malformed_message;
    BindValue v;
    v.null = length == -1;
    if (!v.null) v.bytes = in.bytes(static_cast<std::size_t>(length));
    if (in.error()) return in.error();
    out.params.push_back(v);
  }
  if (std::error_code ec = read_formats(in, out.result_formats)) return ec;
  return in.finish();
}

std::error_code parse_bind_names(Body body, BindNames& out) {
  BodyReader in(body);
  out.portal = in.cstr();
  out.statement = in.cstr();
  return in.error();  // the parameters that follow are relayed, not decoded
}

namespace {

std::error_code parse_close_or_describe(Body body, CloseOrDescribe& out) {
  BodyReader in(body);
  const auto kind = static_cast<char>(in.u8());
  out.name = in.cstr();
  if (std::error_code ec = in.finish()) return ec;
  if (kind != fe::target_statement && kind != fe::target_portal) return errc::malformed_message;
  out.kind = kind;
  return {};
}

}  // namespace

std::error_code parse_close(Body body, CloseOrDescribe& out) {
  return parse_close_or_describe(body, out);
}

std::error_code parse_describe(Body body, CloseOrDescribe& out) {
  return parse_close_or_describe(body, out);
}

std::error_code parse_execute(Body body, Execute& out) {
  BodyReader in(body);
  out.portal = in.cstr();
  out.max_rows = in.i32();
  return in.finish();
}

std::error_code parse_password(Body body, std::string_view& password) {
  BodyReader in(body);
  password = in.cstr();
  return in.finish();
}

// String mechanism, Int32 data length (-1: no initial response), Byte[n] data.
std::error_code parse_sasl_initial_response(Body body, SaslInitialResponse& out) {
  out.data = {};
  BodyReader in(body);
  out.mechanism = in.cstr();
  const std::int32_t length = in.i32();
  if (in.error()) return in.error();
  if (length < -1) return errc::malformed_message;
  if (length >= 0) out.data = in.bytes(static_cast<std::size_t>(length));
  return in.finish();
}

}  // namespace pgshift::wire
