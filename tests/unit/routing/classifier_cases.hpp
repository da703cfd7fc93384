#pragma once
#include <span>
#include <string_view>

#include "routing/classifier.hpp"

namespace pgshift::routing::testing {

struct ClassifierCase {
  std::string_view sql;
  StatementClass expected;
};

std::span<const ClassifierCase> classifier_cases();

}  // namespace pgshift::routing::testing
