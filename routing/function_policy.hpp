#pragma once
// Which functions a statement may call and still count as read-only. The point is side
// effects, not volatility: random() or clock_timestamp() are volatile but change nothing, so
// they are allowed; nextval() changes a sequence, so it is not. The built-in list
// (function_policy.cpp, documented in docs/routing.md) covers common side-effect-free
// PostgreSQL builtins; config read_split.allowed_functions adds more ("name" or
// "schema.name"). A built-in deny list (sequences, advisory locks, set_config, large
// objects, dblink, replication/admin functions) wins over the configured list.
//
// Names are matched as the server would resolve them: unquoted names are folded to lower
// case by the caller; a name qualified with pg_catalog is looked up as the bare name; any
// other schema must be listed as "schema.name". Immutable after construction; safe to share
// between threads.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pgshift::routing {

enum class FunctionKind : std::uint8_t {
  read_only,        // on the allow-list
  unknown,          // on no list: may write, so the statement goes to the authoritative side
  write,            // known to change state (nextval, setval, pg_notify, lo_*, dblink, ...)
  advisory_lock,    // session-level pg_advisory_lock / pg_try_advisory_lock (pins the session)
  advisory_unlock,  // session-level pg_advisory_unlock* (session state, no new pin)
  set_config,       // set_config(name, value, is_local)
};

std::string_view to_string(FunctionKind k);

class FunctionPolicy {
 public:
  // `extra_allowed`: config read_split.allowed_functions (case-insensitive).
  explicit FunctionPolicy(const std::vector<std::string>& extra_allowed = {});

  // `schema` is empty for an unqualified call. Both arguments are already case-folded
  // (unquoted) or unescaped (quoted) by the caller.
  FunctionKind classify(std::string_view schema, std::string_view name) const;

  // The built-in allow-list, sorted, for documentation and tests.
  static std::vector<std::string_view> builtin_allowed();

 private:
  std::unordered_set<std::string> extra_;  // lower-case "name" or "schema.name"
};

}  // namespace pgshift::routing
