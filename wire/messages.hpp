#pragma once
// Typed views of message bodies the proxy must inspect. Each parse_* takes the body (the
// bytes after the 5-byte header, as MessageScanner returns it) and never reads past it.
// Views (string_view/span) point into the body; keep the body alive while using them.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "wire/errc.hpp"

namespace pgshift::wire {

using Body = std::span<const std::uint8_t>;

// ---- backend ----
enum class AuthCode : std::int32_t {
  ok = 0,
  cleartext = 3,
  md5 = 5,
  gss = 7,
  gss_continue = 8,
  sspi = 9,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};
struct Authentication {
  AuthCode code{};
  std::span<const std::uint8_t> md5_salt;         // 4 bytes, code == md5
  std::vector<std::string_view> sasl_mechanisms;  // code == sasl
  std::span<const std::uint8_t> sasl_data;        // sasl_continue / sasl_final
};
std::error_code parse_authentication(Body body, Authentication& out);

struct BackendKeyData {
  std::int32_t pid = 0;
  std::int32_t secret = 0;
};
std::error_code parse_backend_key_data(Body body, BackendKeyData& out);

struct ParameterStatus {
  std::string_view name, value;
};
std::error_code parse_parameter_status(Body body, ParameterStatus& out);

// 'I' idle, 'T' in transaction, 'E' failed transaction.
std::error_code parse_ready_for_query(Body body, char& status);

// ErrorResponse / NoticeResponse: fields by code ('S','V','C','M','D','H','P',...).
struct ErrorFields {
  std::vector<std::pair<char, std::string_view>> fields;
  std::string_view get(char code) const;  // empty if absent
  std::string_view sqlstate() const { return get('C'); }
  std::string_view message() const { return get('M'); }
  std::string_view severity() const { return get('V').empty() ? get('S') : get('V'); }
};
std::error_code parse_error_fields(Body body, ErrorFields& out);

std::error_code parse_command_complete(Body body, std::string_view& tag);

// ParameterDescription: Int16 count (unsigned, up to 65,535) then one type OID per parameter.
std::error_code parse_parameter_description(Body body, std::vector<std::uint32_t>& types);

// ---- frontend ----
std::error_code parse_query(Body body, std::string_view& sql);

struct Parse {
  std::string_view statement;  // "" = unnamed
  std::string_view query;
  std::vector<std::uint32_t> param_types;
};
std::error_code parse_parse(Body body, Parse& out);

// Only the names are decoded; the parameter values stay in the body for relaying.
struct BindNames {
  std::string_view portal, statement;
};
std::error_code parse_bind_names(Body body, BindNames& out);

// The whole Bind, validated: the three Int16 counts are unsigned (a statement may have up
// to 65,535 parameters). Values are views into the body; a NULL value has null == true.
struct BindValue {
  bool null = false;
  std::span<const std::uint8_t> bytes;
};
struct Bind {
  std::string_view portal, statement;
  std::vector<std::int16_t> param_formats;
  std::vector<BindValue> params;
  std::vector<std::int16_t> result_formats;
};
std::error_code parse_bind(Body body, Bind& out);

struct CloseOrDescribe {
  char kind = 0; /* 'S' statement or 'P' portal */
  std::string_view name;
};
std::error_code parse_close(Body body, CloseOrDescribe& out);
std::error_code parse_describe(Body body, CloseOrDescribe& out);

struct Execute {
  std::string_view portal;
  std::int32_t max_rows = 0;
};
std::error_code parse_execute(Body body, Execute& out);

// PasswordMessage / SASLInitialResponse / SASLResponse share type 'p'; the caller knows
// which one it expects from the authentication state.
std::error_code parse_password(Body body, std::string_view& password);
struct SaslInitialResponse {
  std::string_view mechanism;
  std::span<const std::uint8_t> data;
};
std::error_code parse_sasl_initial_response(Body body, SaslInitialResponse& out);

}  // namespace pgshift::wire
