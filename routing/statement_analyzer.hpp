#pragma once
// Classifies ONE statement (the tokens between two ';', comments removed). Internal to
// routing/: the Classifier splits a Query into statements, runs this on each and combines
// the results (classifier.cpp). Pure, bounded work, never throws on any input (fuzzed).
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "routing/classifier.hpp"
#include "routing/function_policy.hpp"
#include "routing/lexer.hpp"

namespace pgshift::routing::detail {

struct StatementResult {
  StatementClass kind = StatementClass::empty;
  bool locking = false;
  bool unknown_fn = false;
  std::string unknown_function;
  bool data_mod = false;
  bool not_understood = false;
  bool prepare_transaction = false;  // PREPARE TRANSACTION (a transaction_end)
  // A read that is write only because it calls functions not on the allow-list.
  bool only_unknown_functions = false;
  PinReason pin = PinReason::none;
  std::optional<RoutingKeyChange> key_change;
  bool routing_key_only = false;
};

StatementResult analyze_statement(std::span<const Token> tokens, const FunctionPolicy& functions,
                                  std::string_view setting_lower);

}  // namespace pgshift::routing::detail
