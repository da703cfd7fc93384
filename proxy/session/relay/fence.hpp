#pragma once
// The fence error of a side a route left (proxy/migrate/cutover_db.cpp, pgshift.fence()):
// SQLSTATE 25006 with the fence's own message, never any other 25006
// (read-only transactions, hot standbys). Thread-safety: pure functions.
#include <string>
#include <string_view>

#include "wire/messages.hpp"

namespace pgshift::proxy {

bool is_fence_error(const wire::ErrorFields& ef);
// "pgshift: route R moved to the SIDE during this transaction; retry it", SIDE from `ef`
// (which is_fence_error accepted).
std::string fence_moved_error(const wire::ErrorFields& ef, std::string_view route);

}  // namespace pgshift::proxy
