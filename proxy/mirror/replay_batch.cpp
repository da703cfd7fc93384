#include "proxy/mirror/replay_batch.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::mirror {

namespace {

namespace fe = wire::fe;

struct Msg {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> raw;   // header included
  std::span<const std::uint8_t> body;  // after the length
};

// Calls f(Msg) for each whole message; stops at a truncated one (never produced by the
// capture). Returns false when f does.
template <typename F>
bool for_each_message(std::span<const std::uint8_t> m, F&& f) {
  std::size_t pos = 0;
  while (pos + 5 <= m.size()) {
    const std::size_t len = 1 + std::size_t{wire::read_be32(m.data() + pos + 1)};
    if (len < 5 || len > m.size() - pos) return true;
    Msg msg{m[pos], m.subspan(pos, len), m.subspan(pos + 5, len - 5)};
    pos += len;
    if (!f(msg)) return false;
  }
  return true;
}

bool is_copy_piece(std::uint8_t t) {
  return t == fe::copy_data || t == fe::copy_done || t == fe::copy_fail;
}
bool is_terminator(std::uint8_t t) {
  return t == fe::query || t == fe::sync || t == fe::function_call;
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool contains_word_start(std::string_view sql, std::string_view word) {
  if (sql.size() < word.size()) return false;
  for (std::size_t i = 0; i + word.size() <= sql.size(); ++i) {
    std::size_t k = 0;
    while (k < word.size() && lower(sql[i + k]) == word[k]) ++k;
    if (k == word.size()) return true;
  }
  return false;
}

// BEGIN, START TRANSACTION, COMMIT/ROLLBACK AND CHAIN open a block; found anywhere (in a
// name or a literal too: conservative).
bool may_open_block(std::string_view sql) {
  return contains_word_start(sql, "begin") || contains_word_start(sql, "start") ||
         contains_word_start(sql, "chain");
}

// The SQL text of statement `name` as the last Parse of it in `messages` before `end`.
bool statement_text(std::span<const std::uint8_t> messages, std::size_t end, std::string_view name,
                    std::string_view& sql) {
  bool found = false;
  for_each_message(messages.first(end), [&](const Msg& m) {
    if (m.type != fe::parse) return true;
    wire::Parse p;
    if (!wire::parse_parse(m.body, p) && p.statement == name) {
      sql = p.query;
      found = true;
    }
    return true;
  });
  return found;
}

// Rule 1 and 2 of ends_idle(): the last unit is a lone transaction end.
bool last_unit_is_lone_exit(std::span<const std::uint8_t> messages, std::size_t unit_begin) {
  auto unit = messages.subspan(unit_begin);
  std::string_view query;
  std::string_view bound;
  int queries = 0, binds = 0, executes = 0, others = 0;
  bool ok = true;
  for_each_message(unit, [&](const Msg& m) {
    switch (m.type) {
      case fe::query:
        ++queries;
        if (wire::parse_query(m.body, query)) ok = false;
        break;
      case fe::bind: {
        ++binds;
        wire::BindNames b;
        if (wire::parse_bind_names(m.body, b)) ok = false;
        bound = b.statement;
        break;
      }
      case fe::execute:
        ++executes;
        break;
      case fe::parse: {
        wire::Parse p;
        if (wire::parse_parse(m.body, p)) ok = false;
        // Another statement's Parse could fail and skip the COMMIT up to the Sync.
        if (!is_lone_exit(p.query)) ok = false;
        break;
      }
      case fe::describe:
      case fe::close:
      case fe::flush:
      case fe::sync:
        break;
      default:
        ++others;
    }
    return ok;
  });
  if (!ok || others > 0) return false;
  if (queries == 1) return binds == 0 && executes == 0 && is_lone_exit(query);
  if (queries != 0 || binds != 1 || executes != 1) return false;
  std::string_view sql;
  return statement_text(messages, messages.size(), bound, sql) && is_lone_exit(sql);
}

// Rule 3 of ends_idle(): one unit, its own implicit transaction, nothing that opens a block.
bool single_unit_without_block(std::span<const std::uint8_t> messages) {
  bool ok = true, query = false, extended = false;
  for_each_message(messages, [&](const Msg& m) {
    std::string_view sql;
    if (m.type == fe::query) {
      query = true;
      if (wire::parse_query(m.body, sql)) ok = false;
    } else if (m.type == fe::parse) {
      extended = true;
      wire::Parse p;
      if (wire::parse_parse(m.body, p)) ok = false;
      sql = p.query;
    } else if (m.type == fe::bind) {
      extended = true;
      wire::BindNames b;
      std::string_view text;
      // The text of what it runs must be in the transaction (the capture puts it there).
      if (wire::parse_bind_names(m.body, b) ||
          !statement_text(messages, static_cast<std::size_t>(m.raw.data() - messages.data()),
                          b.statement, text)) {
        ok = false;
      }
    } else if (m.type == fe::function_call) {
      ok = false;
    } else if (!is_copy_piece(m.type)) {
      extended = true;
    }
    if (ok && may_open_block(sql)) ok = false;
    return ok;
  });
  // A Query behind unsynced extended messages would be skipped with them after an error.
  return ok && !(query && extended);
}

}  // namespace

namespace {

// The words of a statement made only of words (letters), comments, white space and one
// trailing semicolon: false for anything else or more than three words.
bool only_words(std::string_view sql, std::array<std::string, 3>& w, std::size_t& n) {
  std::size_t i = 0;
  n = 0;
  auto skip_space = [&] {
    for (;;) {
      while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
      if (sql.substr(i, 2) == "/*") {
        const auto e = sql.find("*/", i + 2);
        if (e == std::string_view::npos) return false;
        i = e + 2;
      } else if (sql.substr(i, 2) == "--") {
        const auto e = sql.find('\n', i);
        i = e == std::string_view::npos ? sql.size() : e + 1;
      } else {
        return true;
      }
    }
  };
  for (;;) {
    if (!skip_space()) return false;
    if (i == sql.size() || !std::isalpha(static_cast<unsigned char>(sql[i]))) break;
    if (n == w.size()) return false;
    std::string& word = w[n++];
    word.clear();
    while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])))
      word += lower(sql[i++]);
  }
  if (i < sql.size() && sql[i] == ';') {
    ++i;
    if (!skip_space()) return false;
  }
  return i == sql.size() && n > 0;
}

