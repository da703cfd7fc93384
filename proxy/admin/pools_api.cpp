// GET /v1/pools: every server pool's PoolStats (docs/pooling.md, "What is counted"), summed
// over the I/O threads, in the registry's key order. Also feeds the pool metrics for
// GET /metrics (admin_probe_api.cpp).
#include "pool/pool_shared.hpp"
#include "proxy/admin/api.hpp"
#include "proxy/telemetry/pool_report.hpp"

namespace pgshift::proxy {

AdminResponse handle_list_pools(const AdminCall& call) {
  // No registry (unit tests without pools): no pool exists, which is an empty list.
  const auto pools =
      call.runtime.pools ? call.runtime.pools->stats() : std::vector<pool::PoolStats>{};
  json::object o;
  o["pools"] = pool::to_json_array(pools);
  return json_response(http::status::ok, o);
}

void refresh_pool_metrics(const Runtime& runtime) {
  if (runtime.pools) feed_pool_metrics(runtime.pools->stats());
}

}  // namespace pgshift::proxy
