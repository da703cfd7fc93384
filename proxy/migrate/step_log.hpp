#pragma once
// The steps of one migration operation (mirror start, mirror recover) as they run: each
// step's record (name, status, duration, what it did or why it failed) is appended to the
// operation's outcome and handed to its listener.
//
// Thread-safety: run() may be called from several threads at once (a mirror start's copy
// workers end their steps concurrently); the listener is called under the log's lock.
#include <functional>
#include <mutex>
#include <string>

#include "proxy/migrate/cutover_coordinator.hpp"

namespace pgshift::migrate {

class StepLog {
 public:
  StepLog(SwitchOutcome& out, const StepListener& listener) : out_(out), listener_(listener) {}

  // Runs `body` as step `name`; its return value says what it did. An exception fails the
  // step; in the step named "preconditions" it refuses the operation (nothing was changed
  // yet). The first failure sets out.error ("<step>: <why>") and out.result ("refused" or
  // "aborted"); a later one (an undo step) only adds its record. True if the step succeeded.
  bool run(const std::string& name, const std::function<std::string()>& body);

 private:
  SwitchOutcome& out_;
  const StepListener& listener_;
  std::mutex mu_;
};

}  // namespace pgshift::migrate