bool is_block_word(const std::string& w) {
  return w == "work" || w == "transaction";
}

}  // namespace

bool is_lone_exit(std::string_view sql) {
  std::array<std::string, 3> w;
  std::size_t n = 0;
  if (!only_words(sql, w, n) || n > 2) return false;
  if (w[0] != "commit" && w[0] != "end" && w[0] != "rollback" && w[0] != "abort") return false;
  return n == 1 || is_block_word(w[1]);
}

bool is_lone_commit(std::string_view sql) {
  std::array<std::string, 3> w;
  std::size_t n = 0;
  if (!only_words(sql, w, n) || n > 2) return false;
  return (w[0] == "commit" || w[0] == "end") && (n == 1 || is_block_word(w[1]));
}

bool is_lone_begin(std::string_view sql) {
  std::array<std::string, 3> w;
  std::size_t n = 0;
  if (!only_words(sql, w, n) || n > 2) return false;
  if (w[0] == "begin") return n == 1 || is_block_word(w[1]);
  return w[0] == "start" && n == 2 && w[1] == "transaction";
}

namespace {

bool join_queries(std::span<const std::uint8_t> messages, wire::Bytes& out) {
  std::size_t count = 0;
  std::string_view first, last;
  const bool only_queries = for_each_message(messages, [&](const Msg& m) {
    std::string_view sql;
    if (m.type != fe::query || wire::parse_query(m.body, sql)) return false;
    if (count++ == 0) first = sql;
    last = sql;
    return true;
  });
  if (!only_queries || count < 3 || !is_lone_begin(first) || !is_lone_commit(last)) return false;
  const std::size_t start = out.size();
  out.push_back(fe::query);
  out.resize(out.size() + 4);  // the length, set below
  std::size_t k = 0;
  for_each_message(messages, [&](const Msg& m) {
    std::string_view sql;
    wire::parse_query(m.body, sql);  // checked above
    if (k > 0 && k + 1 < count) {
      if (k > 1) out.insert(out.end(), {'\n', ';'});
      out.insert(out.end(), sql.begin(), sql.end());
    }
    ++k;
    return true;
  });
  out.push_back(0);
  wire::write_be32(out.data() + start + 1, static_cast<std::uint32_t>(out.size() - start - 1));
  return true;
}

bool is_extended(std::uint8_t t) {
  return t == fe::parse || t == fe::bind || t == fe::describe || t == fe::execute ||
         t == fe::close || t == fe::flush || t == fe::sync;
}

// The text of the one statement the unit messages[begin, end) binds and executes; false if it
// has not exactly one Bind and one Execute, or the text is not in `messages` before the Bind.
bool runs_one(std::span<const std::uint8_t> messages, std::size_t begin, std::size_t end,
              std::string_view& sql) {
  int binds = 0, executes = 0;
  std::size_t bind_at = 0;
  wire::BindNames b;
  for_each_message(messages.subspan(begin, end - begin), [&](const Msg& m) {
    if (m.type == fe::bind) {
      ++binds;
      bind_at = static_cast<std::size_t>(m.raw.data() - messages.data());
      if (wire::parse_bind_names(m.body, b)) binds = 2;  // refused below
    }
    if (m.type == fe::execute) ++executes;
    return true;
  });
  return binds == 1 && executes == 1 && statement_text(messages, bind_at, b.statement, sql);
}

bool join_extended(std::span<const std::uint8_t> messages, wire::Bytes& out) {
  std::size_t syncs = 0, first_end = 0, last_begin = 0, previous_end = 0, size = 0;
  const bool only_extended = for_each_message(messages, [&](const Msg& m) {
    if (!is_extended(m.type)) return false;
    size = static_cast<std::size_t>(m.raw.data() - messages.data()) + m.raw.size();
    if (m.type == fe::sync) {
      if (++syncs == 1) first_end = size;
      last_begin = previous_end;
      previous_end = size;
    }
    return true;
  });
  std::string_view begin_sql, commit_sql;
  if (!only_extended || syncs < 3 || size != messages.size() || previous_end != size ||
      !runs_one(messages, 0, first_end, begin_sql) || !is_lone_begin(begin_sql) ||
      !runs_one(messages, last_begin, size, commit_sql) || !is_lone_commit(commit_sql)) {
    return false;
  }
  // Of the BEGIN and COMMIT units only the Parse of named statements and Close stay (what the
  // connection holds stays known); the Syncs between the rest go, and one ends it all.
  for_each_message(messages, [&](const Msg& m) {
    const auto at = static_cast<std::size_t>(m.raw.data() - messages.data());
    const bool edge = at < first_end || at >= last_begin;
    wire::Parse p;
    const bool keep =
        m.type == fe::close ||
        (m.type == fe::parse && !wire::parse_parse(m.body, p) && !p.statement.empty());
    if (m.type == fe::sync || (edge && !keep)) return true;
    out.insert(out.end(), m.raw.begin(), m.raw.end());
    return true;
  });
  wire::sync(out);
  return true;
}

}  // namespace

