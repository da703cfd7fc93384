#pragma once
// Small file-system helpers for tests. All throw std::runtime_error / std::system_error with
// the path in the message.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace pgshift::test {

std::string read_file(const std::filesystem::path& path);
// Creates or truncates path, writes content, then sets the mode (default rw-r--r--).
void write_file(const std::filesystem::path& path, std::string_view content,
                std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                              std::filesystem::perms::owner_write |
                                              std::filesystem::perms::group_read |
                                              std::filesystem::perms::others_read);

bool running_as_root();

struct UserIds {
  uid_t uid;
  gid_t gid;
};
UserIds lookup_user(const std::string& name);  // throws if the OS user does not exist

// chown -R path to user (and its primary group). Only root can do this; a no-op otherwise.
void chown_to_user(const std::filesystem::path& path, const std::string& user);

}  // namespace pgshift::test
