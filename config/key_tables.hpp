#pragma once
// The key table's parts (keys.cpp joins them in this order, the order of the reference in
// docs/configuration.md): the listener, admin and client auth; routes and their upstreams;
// the control plane, limits and process settings. Internal to config/.
#include <span>

#include "config/keys.hpp"

namespace pgshift::config::key_tables {

constexpr std::int64_t kMaxMs = 2147483647;  // ~24.8 days; keeps arithmetic on it in range
constexpr std::int64_t kMaxCount = 1000000;

// The address of a field, relative to the objects of the current Scope.
#define PGSHIFT_FIELD(expr) [](const Scope& s) -> FieldPtr { return &s.expr; }

using T = KeyType;

std::span<const KeyInfo> front();    // listen, admin, client_auth
std::span<const KeyInfo> routes();   // routes[], routes[].source / .target (upstream)
std::span<const KeyInfo> process();  // control, limits, process settings

}  // namespace pgshift::config::key_tables
