#pragma once
// Users file for client authentication, PgBouncer userlist.txt format: one user a line,
//   "user" "password"
// where password is plaintext, "md5<32 hex>" or a SCRAM-SHA-256 secret as in pg_authid.
// Lines starting with ';' or '#' and blank lines are ignored. Inside a quoted field, ""
// stands for one quote. Text after the password is ignored (as PgBouncer does). A user
// listed twice is an error.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::config {

struct UserEntry {
  std::string name;
  std::string password;  // as written: plaintext, md5..., or SCRAM-SHA-256$...
};

struct UsersFile {
  std::map<std::string, UserEntry, std::less<>> users;
  const UserEntry* find(std::string_view name) const;
};

struct UsersLoadResult {
  std::shared_ptr<const UsersFile> users;  // null if there were errors
  std::vector<std::string> errors;         // "users.txt:3: unterminated quote"
};
UsersLoadResult load_users_file(const std::string& path);
UsersLoadResult parse_users(const std::string& text, const std::string& source_name);

}  // namespace pgshift::config
