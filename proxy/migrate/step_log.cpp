#include "proxy/migrate/step_log.hpp"

#include <chrono>
#include <exception>

namespace pgshift::migrate {

bool StepLog::run(const std::string& name, const std::function<std::string()>& body) {
  using Clock = std::chrono::steady_clock;
  const bool precondition = name == "preconditions";
  StepRecord rec{name, "ok", std::chrono::milliseconds(0), {}};
  const auto start = Clock::now();
  try {
    rec.detail = body();
  } catch (const std::exception& e) {
    rec.status = precondition ? "refused" : "failed";
    rec.detail = e.what();
  }
  rec.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  const bool ok = rec.status == "ok";
  std::lock_guard lock(mu_);
  if (!ok && out_.error.empty()) {
    out_.error = name + ": " + rec.detail;
    out_.result = precondition ? "refused" : "aborted";
  }
  out_.steps.push_back(rec);
  if (listener_) listener_(rec);
  return ok;
}

}  // namespace pgshift::migrate
