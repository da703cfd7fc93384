// PgBouncer userlist.txt: `"user" "password"` per line, "" escapes a quote inside a field.
// As in PgBouncer, anything after the password on a line is ignored. Messages name the file,
// line and user, never a password.
#include "config/users.hpp"

#include <string_view>

#include "config/files.hpp"

namespace pgshift::config {
namespace {

constexpr std::size_t kMaxUsersFile = 64 * 1024 * 1024;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

void skip_space(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && is_space(line[pos])) ++pos;
}

// Reads a quoted field starting at line[pos] == '"'. Returns false if it never closes.
bool read_quoted(std::string_view line, std::size_t& pos, std::string& out) {
  ++pos;  // opening quote
  while (pos < line.size()) {
    char c = line[pos++];
    if (c != '"') {
      out += c;
    } else if (pos < line.size() && line[pos] == '"') {
      out += '"';
      ++pos;
    } else {
      return true;
    }
  }
  return false;
}

// Parses one non-comment line; returns "" or the reason it is wrong.
std::string parse_line(std::string_view line, UserEntry& entry) {
  std::size_t pos = 0;
  skip_space(line, pos);
  if (line[pos] != '"') return "expected a quoted user name: \"user\" \"password\"";
  if (!read_quoted(line, pos, entry.name)) return "unterminated quote in user name";
  if (entry.name.empty()) return "empty user name";
  skip_space(line, pos);
  if (pos >= line.size()) return "missing password for user '" + entry.name + "'";
  if (line[pos] != '"') return "expected a quoted password for user '" + entry.name + "'";
  if (!read_quoted(line, pos, entry.password)) {
    return "unterminated quote in password of user '" + entry.name + "'";
  }
  return "";
}

}  // namespace

const UserEntry* UsersFile::find(std::string_view name) const {
  auto it = users.find(name);
  return it == users.end() ? nullptr : &it->second;
}

UsersLoadResult parse_users(const std::string& text, const std::string& source_name) {
  auto file = std::make_shared<UsersFile>();
  UsersLoadResult result;
  std::map<std::string, int, std::less<>> first_line;
  std::size_t start = 0;
  for (int number = 1; start < text.size(); ++number) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;

    std::size_t pos = 0;
    skip_space(line, pos);
    if (pos == line.size() || line[pos] == ';' || line[pos] == '#') continue;
    const std::string where = source_name + ":" + std::to_string(number) + ": ";
    UserEntry entry;
    if (std::string why = parse_line(line, entry); !why.empty()) {
      result.errors.push_back(where + why);
      continue;
    }
    auto [it, fresh] = first_line.emplace(entry.name, number);
    if (!fresh) {
      result.errors.push_back(where + "duplicate user '" + entry.name + "' (first on line " +
                              std::to_string(it->second) + ")");
      continue;
    }
    std::string name = entry.name;
    file->users.emplace(std::move(name), std::move(entry));
  }
  if (result.errors.empty()) result.users = std::move(file);
  return result;
}

UsersLoadResult load_users_file(const std::string& path) {
  std::string error;
  auto text = read_text_file(path, kMaxUsersFile, error);
  if (!text) {
    UsersLoadResult result;
    result.errors.push_back(error);
    return result;
  }
  return parse_users(*text, path);
}

}  // namespace pgshift::config
