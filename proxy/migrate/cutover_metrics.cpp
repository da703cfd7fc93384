#include "proxy/migrate/cutover_metrics.hpp"

#include <prometheus/registry.h>

#include "proxy/telemetry/metrics.hpp"

namespace pgshift::migrate {
namespace {

const prometheus::Histogram::BucketBoundaries kStepBuckets = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

}  // namespace

CutoverMetrics::CutoverMetrics()
    : steps_(prometheus::BuildHistogram()
                 .Name("pgshift_cutover_phase_seconds")
                 .Help("Duration of each step of a cutover, rollback or finalize.")
                 .Register(proxy::metrics().registry())),
      outcomes_(prometheus::BuildCounter()
                    .Name("pgshift_cutover_operations_total")
                    .Help("Cutover, rollback and finalize operations by result.")
                    .Register(proxy::metrics().registry())),
      pauses_(prometheus::BuildHistogram()
                  .Name("pgshift_cutover_pause_seconds")
                  .Help("Time the route's new transactions were held, per operation.")
                  .Register(proxy::metrics().registry())),
      held_(prometheus::BuildGauge()
                .Name("pgshift_cutover_held_transactions")
                .Help("Transactions held at the barrier when the last operation held the route.")
                .Register(proxy::metrics().registry())) {}

prometheus::Histogram& CutoverMetrics::step_seconds(const std::string& route,
                                                    const std::string& step) {
  return steps_.Add({{"route", route}, {"step", step}}, kStepBuckets);
}

prometheus::Counter& CutoverMetrics::outcome(const std::string& route, std::string_view kind,
                                             const std::string& result) {
  return outcomes_.Add({{"route", route}, {"kind", std::string(kind)}, {"result", result}});
}

prometheus::Histogram& CutoverMetrics::pause_seconds(const std::string& route,
                                                     std::string_view kind) {
  return pauses_.Add({{"route", route}, {"kind", std::string(kind)}}, kStepBuckets);
}

prometheus::Gauge& CutoverMetrics::held_transactions(const std::string& route) {
  return held_.Add({{"route", route}});
}

CutoverMetrics& cutover_metrics() {
  static CutoverMetrics m;
  return m;
}

}  // namespace pgshift::migrate
