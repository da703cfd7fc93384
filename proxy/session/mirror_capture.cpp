#include "proxy/session/mirror_capture.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <iterator>

namespace pgshift::proxy {

namespace {

// Every name of routing/mirror_safety.cpp's lists contains one of these (now, today,
// tomorrow, yesterday; clock_timestamp, inet_client_*, pg_backend_pid, pg_current_xact_id*,
// statement_timestamp, timeofday, transaction_timestamp, txid_current*; current_date/time/
// timestamp, localtime*; random*, gen_random_*, gen_salt, uuid_generate_*; currval,
// lastval, nextval, setval). Keep them in step when a list there grows.
constexpr std::string_view kWords[] = {
    "now",         "today",     "tomorrow",     "yesterday", "clock_",         "inet_client",
    "backend_pid", "xact_id",   "statement_ti", "timeofday", "transaction_ti", "txid",
    "current_",    "localtime", "random",       "gen_salt",  "uuid_generate",  "currval",
    "lastval",     "nextval",   "setval"};
static_assert(std::size(kWords) <= 32);

// For each byte, the words that start with it in either case (bit i: kWords[i]), so that a
// byte no word starts with costs one lookup (this runs on every mirrored statement).
constexpr std::array<std::uint32_t, 256> kByFirstByte = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::size_t i = 0; i < std::size(kWords); ++i) {
    const char c = kWords[i][0];
    if (c < 'a' || c > 'z') throw "every word starts with a lower-case letter";  // compile error
    t[static_cast<unsigned char>(c)] |= 1u << i;
    t[static_cast<unsigned char>(c - 'a' + 'A')] |= 1u << i;
  }
  return t;
}();

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

}  // namespace

bool mirror_safety_candidate(std::string_view sql) {
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const auto c = static_cast<unsigned char>(sql[i]);
    if (c == '\\') return true;
    for (std::uint32_t m = kByFirstByte[c]; m != 0; m &= m - 1) {
      const std::string_view w = kWords[std::countr_zero(m)];
      if (sql.size() - i < w.size()) continue;
      std::size_t k = 1;
      while (k < w.size() && lower(sql[i + k]) == w[k]) ++k;
      if (k == w.size()) return true;
    }
  }
  return false;
}

MirrorCapture::Unit& MirrorCapture::open_unit() {
  if (units_.empty() || units_.back().sent) {
    Unit u;
    u.begin = u.end = buf_.size();
    units_.push_back(std::move(u));
    unit_statements_.clear();
  }
  return units_.back();
}

wire::Bytes& MirrorCapture::buffer() {
  open_unit();
  return buf_;
}

pool::PreparedSet& MirrorCapture::unit_statements() {
  open_unit();
  return unit_statements_;
}

void MirrorCapture::message_sent(std::uint8_t type) {
  Unit& u = open_unit();
  u.end = buf_.size();
  u.shape |= type == 'Q' ? kQuery : type == 'F' ? kOther : kExtended;
  if (type == 'Q' || type == 'S' || type == 'F') u.sent = true;
}

void MirrorCapture::copy_piece(std::span<const std::uint8_t> raw) {
  // COPY data follows the Query (or Execute) that started the COPY, before anything else.
  if (units_.empty()) return;
  Unit& u = units_.back();
  if (u.end != buf_.size()) return;
  buf_.insert(buf_.end(), raw.begin(), raw.end());
  u.end = buf_.size();
  u.shape |= kOther;
}

void MirrorCapture::mark_write() {
  open_unit().writes = true;
}

void MirrorCapture::mark_transaction_control() {
  open_unit().controls = true;
}

