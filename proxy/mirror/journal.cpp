#include "proxy/mirror/journal.hpp"

#include <boost/json/serialize.hpp>
#include <fstream>

#include "proxy/telemetry/log.hpp"

namespace pgshift::mirror {

bool Journal::write(const boost::json::object& entry) {
  std::lock_guard lock(mu_);
  std::ofstream out(path_, std::ios::app);
  out << boost::json::serialize(entry) << '\n';
  out.flush();
  if (out) return true;
  if (!warned_) {
    warned_ = true;
    proxy::log_error(
        "cannot write the mirror divergence journal; divergences are still "
        "counted in pgshift_mirror_divergences_total",
        {proxy::f("file", path_), proxy::f("fix",
                                           "make the directory writable or set "
                                           "routes[].sync.mirror.journal_file")});
  }
  return false;
}

}  // namespace pgshift::mirror
