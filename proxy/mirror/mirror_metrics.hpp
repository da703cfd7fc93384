#pragma once
// The mirror's metrics (docs/metrics.md): pgshift_mirror_queue_bytes{route},
// pgshift_mirror_lag_seconds{route}, pgshift_mirror_applied_total{route},
// pgshift_mirror_divergences_total{route,kind}, pgshift_mirror_unsafe_total{route,reason},
// pgshift_mirror_spool_bytes{route}.
// Thread-safety: as prometheus-cpp (Family::Add locks); callers keep the returned references.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <string>
#include <string_view>

namespace pgshift::mirror {

class MirrorMetrics {
 public:
  MirrorMetrics();
  prometheus::Gauge& queue_bytes(const std::string& route) {
    return queue_.Add({{"route", route}});
  }
  prometheus::Gauge& spool_bytes(const std::string& route) {
    return spool_.Add({{"route", route}});
  }
  prometheus::Gauge& lag_seconds(const std::string& route) { return lag_.Add({{"route", route}}); }
  prometheus::Counter& applied(const std::string& route) {
    return applied_.Add({{"route", route}});
  }
  prometheus::Counter& divergences(const std::string& route, std::string_view kind) {
    return divergences_.Add({{"route", route}, {"kind", std::string(kind)}});
  }
  prometheus::Counter& unsafe(const std::string& route, std::string_view reason) {
    return unsafe_.Add({{"route", route}, {"reason", std::string(reason)}});
  }

 private:
  prometheus::Family<prometheus::Gauge>& queue_;
  prometheus::Family<prometheus::Gauge>& spool_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Counter>& applied_;
  prometheus::Family<prometheus::Counter>& divergences_;
  prometheus::Family<prometheus::Counter>& unsafe_;
};

MirrorMetrics& mirror_metrics();

}  // namespace pgshift::mirror
