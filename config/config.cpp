// Enum spellings and small Config helpers. The names here are the YAML spellings; the key
// table (keys.cpp) lists the same names for docs and error messages, and a unit test keeps
// the two in step.
#include "config/config.hpp"

#include <array>
#include <cstddef>

namespace pgshift::config {
namespace {

constexpr std::array<std::string_view, 3> kClientTlsModes{"disable", "allow", "require"};
constexpr std::array<std::string_view, 4> kUpstreamTlsModes{"disable", "require", "verify-ca",
                                                            "verify-full"};
constexpr std::array<std::string_view, 3> kClientAuthMethods{"scram-sha-256", "md5", "trust"};
constexpr std::array<std::string_view, 2> kPoolModes{"session", "transaction"};
constexpr std::array<std::string_view, 3> kSyncModes{"none", "logical", "mirror"};
constexpr std::array<std::string_view, 2> kMirrorAcks{"async", "sync"};
constexpr std::array<std::string_view, 2> kMirrorOverflows{"block", "mark_diverged"};
constexpr std::array<std::string_view, 4> kControlModes{"automatic", "target", "file", "database"};
constexpr std::array<std::string_view, 5> kPhases{"source_only", "sync", "cutover",
                                                  "target_primary", "target_only"};

// Names are listed in declaration order, so the enum value is the index.
template <class E, std::size_t N>
std::string_view name_of(E e, const std::array<std::string_view, N>& names) {
  auto i = static_cast<std::size_t>(e);
  return i < N ? names[i] : std::string_view{"unknown"};
}

template <class E, std::size_t N>
std::optional<E> value_of(std::string_view s, const std::array<std::string_view, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

template <class E, std::size_t N>
bool assign(std::string_view s, const std::array<std::string_view, N>& names, E& out) {
  auto v = value_of<E>(s, names);
  if (!v) return false;
  out = *v;
  return true;
}

}  // namespace

const Route* Config::find_route(std::string_view name) const {
  for (const auto& r : routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string_view to_string(ClientTlsMode m) {
  return name_of(m, kClientTlsModes);
}
std::string_view to_string(UpstreamTlsMode m) {
  return name_of(m, kUpstreamTlsModes);
}
std::string_view to_string(ClientAuthMethod m) {
  return name_of(m, kClientAuthMethods);
}
std::string_view to_string(PoolMode m) {
  return name_of(m, kPoolModes);
}
std::string_view to_string(SyncMode m) {
  return name_of(m, kSyncModes);
}
std::string_view to_string(MirrorAck m) {
  return name_of(m, kMirrorAcks);
}
std::string_view to_string(MirrorOverflow m) {
  return name_of(m, kMirrorOverflows);
}
std::string_view to_string(Phase p) {
  return name_of(p, kPhases);
}

std::string_view to_string(ControlMode m) {
  return name_of(m, kControlModes);
}

std::optional<Phase> phase_from_string(std::string_view s) {
  return value_of<Phase>(s, kPhases);
}

bool from_string(std::string_view s, ClientTlsMode& out) {
  return assign(s, kClientTlsModes, out);
}
bool from_string(std::string_view s, UpstreamTlsMode& out) {
  return assign(s, kUpstreamTlsModes, out);
}
bool from_string(std::string_view s, ClientAuthMethod& out) {
  return assign(s, kClientAuthMethods, out);
}
bool from_string(std::string_view s, PoolMode& out) {
  return assign(s, kPoolModes, out);
}
bool from_string(std::string_view s, SyncMode& out) {
  return assign(s, kSyncModes, out);
}
bool from_string(std::string_view s, MirrorAck& out) {
  return assign(s, kMirrorAcks, out);
}
bool from_string(std::string_view s, MirrorOverflow& out) {
  return assign(s, kMirrorOverflows, out);
}

bool from_string(std::string_view s, ControlMode& out) {
  if (s == "none" || s == "file") {
    out = ControlMode::file;
    return true;
  }
  if (s == "target") {
    out = ControlMode::target;
    return true;
  }
  return false;
}

const Route* first_target_route(const Config& c) {
  for (const auto& r : c.routes) {
    if (r.target) return &r;
  }
  return nullptr;
}

ControlMode control_mode(const Config& c) {
  if (!c.control.database.host.empty()) return ControlMode::database;
  if (c.control.mode != ControlMode::automatic) return c.control.mode;
  const Route* r = first_target_route(c);
  if (r && !r->target->passthrough && !r->target->user.empty() && !r->target->database.empty()) {
    return ControlMode::target;
  }
  return ControlMode::file;
}

std::optional<Upstream> control_upstream(const Config& c) {
  switch (control_mode(c)) {
    case ControlMode::database:
      return c.control.database;
    case ControlMode::target:
      if (const Route* r = first_target_route(c)) return *r->target;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace pgshift::config
