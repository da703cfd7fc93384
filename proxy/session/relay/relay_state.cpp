#include "proxy/session/relay/relay_state.hpp"

namespace pgshift::proxy {

std::string_view to_string(C2s s) {
  switch (s) {
    case C2s::running:
      return "running";
    case C2s::hot_wait:
      return "hot_wait";
    case C2s::parked:
      return "parked";
    case C2s::woken:
      return "woken";
  }
  return "unknown";
}

std::string_view to_string(S2c s) {
  switch (s) {
    case S2c::stopped:
      return "stopped";
    case S2c::running:
      return "running";
    case S2c::idle_wait:
      return "idle_wait";
    case S2c::waking:
      return "waking";
    case S2c::holding:
      return "holding";
    case S2c::done:
      return "done";
  }
  return "unknown";
}

std::string_view to_string(Fence s) {
  switch (s) {
    case Fence::none:
      return "none";
    case Fence::dropping:
      return "dropping";
    case Fence::rolling_back:
      return "rolling_back";
    case Fence::rerunning:
      return "rerunning";
  }
  return "unknown";
}

}  // namespace pgshift::proxy
