#pragma once
// Fixture and helpers of split_routing_test (the read split end to end, issue 4): a source
// and a target cluster that answer the same query differently, a pgshift in front of them,
// the admin API, /metrics and the expected side of a key (routing::bucket, the formula of
// docs/routing.md).
//
// Both clusters hold:
//   marker(side text)          one row: 'source' on the source, 'target' on the target, so
//                              `SELECT side FROM marker` says which side answered;
//   counted_marker             a view of marker that also calls nextval('marker_reads'): a
//                              per-side read counter that is exact and visible at once (the
//                              pg_stat_* counters lag up to 10 s behind idle backends). The
//                              classifier cannot see behind a view name (docs/routing.md,
//                              "Limits of a lexical classifier"), so its reads are split;
//   events(k text, n int)      for writes; rows may only ever appear on the source.
// Clients log in as app / app-pw; pgshift logs in to both sides as app.
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/support.hpp"

namespace pgshift::test {

struct SplitServers {
  PgCluster source{{.name = "source"}};
  PgCluster target{{.name = "target"}};
  SplitServers();
  // Empties events and restarts marker_reads on both sides (each test starts clean).
  void reset();
};
SplitServers& split_servers();  // installed once per binary (split_routing_support.cpp)

struct SplitProxyOptions {
  std::string client_auth = "scram-sha-256";  // "trust" for raw-socket logins
  int read_your_writes_window_ms = 2000;
};

// Starts pgshift with one route "main": client database "postgres" to database "postgres"
// on both clusters as app (fixed credentials, so the health checker does full logins).
// The state file is in the process's temp dir, so every proxy starts at read percent 0.
PgshiftOptions split_proxy_options(const SplitProxyOptions& options = {});

// libpq conninfo of a client (app) connecting through the proxy.
std::string client_conninfo(const PgshiftProcess& proxy, const std::string& extra = {});

// ---- admin API (real HTTP client: Python's urllib through system_python()) ----

struct HttpResponse {
  int status = 0;  // 0: no HTTP answer at all (see error)
  std::string body;
  std::string error;
  std::string describe() const;
};

// A request with the proxy's admin token.
HttpResponse admin_request(const PgshiftProcess& proxy, const std::string& method,
                           const std::string& path, const std::string& body = {});
// The same with an explicit Authorization header value; empty: no header at all.
HttpResponse admin_request_with_auth(const PgshiftProcess& proxy, const std::string& authorization,
                                     const std::string& method, const std::string& path,
                                     const std::string& body = {});

// PUT /v1/routes/main/read-percent {"percent": <percent>}; records a failure unless 200.
bool set_read_percent(const PgshiftProcess& proxy, const std::string& percent);

// GET /v1/routes/main parsed; null on any error.
boost::json::value route_view(const PgshiftProcess& proxy);
// health.status of the route's target in /v1/routes/main ("" if unavailable).
std::string target_health(const PgshiftProcess& proxy);
// Waits (10 s) until the health checker has seen the target working: until then every
// split read falls back to the source.
bool wait_target_healthy(const PgshiftProcess& proxy);

// ---- /metrics (fetch_metrics: tests/support/metrics.hpp) ----

// Sum of the samples of metric `name` whose label set contains every `labels` entry
// (each written as in the exposition, e.g. R"(route="main")"). 0 if there is none.
double metric_sum(const std::string& text, const std::string& name,
                  const std::vector<std::string>& labels = {});

// ---- sides ----

// "target" or "source": where the split formula sends key at percent_bp (basis points).
std::string expected_side(std::string_view key, std::uint32_t percent_bp);
// The first "<prefix><n>" (n = 1, 2, ...) whose bucket is in [low, high).
std::string key_in_buckets(const std::string& prefix, std::uint32_t low, std::uint32_t high);

// SELECT side FROM marker with key in a sqlcommenter comment (no comment if key is empty).
std::string side_of(PgConnection& conn, const std::string& key);

// Reads of counted_marker answered by each side so far (exact, immediate).
struct SideCounts {
  std::int64_t source = 0;
  std::int64_t target = 0;
};
SideCounts counted_reads();

// Rows in events on one side (superuser over the unix socket, not through pgshift).
std::int64_t events_on(const PgCluster& cluster, const std::string& where = "true");

}  // namespace pgshift::test
