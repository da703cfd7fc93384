#pragma once
// Reading pgshift's admin API from a test: GET with the admin token through a real HTTP
// client (Python's urllib via system_python()), and series of the Prometheus text of
// GET /metrics.
#include <map>
#include <optional>
#include <string>

#include "pgshift_process.hpp"

namespace pgshift::test {

// GET path from the admin API (e.g. "/metrics", "/v1/pools") with the proxy's admin token;
// the response body. A failed request (no answer, or a non-2xx status) is a non-fatal test
// failure when required, and otherwise returns "GET <path> failed: ..." (for diagnostics in
// failure messages).
std::string fetch_admin(const PgshiftProcess& proxy, const std::string& path, bool required = true);

// Prometheus text of GET /metrics (a failed request is a test failure).
std::string fetch_metrics(const PgshiftProcess& proxy);

// The value of the first series `name` carrying all of `labels` (in any order, among any
// others), or nullopt when no such series is exported. `name` must be the whole metric name:
// "pgshift_client_connections" does not match pgshift_client_connections_total.
std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels = {});

// The lines of text that contain `name` (any text, e.g. a log), for failure messages.
std::string metric_lines(const std::string& text, const std::string& name);

}  // namespace pgshift::test
