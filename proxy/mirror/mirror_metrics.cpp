#include "proxy/mirror/mirror_metrics.hpp"

#include <prometheus/registry.h>

#include "proxy/telemetry/metrics.hpp"

namespace pgshift::mirror {

MirrorMetrics::MirrorMetrics()
    : queue_(prometheus::BuildGauge()
                 .Name("pgshift_mirror_queue_bytes")
                 .Help("Mirrored transactions waiting to be replayed, in bytes.")
                 .Register(proxy::metrics().registry())),
      spool_(prometheus::BuildGauge()
                 .Name("pgshift_mirror_spool_bytes")
                 .Help("Mirrored transactions spilled to sync.mirror.spool_dir, in bytes.")
                 .Register(proxy::metrics().registry())),
      lag_(prometheus::BuildGauge()
               .Name("pgshift_mirror_lag_seconds")
               .Help("Age of the oldest transaction waiting to be replayed (0 when none).")
               .Register(proxy::metrics().registry())),
      applied_(prometheus::BuildCounter()
                   .Name("pgshift_mirror_applied_total")
                   .Help("Transactions replayed on the other side with the same results.")
                   .Register(proxy::metrics().registry())),
      divergences_(prometheus::BuildCounter()
                       .Name("pgshift_mirror_divergences_total")
                       .Help("Replays that differed from the authoritative side, by kind.")
                       .Register(proxy::metrics().registry())),
      unsafe_(prometheus::BuildCounter()
                  .Name("pgshift_mirror_unsafe_total")
                  .Help("Mirrored statements that may not replay the same, by reason.")
                  .Register(proxy::metrics().registry())) {}

MirrorMetrics& mirror_metrics() {
  static MirrorMetrics m;
  return m;
}

}  // namespace pgshift::mirror
