#pragma once
// Start expensive things (PostgreSQL clusters, certificates) once per test binary, not once
// per test. State is any default-constructible struct whose constructor starts everything
// and whose destructor stops it:
//
//   struct Servers {
//     CertAuthority ca;
//     PgCluster source{{.name = "source"}};
//     PgCluster target{{.name = "target", .tls = ca.server()}};
//   };
//   const auto* const servers_env = SharedEnvironment<Servers>::install();
//   Servers& servers() { return SharedEnvironment<Servers>::get(); }
//
// install() registers a gtest global Environment (works with gtest_main when called at
// namespace scope). Its SetUp constructs State before the first test; if that throws, the
// failure is reported as a global set-up failure and no test runs. TearDown destroys State
// after the last test. Environments are set up only when the filter selects some test.
#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <stdexcept>

namespace pgshift::test {

template <typename State>
class SharedEnvironment : public ::testing::Environment {
 public:
  static SharedEnvironment* install() {
    auto* env = new SharedEnvironment;
    ::testing::AddGlobalTestEnvironment(env);  // gtest takes ownership
    return env;
  }

  static State& get() {
    if (!state_) {
      throw std::logic_error("shared test environment is not set up (install() missing?)");
    }
    return *state_;
  }

  void SetUp() override {
    try {
      state_ = std::make_unique<State>();
    } catch (const std::exception& e) {
      GTEST_FAIL() << "shared test environment set-up failed: " << e.what();
    } catch (...) {
      GTEST_FAIL() << "shared test environment set-up failed with a non-std exception";
    }
  }

  void TearDown() override { state_.reset(); }

 private:
  SharedEnvironment() = default;
  static inline std::unique_ptr<State> state_;
};

}  // namespace pgshift::test
