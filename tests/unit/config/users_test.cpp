#include "config/users.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace pgshift::config {
namespace {

TEST(Users, ParsesPgBouncerFormat) {
  const std::string text =
      "; comment\n"
      "# another comment\n"
      "\n"
      "\"alice\" \"plain password\"\n"
      "  \"bob\"\t\"md5a3556571e93b0d20722ba62be61e8c2d\"\n"
      "\"carol\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\r\n"
      "\"say \"\"hi\"\"\" \"pa\"\"ss\"\n"
      "\"dave\" \"pw\" \"old third field\"\n"
      "\"eve\" \"\"";  // no final newline, empty password
  auto r = parse_users(text, "users.txt");
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  ASSERT_TRUE(r.users);
  EXPECT_EQ(r.users->users.size(), 6u);
  EXPECT_EQ(r.users->find("alice")->password, "plain password");
  EXPECT_EQ(r.users->find("bob")->password, "md5a3556571e93b0d20722ba62be61e8c2d");
  EXPECT_EQ(r.users->find("carol")->password, "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy");
  ASSERT_NE(r.users->find("say \"hi\""), nullptr);
  EXPECT_EQ(r.users->find("say \"hi\"")->password, "pa\"ss");
  EXPECT_EQ(r.users->find("say \"hi\"")->name, "say \"hi\"");
  EXPECT_EQ(r.users->find("dave")->password, "pw");
  EXPECT_EQ(r.users->find("eve")->password, "");
  EXPECT_EQ(r.users->find("mallory"), nullptr);
}

TEST(Users, EmptyFileHasNoUsers) {
  auto r = parse_users("", "users.txt");
  ASSERT_TRUE(r.users);
  EXPECT_TRUE(r.users->users.empty());
  EXPECT_TRUE(r.errors.empty());
}

TEST(Users, ReportsEveryBadLineWithFileAndLine) {
  const std::string text =
      "\"alice\" \"pw-alice\"\n"         // 1 ok
      "bob \"pw-bob\"\n"                 // 2 unquoted user
      "\"carol \"pw-carol\"\n"           // 3 user quote never closes properly
      "\"dave\"\n"                       // 4 no password
      "\"erin\" pw-erin\n"               // 5 unquoted password
      "\"frank\" \"secret-frank\n"       // 6 unterminated password
      "\"\" \"pw-empty\"\n"              // 7 empty name
      "\"alice\" \"pw-alice-again\"\n";  // 8 duplicate
  auto r = parse_users(text, "users.txt");
  EXPECT_EQ(r.users, nullptr);
  std::vector<std::string> expected = {
      "users.txt:2: expected a quoted user name",
      "users.txt:3: expected a quoted password for user 'carol '",
      "users.txt:4: missing password for user 'dave'",
      "users.txt:5: expected a quoted password for user 'erin'",
      "users.txt:6: unterminated quote in password of user 'frank'",
      "users.txt:7: empty user name",
      "users.txt:8: duplicate user 'alice' (first on line 1)",
  };
  ASSERT_EQ(r.errors.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.errors[i].rfind(expected[i], 0), 0u) << r.errors[i];
  }
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.find("pw-"), std::string::npos) << "password leaked: " << e;
    EXPECT_EQ(e.find("secret-frank"), std::string::npos) << "password leaked: " << e;
  }
}

TEST(Users, UnterminatedUserName) {
  auto r = parse_users("\"alice\n", "u.txt");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "u.txt:1: unterminated quote in user name");
}

TEST(Users, LoadsFromFile) {
  test::TempDir dir;
  auto path = dir.write("users.txt", "\"app\" \"pw\"\n");
  auto r = load_users_file(path);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_TRUE(r.users);
  EXPECT_EQ(r.users->find("app")->password, "pw");

  auto bad = dir.write("bad.txt", "\n\"app\"\n");
  auto rb = load_users_file(bad);
  ASSERT_EQ(rb.errors.size(), 1u);
  EXPECT_EQ(rb.errors[0], bad + ":2: missing password for user 'app'");
}

TEST(Users, MissingFileIsNamed) {
  test::TempDir dir;
  std::string path = (dir.path() / "absent.txt").string();
  auto r = load_users_file(path);
  EXPECT_EQ(r.users, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find(path), std::string::npos);
  EXPECT_NE(r.errors[0].find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace pgshift::config
