#include "proxy/session/rerun_log.hpp"

#include <string_view>
#include <utility>

#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

namespace {

// Commands that change nothing a re-run on another server would not do again the same way.
bool harmless_tag(std::span<const std::uint8_t> body) {
  std::string_view tag;
  if (wire::parse_command_complete(body, tag)) return false;
  return tag == "BEGIN" || tag == "START TRANSACTION" || tag == "SET" || tag == "SET CONSTRAINTS" ||
         tag == "SAVEPOINT";
}

// Sent by the server on its own (notices, reported settings, notifications): not part of
// the answer to any one message, so not counted.
bool asynchronous(std::uint8_t type) {
  return type == wire::be::notice_response || type == wire::be::parameter_status ||
         type == wire::be::notification;
}

}  // namespace

void RerunLog::begin() {
  if (messages_.capacity() > 8 * 1024) wire::Bytes().swap(messages_);  // a large one is gone
  messages_.clear();
  answers_.clear();
  ok_ = true;
  if (!std::exchange(refeeding_, false)) reruns_ = 0;  // a new transaction
}

void RerunLog::client_message(std::span<const std::uint8_t> raw) {
  if (!ok_ || raw.empty()) return;
  switch (raw[0]) {
    case wire::fe::query:
    case wire::fe::parse:
    case wire::fe::bind:
    case wire::fe::describe:
    case wire::fe::execute:
    case wire::fe::close:
    case wire::fe::sync:
    case wire::fe::flush:
      break;
    default:  // COPY data, function calls: never run twice
      clear();
      return;
  }
  if (messages_.size() + raw.size() > kMaxBytes) {
    clear();
    return;
  }
  messages_.insert(messages_.end(), raw.begin(), raw.end());
}

void RerunLog::answer(std::uint8_t type, std::span<const std::uint8_t> body) {
  if (!ok_ || asynchronous(type)) return;
  switch (type) {
    case wire::be::parse_complete:
    case wire::be::bind_complete:
    case wire::be::close_complete:
    case wire::be::no_data:
    case wire::be::parameter_description:
    case wire::be::row_description:
    case wire::be::empty_query:
    case wire::be::ready_for_query:
      break;
    case wire::be::command_complete:
      if (harmless_tag(body)) break;
      clear();
      return;
    default:  // rows, an error, COPY, a function result, a suspended portal
      clear();
      return;
  }
  if (answers_.size() >= kMaxAnswers) {
    clear();
    return;
  }
  answers_.push_back(static_cast<char>(type));
}

void RerunLog::clear() {
  ok_ = false;
  messages_.clear();
  answers_.clear();
}

wire::Bytes RerunLog::take_for_rerun() {
  wire::Bytes out;
  out.swap(messages_);
  // A re-run cut short by another fence: the client still has every answer of the first.
  if (expect_.empty()) expect_.swap(answers_);
  expect_pos_ = 0;
  answers_.clear();
  ok_ = false;  // until begin(), at the first message the re-run sends
  ++reruns_;
  refeeding_ = true;
  return out;
}

RerunLog::Verdict RerunLog::rerun_answer(std::uint8_t type) {
  if (expect_.empty() || type == wire::be::notification) return Verdict::forward;
  if (type == wire::be::notice_response || type == wire::be::parameter_status) {
    return Verdict::drop;
  }
  if (type == wire::be::error_response) {
    // The new side refused something the old side had accepted: the client can be told only
    // within the exchange it is waiting for (no ReadyForQuery left to drop).
    if (expect_.find(static_cast<char>(wire::be::ready_for_query), expect_pos_) !=
        std::string::npos)
      return Verdict::mismatch;
    stop_dropping();
    return Verdict::forward;
  }
  if (static_cast<char>(type) != expect_[expect_pos_]) return Verdict::mismatch;
  if (++expect_pos_ == expect_.size()) stop_dropping();
  return Verdict::drop;
}

void RerunLog::stop_dropping() {
  expect_.clear();
  expect_pos_ = 0;
}

}  // namespace pgshift::proxy