bool join_transaction(std::span<const std::uint8_t> messages, wire::Bytes& out) {
  if (messages.empty()) return false;
  return messages[0] == fe::query ? join_queries(messages, out) : join_extended(messages, out);
}

bool ends_idle(std::span<const std::uint8_t> messages) {
  std::size_t units = 0, last_begin = 0, next_begin = 0;
  std::uint8_t last_terminator = 0;
  bool after_terminator = false;
  for_each_message(messages, [&](const Msg& m) {
    const auto at = static_cast<std::size_t>(m.raw.data() - messages.data());
    if (after_terminator && !is_copy_piece(m.type)) {
      next_begin = at;  // a new unit starts
      after_terminator = false;
    }
    if (is_terminator(m.type)) {
      ++units;
      last_begin = next_begin;
      last_terminator = m.type;
      after_terminator = true;
    }
    return true;
  });
  if (units == 0 || last_terminator == fe::function_call) return false;
  if (last_unit_is_lone_exit(messages, last_begin)) return true;
  return units == 1 && single_unit_without_block(messages);
}

bool append_replay(std::span<const std::uint8_t> messages, pool::PreparedSet& prepared,
                   const NameSet& pending, wire::Bytes& out, std::vector<std::string>& introduced) {
  // First pass: would it rely on (or prepare again) a statement not confirmed yet?
  if (!pending.empty()) {
    const bool ok = for_each_message(messages, [&](const Msg& m) {
      if (m.type != fe::parse) return true;
      wire::Parse p;
      if (wire::parse_parse(m.body, p) || p.statement.empty()) return true;
      return !pending.contains(p.statement);
    });
    if (!ok) return false;
  }
  std::string name;
  out.reserve(out.size() + messages.size());
  for_each_message(messages, [&](const Msg& m) {
    if (m.type == fe::parse) {
      wire::Parse p;
      if (!wire::parse_parse(m.body, p) && !p.statement.empty()) {
        name.assign(p.statement);
        if (prepared.contains(name)) {
          prepared.touch(name);
          return true;  // this connection has it (a name stands for one text and types)
        }
        if (auto victim = prepared.add(name)) {
          wire::close_statement(out, *victim);
          introduced.push_back(std::move(*victim));  // uncertain as well until the answer
        }
        introduced.push_back(name);
      }
    }
    out.insert(out.end(), m.raw.begin(), m.raw.end());
    return true;
  });
  return true;
}

}  // namespace pgshift::mirror