// A transaction sent as separate round trips (simple Queries, or extended-protocol batches
// each ending in a Sync), BEGIN first and COMMIT last, that committed without an error: the
// candidates the replay may send as one (the replay checks the texts of the first and last:
// replay_batch.hpp, join_transaction()).
bool MirrorCapture::joinable(std::size_t first, std::size_t last) const {
  if (last < first + 2) return false;  // BEGIN, at least one statement, COMMIT
  if (!units_[first].controls || !units_[last].controls) return false;
  const std::uint8_t shape = units_[first].shape;
  if (shape != kQuery && shape != kExtended) return false;
  for (std::size_t k = first; k <= last; ++k) {
    const Unit& u = units_[k];
    if (u.shape != shape || u.failed || (u.controls && k != first && k != last)) return false;
  }
  const std::size_t from = first == 0 ? 0 : units_[first - 1].outcome_end;
  const std::size_t to = units_[last].outcome_end;
  return to > from + 1 && outcomes_[from] == "BEGIN" && outcomes_[to - 1] == "COMMIT";
}

void MirrorCapture::on_command_complete(std::string_view tag) {
  if (answering_ >= units_.size()) return;
  Unit& u = units_[answering_];
  outcomes_.emplace_back(tag);
  if (tag == "COMMIT") u.committed = true;
}

void MirrorCapture::on_error(std::string_view sqlstate) {
  if (answering_ >= units_.size()) return;
  Unit& u = units_[answering_];
  std::string& e = outcomes_.emplace_back("ERROR ");
  e += sqlstate;
  u.failed = true;
}

void MirrorCapture::on_ready_for_query(char status,
                                       const std::shared_ptr<const pool::StartupParams>& params,
                                       bool changing) {
  if (answering_ >= units_.size()) return;
  Unit& u = units_[answering_++];
  u.answered = true;
  u.status = status;
  u.params = params;
  u.changes_settings = changing;
  u.outcome_end = outcomes_.size();
}

std::vector<std::shared_ptr<MirrorTxn>> MirrorCapture::take() {
  std::vector<std::shared_ptr<MirrorTxn>> out;
  std::size_t first = 0;
  for (std::size_t i = 0; i < units_.size(); ++i) {
    const Unit& u = units_[i];
    if (!u.answered) break;  // not at a boundary: nothing of it is known yet
    if (u.status != 'I') continue;
    bool writes = false, failed = false, committed = false, changes = false;
    for (std::size_t k = first; k <= i; ++k) {
      writes |= units_[k].writes;
      failed |= units_[k].failed;
      committed |= units_[k].committed;
      changes |= units_[k].changes_settings;
    }
    if (writes && (!failed || committed)) {
      auto t = std::make_shared<MirrorTxn>();
      // Before the outcomes move out. Not with a SET inside: joined into one Query, the
      // statements after it would be lexed before it ran (standard_conforming_strings).
      t->joinable = !changes && joinable(first, i);
      if (units_[first].begin == 0 && u.end == buf_.size()) {
        // The whole capture is this transaction (the common case): its bytes are handed
        // over, not copied; the next one gets a buffer of the same size.
        const std::size_t size = buf_.size();
        t->messages.swap(buf_);
        buf_.reserve(size);
      } else {
        t->messages.assign(buf_.begin() + static_cast<std::ptrdiff_t>(units_[first].begin),
                           buf_.begin() + static_cast<std::ptrdiff_t>(u.end));
      }
      t->answers = static_cast<std::uint32_t>(i - first + 1);
      const std::size_t from = first == 0 ? 0 : units_[first - 1].outcome_end;
      t->outcome.assign(
          std::make_move_iterator(outcomes_.begin() + static_cast<std::ptrdiff_t>(from)),
          std::make_move_iterator(outcomes_.begin() + static_cast<std::ptrdiff_t>(u.outcome_end)));
      t->params = u.params;  // the same for every unit of the transaction
      t->changes_settings = changes;
      out.push_back(std::move(t));
    }
    first = i + 1;
  }
  clear();
  return out;
}

void MirrorCapture::clear() {
  buf_.clear();
  if (buf_.capacity() > (1u << 20)) wire::Bytes().swap(buf_);
  units_.clear();
  outcomes_.clear();
  answering_ = 0;
  unit_statements_.clear();
}

}  // namespace pgshift::proxy
