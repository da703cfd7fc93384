#include "proxy/session/prepared_statements.hpp"

#include "wire/byte_order.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

std::string StatementMapper::next_server_name() {
  return "pgs_" + std::to_string(client_id_) + "_" + std::to_string(next_++);
}

namespace {
// A Bind of `statement` (the server-side name) with the client's portal and the rest of its
// body (parameter formats, values, result formats) as sent.
void append_bind(wire::Bytes& out, std::string_view portal, std::string_view statement,
                 std::span<const std::uint8_t> rest) {
  wire::MessageWriter(out).begin(wire::fe::bind).str(portal).str(statement).raw(rest).end();
}
}  // namespace

bool ResponseFilter::should_forward(std::uint8_t type, pool::PreparedSet& server) {
  switch (type) {
    case wire::be::parse_complete: {
      if (parse_head_ == parses_.size()) return true;
      bool injected = parses_[parse_head_++].injected;
      if (parse_head_ == parses_.size()) {
        parses_.clear();
        parse_head_ = 0;
      }
      return !injected;
    }
    case wire::be::close_complete: {
      if (close_head_ == closes_.size()) return true;
      bool injected = closes_[close_head_++];
      if (close_head_ == closes_.size()) {
        closes_.clear();
        close_head_ = 0;
      }
      return !injected;
    }
    case wire::be::error_response:
    case wire::be::ready_for_query:
      // Everything after an error up to Sync is skipped by the server: the Parses not yet
      // answered never ran, so those names are not prepared there.
      for (std::size_t i = parse_head_; i < parses_.size(); ++i)
        server.erase(parses_[i].server_name);
      if (!empty()) clear();
      return true;
    default:
      return true;
  }
}

void StatementMapper::append_raw(std::uint8_t type, std::span<const std::uint8_t> body,
                                 wire::Bytes& out) {
  wire::MessageWriter(out).begin(static_cast<char>(type)).raw(body).end();
}

void StatementMapper::ensure_prepared(const Statement& st, pool::PreparedSet& server,
                                      ResponseFilter& filter, wire::Bytes& out) {
  if (server.contains(st.server_name)) {
    server.touch(st.server_name);
    return;
  }
  if (auto victim = server.add(st.server_name)) {
    wire::close_statement(out, *victim);
    filter.expect_close(/*injected=*/true);
  }
  wire::parse(out, st.server_name, st.query, st.param_types);
  filter.expect_parse(st.server_name, /*injected=*/true);
}

bool StatementMapper::remember(std::span<const std::uint8_t> parse_body) {
  wire::Parse p;
  if (wire::parse_parse(parse_body, p) || p.statement.empty()) return false;
  statements()[std::string(p.statement)] =
      Statement{next_server_name(), std::string(p.query), p.param_types};
  return true;
}

namespace {

// Bind parameters from this size on are written from where they are, not copied.
constexpr std::size_t kTailFrom = 64 * 1024;

// The start of a Bind whose parameters (`params` bytes) follow from elsewhere.
void bind_head(wire::Bytes& out, std::string_view portal, std::string_view statement,
               std::size_t params) {
  const std::size_t length = 4 + portal.size() + 1 + statement.size() + 1 + params;
  const std::size_t at = out.size();
  out.resize(at + 5);
  out[at] = wire::fe::bind;
  wire::write_be32(out.data() + at + 1, static_cast<std::uint32_t>(length));
  out.insert(out.end(), portal.begin(), portal.end());
  out.push_back(0);
  out.insert(out.end(), statement.begin(), statement.end());
  out.push_back(0);
}

}  // namespace

// A Bind, rebuilt with the statement's server-side name (prepared there first if needed).
bool StatementMapper::rewrite_bind(std::span<const std::uint8_t> body, pool::PreparedSet& server,
                                   ResponseFilter& filter, wire::Bytes& out,
                                   std::span<const std::uint8_t>* tail) {
  wire::BindNames names;
  if (wire::parse_bind_names(body, names)) return false;
  auto it = names.statement.empty() ? statements().end()
                                    : statements().find(std::string(names.statement));
  // Bind = portal\0 statement\0 rest...
  const std::size_t rest = names.portal.size() + 1 + names.statement.size() + 1;
  const bool by_tail = tail && body.size() - rest >= kTailFrom;
  if (it == statements().end()) {
    // Unnamed, or unknown (the server gives its own error): as it came.
    if (!by_tail) {
      append_raw(wire::fe::bind, body, out);
      return true;
    }
    bind_head(out, names.portal, names.statement, body.size() - rest);
    *tail = body.subspan(rest);
    return true;
  }
  ensure_prepared(it->second, server, filter, out);
  // Rebuilt with the server-side statement name.
  if (by_tail) {
    bind_head(out, names.portal, it->second.server_name, body.size() - rest);
    *tail = body.subspan(rest);
    return true;
  }
  append_bind(out, names.portal, it->second.server_name, body.subspan(rest));
  return true;
}

