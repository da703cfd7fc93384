#pragma once
// Small file helpers shared by the loader, secrets, users file and validate(). Error texts
// name the file and the reason, never its contents.
#include <cstddef>
#include <optional>
#include <string>

namespace pgshift::config {

// Reads a whole regular file of at most `max_bytes`. On failure returns nullopt and sets
// `error` to e.g. "cannot read '/etc/x': No such file or directory".
std::optional<std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                          std::string& error);

// Checks that `path` is a regular file this process can open for reading. Returns the
// reason when it is not.
std::optional<std::string> unreadable_reason(const std::string& path);

}  // namespace pgshift::config
