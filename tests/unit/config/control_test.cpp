// control: (docs/configuration.md, "control"): the three forms, the default, and every error
// with its YAML path.
#include <gtest/gtest.h>

#include "config/load.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

using test::has_exactly;

// admin disabled and trust auth, so no file is needed; `target` and `control` appended.
std::string yaml(const std::string& target, const std::string& control) {
  return "admin:\n  enabled: false\nclient_auth:\n  method: trust\nroutes:\n"
         "  - name: auth\n    client_database: app\n"
         "    source: {host: src, user: u, password: p, database: app}\n" +
         target + control;
}

constexpr const char* kTarget = "    target: {host: tgt, user: u, password: p, database: app}\n";

TEST(ControlConfig, DefaultsToTargetWhenTheTargetHasAUserAndADatabase) {
  auto r = load_string(yaml(kTarget, ""));
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(control_mode(*r.config), ControlMode::target);
  EXPECT_EQ(control_upstream(*r.config)->host, "tgt");
  EXPECT_EQ(r.config->control.poll.count(), 1000);
  EXPECT_EQ(r.config->control.member_timeout.count(), 10000);
}

TEST(ControlConfig, DefaultsToFileWithoutAUsableTarget) {
  auto none = load_string(yaml("", ""));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(control_mode(*none.config), ControlMode::file);
  auto wildcard = load_string(yaml("    target: {host: tgt, user: u, password: p}\n", ""));
  ASSERT_TRUE(wildcard.ok());
  EXPECT_EQ(control_mode(*wildcard.config), ControlMode::file) << "no database: file";
}

TEST(ControlConfig, ScalarAndMappingForms) {
  auto file = load_string(yaml(kTarget, "control: none\n"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(control_mode(*file.config), ControlMode::file);
  auto own = load_string(yaml(kTarget,
                              "control: {host: ctl, database: fleet, user: c, password: x, "
                              "poll_ms: 250, member_timeout_ms: 5000}\n"));
  ASSERT_TRUE(own.ok()) << own.errors.front().to_string();
  EXPECT_EQ(control_mode(*own.config), ControlMode::database);
  EXPECT_EQ(control_upstream(*own.config)->database, "fleet");
  EXPECT_EQ(own.config->control.poll.count(), 250);
  auto timings = load_string(yaml(kTarget, "control: {poll_ms: 300}\n"));
  ASSERT_TRUE(timings.ok());
  EXPECT_EQ(control_mode(*timings.config), ControlMode::target);
}

TEST(ControlConfig, ErrorsNameTheirPath) {
  EXPECT_TRUE(has_exactly(
      load_string(yaml(kTarget, "control: banana\n")).errors,
      {{"control", 10, "must be one of: target, none, file, or a mapping, got 'banana'"}}));
  EXPECT_TRUE(has_exactly(load_string(yaml("", "control: target\n")).errors,
                          {{"control", 9,
                            "'target' needs a route with a target (or use 'file', or give "
                            "control a host, database and user)"}}));
  EXPECT_TRUE(has_exactly(load_string(yaml(kTarget, "control: {host: ctl, poll_ms: 10}\n")).errors,
                          {{"control.database", 10, "is required with control.host"},
                           {"control.user", 10, "is required with control.host"},
                           {"control.poll_ms", 10, "must be between 50 and 60000, got '10'"}}));
}

}  // namespace
}  // namespace pgshift::config
