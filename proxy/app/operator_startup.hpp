#pragma once
// Brings up the operator surface for Server::run(): the route state store (loading the
// state file), the pause gate and the health checker, published in `runtime`, then the
// admin API when admin.enabled. Everything runs on `executor` (io_context 0).
#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "proxy/admin/server.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::proxy {

// Throws StateFileError for an unusable state file and std::runtime_error when the admin
// address cannot be bound: both are startup errors with a message naming the problem.
// Returns the admin server (null when disabled).
std::shared_ptr<AdminServer> start_operator_surface(Runtime& runtime,
                                                    asio::any_io_executor executor);

// Stops what start_operator_surface() started and clears the runtime's pointers. Call after
// the io_contexts have stopped, before they are destroyed (their timers live there).
void stop_operator_surface(Runtime& runtime, const std::shared_ptr<AdminServer>& admin);

}  // namespace pgshift::proxy
