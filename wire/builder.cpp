// Message builders. Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "wire/builder.hpp"

#include "wire/message_types.hpp"
#include "wire/startup.hpp"

namespace pgshift::wire {

// ---- MessageWriter ----
// start_ is the offset of the length field, so end() works for typed and untyped packets.

MessageWriter& MessageWriter::begin(char type) {
  out_.push_back(static_cast<std::uint8_t>(type));
  return begin_untyped();
}

MessageWriter& MessageWriter::begin_untyped() {
  start_ = out_.size();
  out_.insert(out_.end(), 4, 0);
  return *this;
}

MessageWriter& MessageWriter::i8(std::uint8_t v) {
  out_.push_back(v);
  return *this;
}

MessageWriter& MessageWriter::i16(std::int16_t v) {
  return u16(static_cast<std::uint16_t>(v));
}

MessageWriter& MessageWriter::u16(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
  out_.push_back(static_cast<std::uint8_t>(v));
  return *this;
}

MessageWriter& MessageWriter::i32(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out_.push_back(static_cast<std::uint8_t>(u >> shift));
  return *this;
}

// A String field cannot contain NUL: anything after an embedded NUL is dropped, so that a
// stray NUL can never shift the fields that follow (the peer would read them as garbage).
MessageWriter& MessageWriter::str(std::string_view s) {
  raw(s.substr(0, s.find('\0')));
  out_.push_back(0);
  return *this;
}

MessageWriter& MessageWriter::raw(std::span<const std::uint8_t> b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

MessageWriter& MessageWriter::raw(std::string_view b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

void MessageWriter::end() {
  const auto length = static_cast<std::uint32_t>(out_.size() - start_);
  for (int i = 0; i < 4; ++i) {
    out_[start_ + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
  }
}

// ---- backend ----

namespace {

// ErrorResponse and NoticeResponse share the field layout. 'V' (non-localized severity,
// since 9.6) is sent alongside 'S' so that both old and new clients find it.
void error_like(Bytes& out, char type, const ErrorSpec& e) {
  MessageWriter w(out);
  w.begin(type);
  w.i8('S').str(e.severity);
  w.i8('V').str(e.severity);
  w.i8('C').str(e.sqlstate);
  w.i8('M').str(e.message);
  if (!e.detail.empty()) w.i8('D').str(e.detail);
  if (!e.hint.empty()) w.i8('H').str(e.hint);
  w.i8(0);
  w.end();
}

void auth_request(Bytes& out, std::int32_t code, std::span<const std::uint8_t> extra = {}) {
  MessageWriter w(out);
  w.begin(be::authentication).i32(code).raw(extra).end();
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

void error_response(Bytes& out, const ErrorSpec& e) {
  error_like(out, be::error_response, e);
}
void notice_response(Bytes& out, const ErrorSpec& e) {
  error_like(out, be::notice_response, e);
}

void auth_ok(Bytes& out) {
  auth_request(out, 0);
}
void auth_cleartext(Bytes& out) {
  auth_request(out, 3);
}
void auth_md5(Bytes& out, std::span<const std::uint8_t, 4> salt) {
  auth_request(out, 5, salt);
}

void auth_sasl(Bytes& out, std::span<const std::string_view> mechanisms) {
  MessageWriter w(out);
  w.begin(be::authentication).i32(10);
  for (std::string_view m : mechanisms) w.str(m);
  w.i8(0).end();
}

void auth_sasl_continue(Bytes& out, std::string_view data) {
  auth_request(out, 11, as_bytes(data));
}

void auth_sasl_final(Bytes& out, std::string_view data) {
  auth_request(out, 12, as_bytes(data));
}

void parameter_status(Bytes& out, std::string_view name, std::string_view value) {
  MessageWriter(out).begin(be::parameter_status).str(name).str(value).end();
}

void backend_key_data(Bytes& out, std::int32_t pid, std::int32_t secret) {
  MessageWriter(out).begin(be::backend_key_data).i32(pid).i32(secret).end();
}

void ready_for_query(Bytes& out, char status) {
  MessageWriter(out).begin(be::ready_for_query).i8(static_cast<std::uint8_t>(status)).end();
}

void negotiate_protocol_version(Bytes& out, std::int32_t newest_minor,
                                std::span<const std::string> unrecognized_options) {
  MessageWriter w(out);
  w.begin(be::negotiate_protocol_version)
      .i32(newest_minor)
      .i32(static_cast<std::int32_t>(unrecognized_options.size()));
  for (const std::string& o : unrecognized_options) w.str(o);
  w.end();
}

void command_complete(Bytes& out, std::string_view tag) {
  MessageWriter(out).begin(be::command_complete).str(tag).end();
}

void empty_query_response(Bytes& out) {
  MessageWriter(out).begin(be::empty_query).end();
}

void parameter_description(Bytes& out, std::span<const std::uint32_t> types) {
  MessageWriter w(out);
  w.begin(be::parameter_description).u16(static_cast<std::uint16_t>(types.size()));
  for (std::uint32_t oid : types) w.i32(static_cast<std::int32_t>(oid));
  w.end();
}

// ---- frontend ----

void startup_message(Bytes& out, std::span<const std::pair<std::string, std::string>> params) {
  MessageWriter w(out);
  w.begin_untyped().i32(static_cast<std::int32_t>(kProtocol3));
  for (const auto& [key, value] : params) w.str(key).str(value);
  w.i8(0).end();
}

void ssl_request(Bytes& out) {
  MessageWriter(out).begin_untyped().i32(static_cast<std::int32_t>(kSslRequestCode)).end();
}

void cancel_request(Bytes& out, std::int32_t pid, std::int32_t secret) {
  MessageWriter(out)
      .begin_untyped()
      .i32(static_cast<std::int32_t>(kCancelRequestCode))
      .i32(pid)
      .i32(secret)
      .end();
}

void password_message(Bytes& out, std::string_view password) {
  MessageWriter(out).begin(fe::password).str(password).end();
}

void sasl_initial_response(Bytes& out, std::string_view mechanism, std::string_view data) {
  MessageWriter(out)
      .begin(fe::password)
      .str(mechanism)
      .i32(static_cast<std::int32_t>(data.size()))
      .raw(data)
      .end();
}

void sasl_response(Bytes& out, std::string_view data) {
  MessageWriter(out).begin(fe::password).raw(data).end();
}

void query(Bytes& out, std::string_view sql) {
  MessageWriter(out).begin(fe::query).str(sql).end();
}

void parse(Bytes& out, std::string_view statement, std::string_view sql,
           std::span<const std::uint32_t> param_types) {
  MessageWriter w(out);
  w.begin(fe::parse).str(statement).str(sql).u16(static_cast<std::uint16_t>(param_types.size()));
  for (std::uint32_t oid : param_types) w.i32(static_cast<std::int32_t>(oid));
  w.end();
}

void close_statement(Bytes& out, std::string_view statement) {
  MessageWriter(out).begin(fe::close).i8(fe::target_statement).str(statement).end();
}

void sync(Bytes& out) {
  MessageWriter(out).begin(fe::sync).end();
}
void flush(Bytes& out) {
  MessageWriter(out).begin(fe::flush).end();
}
void terminate(Bytes& out) {
  MessageWriter(out).begin(fe::terminate).end();
}

}  // namespace pgshift::wire
