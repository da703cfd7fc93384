// The examples shipped in config/examples/ must load.
#include <gtest/gtest.h>

#include <filesystem>

#include "config/load.hpp"
#include "config/users.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

const std::string kExamples = std::string(PGSHIFT_SOURCE_DIR) + "/config/examples/";

// Copies an example into a temporary directory next to the files it refers to.
std::string install_example(const test::TempDir& dir, const std::string& name) {
  std::filesystem::copy_file(kExamples + name, dir.path() / name);
  return (dir.path() / name).string();
}

TEST(Examples, FullExampleLoads) {
  test::TempDir dir;
  dir.write("certs/server.crt", "placeholder\n");
  dir.write("certs/server.key", "placeholder\n");
  dir.write("certs/rds-global-bundle.pem", "placeholder\n");
  dir.write("secrets/admin-token", "token\n");
  dir.write("secrets/source-password", "source-password\n");
  std::filesystem::copy_file(kExamples + "users.example.txt", dir.path() / "users.txt");
  test::ScopedEnv rds("RDS_PASSWORD", "rds-password");
  auto r = load_file(install_example(dir, "pgshift.example.yaml"));
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);

  const Config& c = *r.config;
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].client_database, "user_management_db");
  EXPECT_EQ(c.routes[0].target->database, "auth_db");
  EXPECT_EQ(c.routes[0].target->password.value(), "rds-password");
  EXPECT_EQ(c.routes[0].source.password.value(), "source-password");
  EXPECT_EQ(c.routes[1].client_database, "exercises_db");
  EXPECT_EQ(c.routes[1].target->database, "");  // same name as the client's
  EXPECT_EQ(c.routes[2].client_database, "scores_db");
  EXPECT_EQ(c.routes[2].target->database, "scores_db");
  EXPECT_TRUE(c.routes[2].target->passthrough);
}

TEST(Examples, FullExampleNamesWhatIsMissing) {
  test::TempDir dir;
  test::ScopedEnv rds("RDS_PASSWORD", std::nullopt);
  auto r = load_file(install_example(dir, "pgshift.example.yaml"));
  EXPECT_FALSE(r.ok());
  std::string all = test::dump(r.errors);
  for (const char* name :
       {"certs/server.crt", "certs/server.key", "certs/rds-global-bundle.pem",
        "secrets/admin-token", "secrets/source-password", "users.txt", "'RDS_PASSWORD'"}) {
    EXPECT_NE(all.find(name), std::string::npos) << name << " not named in:\n" << all;
  }
}

TEST(Examples, MinimalExampleLoads) {
  auto r = load_file(kExamples + "minimal.yaml");
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  EXPECT_EQ(r.config->routes[0].client_database, "*");
}

TEST(Examples, UsersExampleParses) {
  auto r = load_users_file(kExamples + "users.example.txt");
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(r.users->users.size(), 2u);
}

}  // namespace
}  // namespace pgshift::config
