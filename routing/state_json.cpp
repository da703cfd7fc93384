#include "routing/state_json.hpp"

#include <cmath>

namespace pgshift::routing {
namespace {

namespace json = boost::json;

template <class T>
Result<T> bad(std::string_view where, std::string_view what) {
  return Result<T>::failure(errc::bad_json, std::string(where) + ": " + std::string(what));
}

// An integer member as int64 (a double such as 7.0 is accepted when it is whole).
std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

// Echo of a bad value in an error message, cut short: messages go back to API callers.
std::string echo(std::string_view s) {
  constexpr std::size_t kMax = 64;
  if (s.size() <= kMax) return std::string(s);
  return std::string(s.substr(0, kMax)) + "...";
}

constexpr std::string_view kPercentRule =
    "must be a number between 0 and 100 with at most two decimals";

}  // namespace

json::value read_percent_json(ReadPercent p) {
  if (p.basis_points() % 100 == 0) return json::value(std::int64_t{p.basis_points() / 100});
  return json::value(p.as_double());
}

json::object to_json(const MigrationState& s) {
  json::object o;
  o["phase"] = phase_name(s.phase);
  o["read_percent"] = read_percent_json(s.read_percent);
  o["read_percent_bp"] = s.read_percent.basis_points();
  o["epoch"] = s.epoch;
  o["updated_at_ms"] = s.updated_at_ms;
  o["previous_phase"] = phase_name(s.previous_phase);
  return o;
}

json::object to_json(const StateFile& f) {
  json::object routes;
  for (const auto& [name, state] : f.routes) routes[name] = to_json(state);
  json::object o;
  o["version"] = kStateFileVersion;
  o["routes"] = std::move(routes);
  return o;
}

Result<ReadPercent> read_percent_from_json(const json::value& v, std::string_view where) {
  std::optional<ReadPercent> p;
  if (v.is_string()) {
    const json::string& s = v.get_string();
    p = ReadPercent::parse(std::string_view(s.data(), s.size()));
  } else if (v.is_int64()) {
    if (v.get_int64() >= 0) p = ReadPercent::from_basis_points(v.get_int64() * 100ull);
    if (v.get_int64() > 100) p.reset();
  } else if (v.is_uint64()) {
    if (v.get_uint64() <= 100) p = ReadPercent::from_basis_points(v.get_uint64() * 100);
  } else if (v.is_double()) {
    p = ReadPercent::from_double(v.get_double());
  }
  if (!p) {
    return Result<ReadPercent>::failure(errc::invalid_read_percent,
                                        std::string(where) + ": " + std::string(kPercentRule) +
                                            " (got " + echo(json::serialize(v)) + ")");
  }
  return Result<ReadPercent>::success(*p);
}

Result<MigrationState> state_from_json(const json::value& v, std::string_view where) {
  using R = Result<MigrationState>;
  const std::string w(where);
  if (!v.is_object()) return bad<MigrationState>(where, "must be an object");
  const json::object& o = v.get_object();
  MigrationState s;

  const json::value* phase = o.if_contains("phase");
  if (phase == nullptr) return bad<MigrationState>(where, "missing \"phase\"");
  if (!phase->is_string()) return bad<MigrationState>(w + ".phase", "must be a string");
  const json::string& phase_text = phase->get_string();
  const auto parsed = parse_phase(std::string_view(phase_text.data(), phase_text.size()));
  if (!parsed) {
    return R::failure(errc::unknown_phase,
                      w + ".phase: unknown phase \"" +
                          echo(std::string_view(phase_text.data(), phase_text.size())) +
                          "\" (expected source_only, sync, cutover, target_primary or "
                          "target_only)");
  }
  s.phase = *parsed;
  s.previous_phase = s.phase;

  if (const json::value* prev = o.if_contains("previous_phase")) {
    if (!prev->is_string()) return bad<MigrationState>(w + ".previous_phase", "must be a string");
    const json::string& t = prev->get_string();
    const auto p = parse_phase(std::string_view(t.data(), t.size()));
    if (!p) {
      return R::failure(errc::unknown_phase, w + ".previous_phase: unknown phase \"" +
                                                 echo(std::string_view(t.data(), t.size())) + "\"");
    }
    s.previous_phase = *p;
  }

  const json::value* bp = o.if_contains("read_percent_bp");
  const json::value* pct = o.if_contains("read_percent");
  if (bp == nullptr && pct == nullptr) {
    return bad<MigrationState>(where, "missing \"read_percent\"");
  }
  if (bp != nullptr) {
    const auto n = as_int(*bp);
    const auto p = n && *n >= 0 ? ReadPercent::from_basis_points(static_cast<std::uint64_t>(*n))
                                : std::nullopt;
    if (!p) {
      return R::failure(errc::invalid_read_percent,
                        w + ".read_percent_bp: must be an integer between 0 and 10000");
    }
    s.read_percent = *p;
  }
  if (pct != nullptr) {
    auto p = read_percent_from_json(*pct, w + ".read_percent");
    if (!p) return R::failure(errc::invalid_read_percent, p.message);
    if (bp != nullptr && *p != s.read_percent) {
      return R::failure(errc::invalid_read_percent,
                        w + ": read_percent and read_percent_bp disagree");
    }
    s.read_percent = *p;
  }

  const json::value* epoch = o.if_contains("epoch");
  if (epoch == nullptr) return bad<MigrationState>(where, "missing \"epoch\"");
  const auto e = as_int(*epoch);
  if (!e || *e < 0) return bad<MigrationState>(w + ".epoch", "must be a non-negative integer");
  s.epoch = static_cast<std::uint64_t>(*e);

  if (const json::value* at = o.if_contains("updated_at_ms")) {
    const auto t = as_int(*at);
    if (!t) return bad<MigrationState>(w + ".updated_at_ms", "must be an integer");
    s.updated_at_ms = *t;
  }
  return R::success(s);
}

Result<StateFile> state_file_from_json(const json::value& v) {
  using R = Result<StateFile>;
  if (!v.is_object()) return bad<StateFile>("state file", "must be a JSON object");
  const json::object& o = v.get_object();
  const json::value* version = o.if_contains("version");
  if (version == nullptr) return bad<StateFile>("state file", "missing \"version\"");
  const auto n = as_int(*version);
  if (!n || *n < 1) return bad<StateFile>("version", "must be a positive integer");
  if (*n > kStateFileVersion) {
    return R::failure(errc::unsupported_version,
                      "version: state file version " + std::to_string(*n) +
                          " was written by a newer pgshift (this one reads up to " +
                          std::to_string(kStateFileVersion) + ")");
  }
  const json::value* routes = o.if_contains("routes");
  if (routes == nullptr) return bad<StateFile>("state file", "missing \"routes\"");
  if (!routes->is_object()) return bad<StateFile>("routes", "must be an object");
  StateFile f;
  for (const auto& [name, state] : routes->get_object()) {
    const std::string key(name.data(), name.size());
    auto s = state_from_json(state, "routes." + key);
    if (!s) return R{std::nullopt, s.error, s.message};
    f.routes.emplace(key, *s);
  }
  return R::success(std::move(f));
}

std::string serialize_state_file(const StateFile& f) {
  return json::serialize(to_json(f)) + "\n";
}

Result<StateFile> parse_state_file(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return bad<StateFile>("state file", "not valid JSON: " + ec.message());
  return state_file_from_json(v);
}

}  // namespace pgshift::routing
