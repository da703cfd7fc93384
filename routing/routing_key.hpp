#pragma once
// The routing key: which end user a statement is for, so that the read split sends all of a
// user's reads to the same side. Sources, highest precedence first (DESIGN.md §4):
//   1. a sqlcommenter comment in the statement:   SELECT ... /* user_id='42' */
//   2. SET [LOCAL] pgshift.routing_key = '42' on the session (RESET clears it)
//   3. the startup packet: a parameter named by config (routing_key.startup_parameter), or
//      "-c pgshift.routing_key=42" inside the "options" parameter
//   4. otherwise the connection itself (an id passed in by the proxy)
// Empty values count as absent. Pure functions; KeyState is per session, not thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "routing/lexer.hpp"

namespace pgshift::routing {

// Percent-decodes %XX sequences (sqlcommenter values are URL-encoded). Malformed escapes
// are kept literally; '+' is kept (sqlcommenter encodes a space as %20).
std::string url_decode(std::string_view s);

// Parses the body of one comment ("/*" and "*/" or "--" already removed or not: both are
// accepted) as sqlcommenter key='value' pairs separated by commas and returns the decoded
// value of `key`. Tolerant: values may be 'single', "double" or unquoted; \' inside a quoted
// value is an escaped quote; spaces around '=' and ',' are ignored. Keys compare exactly
// (after URL-decoding). Returns nullopt if the key is absent or its value is empty.
std::optional<std::string> parse_sqlcommenter(std::string_view comment, std::string_view key);

// The first comment in `sql` (lexed, so text inside literals is ignored) that carries `key`.
std::optional<std::string> key_from_comment(std::string_view sql, std::string_view key,
                                            LexerOptions options = {});

// "-c name=value", "-cname=value" or "--name=value" inside a startup "options" string
// (whitespace-separated, backslash escapes the next character, as libpq/postmaster parse
// it). The setting name compares case-insensitively. The last occurrence wins.
std::optional<std::string> key_from_options(std::string_view options, std::string_view setting);

using StartupParams = std::vector<std::pair<std::string, std::string>>;

// From the startup packet: the parameter named `cfg.startup_parameter` if present, else the
// setting `cfg.setting` inside "options".
std::optional<std::string> key_from_startup(const StartupParams& params,
                                            const config::RoutingKey& cfg);

// A SET/RESET of the routing-key setting, found by the classifier.
struct RoutingKeyChange {
  enum class Kind : std::uint8_t { set, reset };
  Kind kind = Kind::set;
  std::string value;   // kind == set
  bool local = false;  // SET LOCAL: lasts until the end of the current transaction
  bool operator==(const RoutingKeyChange&) const = default;
};

enum class KeySource : std::uint8_t {
  comment,
  transaction_setting,
  session_setting,
  startup,
  connection
};

std::string_view to_string(KeySource s);

struct ResolvedKey {
  std::string key;
  KeySource source = KeySource::connection;
};

// Per-session routing key state. The proxy feeds it SET/RESET changes (from the classifier)
// and transaction ends, and asks for the effective key of each statement or transaction.
class KeyState {
 public:
  KeyState(std::optional<std::string> startup_key, std::string connection_key);

  void apply(const RoutingKeyChange& change);
  void end_transaction();  // drops a SET LOCAL value (COMMIT, ROLLBACK, or an implicit end)

  // comment > SET LOCAL > SET > startup > connection.
  ResolvedKey resolve(const std::optional<std::string>& comment_key) const;

  const std::optional<std::string>& session_key() const { return session_key_; }

 private:
  std::optional<std::string> startup_key_;
  std::string connection_key_;
  std::optional<std::string> session_key_;
  std::optional<std::string> transaction_key_;
  bool transaction_reset_ = false;  // SET LOCAL ... = DEFAULT hides the session value
};

}  // namespace pgshift::routing