bool StatementMapper::rewrite(std::uint8_t type, std::span<const std::uint8_t> body,
                              pool::PreparedSet& server, ResponseFilter& filter, wire::Bytes& out,
                              std::span<const std::uint8_t>* tail) {
  switch (type) {
    case wire::fe::parse: {
      wire::Parse p;
      if (wire::parse_parse(body, p)) return false;
      if (p.statement.empty()) {
        append_raw(type, body, out);
        filter.expect_parse({}, false);
        return true;
      }
      // A fresh server name for every Parse: a re-Parse of the same client name never meets
      // a stale copy left on another server.
      Statement st{next_server_name(), std::string(p.query), p.param_types};
      if (auto victim = server.add(st.server_name)) {
        wire::close_statement(out, *victim);
        filter.expect_close(true);
      }
      wire::parse(out, st.server_name, st.query, st.param_types);
      filter.expect_parse(st.server_name, false);
      statements()[std::string(p.statement)] = std::move(st);
      return true;
    }
    case wire::fe::bind:
      return rewrite_bind(body, server, filter, out, tail);
    case wire::fe::describe:
    case wire::fe::close: {
      wire::CloseOrDescribe m;
      if ((type == wire::fe::describe ? wire::parse_describe(body, m) : wire::parse_close(body, m)))
        return false;
      auto it = m.kind == wire::fe::target_statement && !m.name.empty()
                    ? statements().find(std::string(m.name))
                    : statements().end();
      if (it == statements().end()) {
        append_raw(type, body, out);
        if (type == wire::fe::close) filter.expect_close(false);
        return true;
      }
      if (type == wire::fe::describe) {
        ensure_prepared(it->second, server, filter, out);
        wire::MessageWriter(out)
            .begin(wire::fe::describe)
            .i8(wire::fe::target_statement)
            .str(it->second.server_name)
            .end();
      } else {
        wire::MessageWriter(out)
            .begin(wire::fe::close)
            .i8(wire::fe::target_statement)
            .str(it->second.server_name)
            .end();
        filter.expect_close(false);
        server.erase(it->second.server_name);
        statements().erase(it);
      }
      return true;
    }
    default:
      append_raw(type, body, out);
      return true;
  }
}

bool StatementMapper::mirror_copy(std::uint8_t type, std::span<const std::uint8_t> body,
                                  pool::PreparedSet& unit, wire::Bytes& out) const {
  auto prepare = [&](const Statement& st) {
    if (unit.contains(st.server_name)) return;
    unit.add(st.server_name);
    wire::parse(out, st.server_name, st.query, st.param_types);
  };
  switch (type) {
    case wire::fe::parse: {
      wire::Parse p;
      if (wire::parse_parse(body, p)) return false;
      auto it =
          p.statement.empty() ? statements().end() : statements().find(std::string(p.statement));
      if (it == statements().end()) {
        wire::MessageWriter(out).begin(wire::fe::parse).raw(body).end();
        return true;
      }
      prepare(it->second);
      return true;
    }
    case wire::fe::bind: {
      wire::BindNames names;
      if (wire::parse_bind_names(body, names)) return false;
      auto it = names.statement.empty() ? statements().end()
                                        : statements().find(std::string(names.statement));
      if (it == statements().end()) {
        wire::MessageWriter(out).begin(wire::fe::bind).raw(body).end();
        return true;
      }
      prepare(it->second);
      std::size_t rest = names.portal.size() + 1 + names.statement.size() + 1;
      append_bind(out, names.portal, it->second.server_name, body.subspan(rest));
      return true;
    }
    case wire::fe::describe:
    case wire::fe::close: {
      wire::CloseOrDescribe m;
      if ((type == wire::fe::describe ? wire::parse_describe(body, m) : wire::parse_close(body, m)))
        return false;
      if (type == wire::fe::close && m.kind == wire::fe::target_statement) return true;
      auto it = m.kind == wire::fe::target_statement && !m.name.empty()
                    ? statements().find(std::string(m.name))
                    : statements().end();
      if (it == statements().end()) {
        wire::MessageWriter(out).begin(static_cast<char>(type)).raw(body).end();
        return true;
      }
      prepare(it->second);
      wire::MessageWriter(out)
          .begin(wire::fe::describe)
          .i8(wire::fe::target_statement)
          .str(it->second.server_name)
          .end();
      return true;
    }
    default:
      wire::MessageWriter(out).begin(static_cast<char>(type)).raw(body).end();
      return true;
  }
}

}  // namespace pgshift::proxy
