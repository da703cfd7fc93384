#pragma once
// Metrics of cutover, rollback and finalize, registered in the process-wide registry
// (telemetry/metrics.hpp) on first use:
//   pgshift_cutover_phase_seconds{route,step}        histogram, one observation per step
//   pgshift_cutover_operations_total{route,kind,result} counter (completed, refused, aborted,
//                                                    dry_run)
//   pgshift_cutover_pause_seconds{route,kind}         histogram, hold to release per operation
//   pgshift_cutover_held_transactions{route}          gauge, held at the last operation's hold
// Client-visible hold time per transaction is pgshift_pause_wait_seconds (the pause gate).
// Thread-safety: any thread (prometheus-cpp families are thread-safe).
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>
#include <string_view>

namespace pgshift::migrate {

class CutoverMetrics {
 public:
  CutoverMetrics();
  prometheus::Histogram& step_seconds(const std::string& route, const std::string& step);
  prometheus::Counter& outcome(const std::string& route, std::string_view kind,
                               const std::string& result);
  prometheus::Histogram& pause_seconds(const std::string& route, std::string_view kind);
  prometheus::Gauge& held_transactions(const std::string& route);

 private:
  prometheus::Family<prometheus::Histogram>& steps_;
  prometheus::Family<prometheus::Counter>& outcomes_;
  prometheus::Family<prometheus::Histogram>& pauses_;
  prometheus::Family<prometheus::Gauge>& held_;
};

CutoverMetrics& cutover_metrics();

}  // namespace pgshift::migrate
