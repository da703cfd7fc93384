#pragma once
// `pgshift ctl cutover|rollback|finalize NAME [--dry-run] [--max-lag-ms N]
// [--drain-timeout-ms N] [--skip-verify]`: starts the operation through the admin API
// (POST /v1/routes/{name}/{kind}), then follows GET /v1/routes/{name}/operation and prints
// each step as it ends, with its duration, and a final summary line. Exit 0 when the
// operation completed (or the dry run passed), 1 otherwise.
#include <chrono>
#include <optional>
#include <ostream>
#include <string>

#include "proxy/ctl/http.hpp"

namespace pgshift::proxy {

struct CtlOperation {
  std::string kind;   // cutover | rollback | finalize | recover | mirror-start | mirror-stop
  std::string route;  // as configured (encoded into the path here)
  bool dry_run = false;
  bool skip_verify = false;
  std::optional<long> max_lag_ms, drain_timeout_ms;
  bool json = false;  // print the final operation JSON instead of lines
};

int ctl_operation(const CtlUrl& url, const std::string& token,
                  std::chrono::milliseconds request_timeout, const CtlOperation& op,
                  std::ostream& out, std::ostream& err);

}  // namespace pgshift::proxy
