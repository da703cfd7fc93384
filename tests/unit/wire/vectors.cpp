#include "vectors.hpp"

namespace pgshift::wire::test {
namespace {

Bytes str_body(std::string_view s) {
  Bytes b;
  put_str(b, s);
  return b;
}

// ---- frontend ----

Bytes parse_msg(std::string_view stmt, std::string_view sql, std::vector<std::uint32_t> types) {
  Bytes b;
  put_str(b, stmt);
  put_str(b, sql);
  put16(b, static_cast<std::uint16_t>(types.size()));
  for (auto t : types) put32(b, t);
  return frame('P', b);
}

Bytes bind_msg(std::string_view portal, std::string_view stmt, std::string_view param) {
  Bytes b;
  put_str(b, portal);
  put_str(b, stmt);
  put16(b, 1);  // one format code
  put16(b, 0);  //   text
  put16(b, 1);  // one parameter
  put32(b, static_cast<std::uint32_t>(param.size()));
  b.insert(b.end(), param.begin(), param.end());
  put16(b, 0);  // no result format codes
  return frame('B', b);
}

Bytes describe_msg(char kind, std::string_view name) {
  Bytes b{static_cast<std::uint8_t>(kind)};
  put_str(b, name);
  return frame('D', b);
}

Bytes close_msg(char kind, std::string_view name) {
  Bytes b{static_cast<std::uint8_t>(kind)};
  put_str(b, name);
  return frame('C', b);
}

Bytes execute_msg(std::string_view portal, std::uint32_t max_rows) {
  Bytes b;
  put_str(b, portal);
  put32(b, max_rows);
  return frame('E', b);
}

Bytes sasl_initial(std::string_view mech, std::string_view data) {
  Bytes b;
  put_str(b, mech);
  put32(b, static_cast<std::uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return frame('p', b);
}

Bytes copy_data(std::size_t size, std::uint8_t seed) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return frame('d', b);
}

// ---- backend ----

Bytes auth(std::uint32_t code, const Bytes& extra = {}) {
  Bytes b;
  put32(b, code);
  append(b, extra);
  return frame('R', b);
}

Bytes param_status(std::string_view name, std::string_view value) {
  Bytes b;
  put_str(b, name);
  put_str(b, value);
  return frame('S', b);
}

Bytes key_data(std::uint32_t pid, std::uint32_t secret) {
  Bytes b;
  put32(b, pid);
  put32(b, secret);
  return frame('K', b);
}

Bytes ready(char status) {
  return frame('Z', Bytes{static_cast<std::uint8_t>(status)});
}

Bytes row_description() {
  Bytes b;
  put16(b, 1);
  put_str(b, "?column?");
  put32(b, 0);   // table oid
  put16(b, 0);   // column
  put32(b, 23);  // int4
  put16(b, 4);
  put32(b, 0xffffffff);  // typmod -1
  put16(b, 0);
  return frame('T', b);
}

Bytes data_row(std::size_t value_size) {
  Bytes b;
  put16(b, 1);
  put32(b, static_cast<std::uint32_t>(value_size));
  for (std::size_t i = 0; i < value_size; ++i) b.push_back(static_cast<std::uint8_t>('a' + i % 26));
  return frame('D', b);
}

Bytes error_fields(char type, std::initializer_list<std::pair<char, std::string_view>> fields) {
  Bytes b;
  for (const auto& [code, value] : fields) {
    b.push_back(static_cast<std::uint8_t>(code));
    put_str(b, value);
  }
  b.push_back(0);
  return frame(type, b);
}

}  // namespace

Bytes startup_packet(std::initializer_list<std::pair<std::string_view, std::string_view>> params,
                     std::uint32_t protocol) {
  Bytes body;
  put32(body, protocol);
  for (const auto& [k, v] : params) {
    put_str(body, k);
    put_str(body, v);
  }
  body.push_back(0);
  Bytes b;
  put32(b, static_cast<std::uint32_t>(body.size() + 4));
  append(b, body);
  return b;
}

Bytes ssl_request_packet() {
  Bytes b;
  put32(b, 8);
  put32(b, 80877103);
  return b;
}

Bytes cancel_request_packet(std::int32_t pid, std::int32_t secret) {
  Bytes b;
  put32(b, 16);
  put32(b, 80877102);
  put32(b, static_cast<std::uint32_t>(pid));
  put32(b, static_cast<std::uint32_t>(secret));
  return b;
}

std::vector<StreamVector> valid_streams() {
  std::vector<StreamVector> v;
  v.push_back({"simple_query", Direction::frontend, false,
               concat({frame('Q', str_body("SELECT 1;")), frame('X', {})})});
  v.push_back(
      {"extended_query", Direction::frontend, false,
       concat({parse_msg("s1", "SELECT $1::int", {23}), bind_msg("", "s1", "42"),
               describe_msg('P', ""), execute_msg("", 0), frame('S', {}), close_msg('S', "s1"),
               frame('H', {}), frame('S', {}), frame('Q', str_body("")), frame('X', {})})});
  v.push_back({"auth_and_copy", Direction::frontend, false,
               concat({sasl_initial("SCRAM-SHA-256", "n,,n=,r=abcdef"), frame('p', bytes("c=x")),
                       frame('p', str_body("md5abc")), copy_data(20'000, 3), copy_data(1, 9),
                       frame('c', {}), frame('f', str_body("oops")), frame('S', {})})});
  v.push_back({"startup_then_query", Direction::frontend, true,
               concat({startup_packet({{"user", "alice"},
                                       {"database", "user_management_db"},
                                       {"application_name", "psql"}}),
                       frame('Q', str_body("BEGIN")), frame('X', {})})});
  v.push_back({"ssl_then_startup", Direction::frontend, true,
               concat({ssl_request_packet(), startup_packet({{"user", "bob"}}, 196608 + 2),
                       frame('S', {})})});
  v.push_back({"cancel", Direction::frontend, true, cancel_request_packet(1234, -5678)});
  v.push_back({"login_and_query", Direction::backend, false,
               concat({auth(10, concat({str_body("SCRAM-SHA-256"), str_body("SCRAM-SHA-256-PLUS"),
                                        Bytes{0}})),
                       auth(11, bytes("r=abc,s=c2FsdA==,i=4096")),
                       auth(12, bytes("v=xyz")),
                       auth(0),
                       param_status("server_version", "15.4"),
                       param_status("TimeZone", "UTC"),
                       key_data(4242, 0x7f00ff00),
                       ready('I'),
                       row_description(),
                       data_row(1),
                       data_row(40'000),
                       data_row(0),
                       frame('C', str_body("SELECT 3")),
                       error_fields('N', {{'S', "WARNING"}, {'C', "01000"}, {'M', "careful"}}),
                       error_fields('E', {{'S', "ERROR"},
                                          {'V', "ERROR"},
                                          {'C', "42P01"},
                                          {'M', "relation \"x\" does not exist"},
                                          {'P', "15"}}),
                       ready('E'),
                       frame('I', {}),
                       frame('1', {}),
                       frame('2', {}),
                       frame('n', {}),
                       frame('3', {}),
                       ready('T')})});
  v.push_back({"md5_login", Direction::backend, false,
               concat({auth(5, Bytes{0x93, 0xa5, 0x1e, 0x7c}), auth(0), ready('I')})});
  return v;
}

std::vector<BadStreamVector> bad_streams() {
  const Bytes q = frame('Q', str_body("SELECT 1"));
  std::vector<BadStreamVector> v;
  v.push_back({{"length_below_4", Direction::frontend, false, concat({q, header('Q', 3)})},
               errc::length_too_small});
  v.push_back({{"sync_over_small_cap", Direction::frontend, false,
                concat({q, header('S', 10'001), Bytes(100, 0)})},
               errc::message_too_large});
  v.push_back({{"two_gib_length", Direction::frontend, false,
                concat({q, header('Q', 0x80000000u), Bytes(64, 'x')})},
               errc::message_too_large});
  v.push_back(
      {{"unknown_frontend_type", Direction::frontend, false, concat({q, frame('Z', Bytes{'I'})})},
       errc::unknown_message_type});
  v.push_back({{"unknown_backend_type", Direction::backend, false,
                concat({ready('I'), frame('Q', str_body("x"))})},
               errc::unknown_message_type});
  v.push_back({{"backend_small_cap", Direction::backend, false,
                concat({ready('I'), header('Z', 30'001), Bytes(10, 0)})},
               errc::message_too_large});
  v.push_back({{"skipped_then_garbage", Direction::backend, false,
                concat({data_row(5'000), Bytes{0, 0, 0, 0, 0}})},
               errc::unknown_message_type});
  v.push_back(
      {{"startup_without_user", Direction::frontend, true, startup_packet({{"database", "db"}})},
       errc::malformed_message});
  v.push_back({{"ssl_request_wrong_length", Direction::frontend, true,
                Bytes{0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 0}},
               errc::malformed_message});
  v.push_back(
      {{"protocol_2", Direction::frontend, true, startup_packet({{"user", "u"}}, 0x00020000)},
       errc::unsupported_protocol});
  return v;
}

}  // namespace pgshift::wire::test
