#pragma once
// The endpoint handlers of the admin API (docs/admin-api.md). admin_router.cpp has already
// checked the method and the bearer token when these run. They run on the admin server's
// executor (io_context 0); PUT read-percent writes the state file (fsync) on that thread.
#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "proxy/admin/http.hpp"

namespace pgshift::proxy {

// admin_probe_api.cpp
AdminResponse handle_healthz(const AdminCall& call);
AdminResponse handle_readyz(const AdminCall& call);
AdminResponse handle_metrics(const AdminCall& call);

// admin_routes_api.cpp
AdminResponse handle_list_routes(const AdminCall& call);
AdminResponse handle_get_route(const AdminCall& call, std::string_view name);
// Without an async caller (handle_admin_request) it waits for the store on this thread.
AdminResponse handle_put_read_percent(const AdminCall& call, std::string_view name);
boost::asio::awaitable<AdminResponse> handle_put_read_percent_async(AdminCall call,
                                                                    std::string name);

// members_api.cpp: GET /v1/members
AdminResponse handle_list_members(const AdminCall& call);
// The control block of /v1/members and /v1/routes: mode, connected, member id...
json::object control_view(const Runtime& runtime);

// cutover_api.cpp: POST /v1/routes/{name}/cutover|rollback|finalize|recover (202, runs on its own
// thread), GET /v1/routes/{name}/operation (its progress).
AdminResponse handle_route_operation(const AdminCall& call, std::string_view name,
                                     std::string_view action);
AdminResponse handle_get_operation(const AdminCall& call, std::string_view name);

// admin_pause_api.cpp
AdminResponse handle_pause(const AdminCall& call);
AdminResponse handle_resume(const AdminCall& call);
AdminResponse handle_get_pause(const AdminCall& call);

// admin_pools_api.cpp
AdminResponse handle_list_pools(const AdminCall& call);
// Feeds the pool gauges and counters from runtime.pools before /metrics is serialized.
void refresh_pool_metrics(const Runtime& runtime);

// admin_route_view.cpp: one route as the API shows it (never a password).
json::object route_view(const Runtime& runtime, const RouteRuntime& route);

}  // namespace pgshift::proxy
