#pragma once
// Structured logging: one JSON object per line on stderr. Thread-safe (one write() per
// line). Never pass a password or query parameters as a field.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pgshift::proxy {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

struct LogField {
  std::string_view key;
  std::string value;
  bool is_number = false;
};
inline LogField f(std::string_view k, std::string_view v) { return {k, std::string(v), false}; }
inline LogField f(std::string_view k, const char* v) { return {k, std::string(v), false}; }
inline LogField f(std::string_view k, const std::string& v) { return {k, v, false}; }
template <class N>
  requires std::is_arithmetic_v<N>
LogField f(std::string_view k, N v) {
  return {k, std::to_string(v), true};
}

void set_log_level(LogLevel level);
bool parse_log_level(std::string_view s, LogLevel& out);
bool log_enabled(LogLevel level);
void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

inline void log_debug(std::string_view m, std::initializer_list<LogField> fs = {}) {
  if (log_enabled(LogLevel::debug)) log(LogLevel::debug, m, fs);
}
inline void log_info(std::string_view m, std::initializer_list<LogField> fs = {}) {
  log(LogLevel::info, m, fs);
}
inline void log_warn(std::string_view m, std::initializer_list<LogField> fs = {}) {
  log(LogLevel::warn, m, fs);
}
inline void log_error(std::string_view m, std::initializer_list<LogField> fs = {}) {
  log(LogLevel::error, m, fs);
}

}  // namespace pgshift::proxy
