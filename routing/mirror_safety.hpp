#pragma once
// Mirror safety: can a write statement be replayed on the other side (sync.mode: mirror) and
// give the same rows? A replayed statement runs later, in another session, on another
// server: anything it computes from the clock, a random source, a sequence, or that the
// schema computes for it (serial / identity / volatile defaults, triggers) may come out
// different there. The classifier flags such statements at first sight so that the proxy
// counts them (pgshift_mirror_unsafe_total{route,reason}) and `sync check` explains them
// (docs/sync.md, "Mirror mode: what cannot be replayed").
//
// Two sources of reasons, one enum:
//   - from the text alone (the lexer's tokens, so comments, string literals, quoted
//     identifiers and dollar-quoted bodies never trigger): volatile_function, random,
//     sequence;
//   - from the schema, when the caller passes a MirrorSchema (filled from the catalog, see
//     proxy/migrate/mirror_check.hpp): serial_default, identity_default, volatile_default
//     (an INSERT / COPY FROM / MERGE that does not give the column, or UPDATE ... DEFAULT),
//     trigger (any write to a table with a user trigger).
//
// Conservative, token-level: a false positive costs a metric increment and a line in the
// journal; a false negative would be a silent divergence, which `verify` still catches.
// Pure, no I/O, never throws on any input except std::bad_alloc (fuzzed:
// fuzz/routing/mirror_safety_fuzz.cpp), linear in the input. Thread-safe: no shared state;
// a MirrorSchema is immutable once built and may be shared between threads.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "routing/lexer.hpp"

namespace pgshift::routing {

enum class MirrorUnsafeReason : std::uint8_t {
  volatile_function,  // now(), current_timestamp, clock_timestamp(), 'now'::timestamptz, ...
  random,             // random(), gen_random_uuid(), uuid_generate_v4(), gen_random_bytes()...
  sequence,           // nextval(), setval(), currval(), lastval()
  serial_default,     // a column defaulting to nextval(...) (serial, bigserial) left out
  identity_default,   // an identity column (GENERATED ... AS IDENTITY) left out
  volatile_default,   // a column with a volatile default (now(), random(), ...) left out
  trigger,            // a write to a table with a user trigger (side effects replay again)
};
inline constexpr std::size_t kMirrorUnsafeReasonCount = 7;

// Stable snake_case names (metric label values, JSON, docs): "volatile_function", "random",
// "sequence", "serial_default", "identity_default", "volatile_default", "trigger".
std::string_view to_string(MirrorUnsafeReason r);
std::optional<MirrorUnsafeReason> mirror_unsafe_reason_from_string(std::string_view name);
// Every reason, in enum order (for pre-registering metric series).
const std::array<MirrorUnsafeReason, kMirrorUnsafeReasonCount>& all_mirror_unsafe_reasons();

// A small set of reasons (one bit each).
class MirrorUnsafeSet {
 public:
  void add(MirrorUnsafeReason r) { bits_ |= bit(r); }
  void add(MirrorUnsafeSet other) { bits_ |= other.bits_; }
  bool contains(MirrorUnsafeReason r) const { return (bits_ & bit(r)) != 0; }
  bool empty() const { return bits_ == 0; }
  std::size_t size() const;
  std::vector<MirrorUnsafeReason> to_vector() const;  // enum order
  std::string to_string() const;                      // "random,sequence"; "" when empty
  bool operator==(const MirrorUnsafeSet&) const = default;

 private:
  static std::uint16_t bit(MirrorUnsafeReason r) {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(r));
  }
  std::uint16_t bits_ = 0;
};

// What the catalog says about one table (see proxy/migrate/mirror_check.hpp, which fills it).
struct MirrorTableRisks {
  // Columns whose default the replay would compute again: reason is serial_default,
  // identity_default or volatile_default. Column names as stored (case kept).
  std::vector<std::pair<std::string, MirrorUnsafeReason>> defaults;
  bool user_triggers = false;  // at least one enabled, non-internal trigger
};

// The schema hook: per table risks, looked up by the written tables of a statement. Names
// are the catalog's (case kept); an unqualified name in SQL is looked up in `public` (the
// proxy does not know the session's search_path; documented). Build once, then share.
class MirrorSchema {
 public:
  void add_table(std::string schema, std::string table, MirrorTableRisks risks);
  const MirrorTableRisks* find(std::string_view schema, std::string_view table) const;
  bool empty() const { return tables_.empty(); }

 private:
  std::unordered_map<std::string, MirrorTableRisks> tables_;  // key: schema + '\0' + table
};

struct MirrorSafety {
  MirrorUnsafeSet reasons;  // empty: nothing known that would replay differently
  // The first offending construct per reason found, for logs and the journal ("now()",
  // "nextval()", "public.orders.id", "trigger on public.orders"). Same order as reasons.
  std::vector<std::pair<MirrorUnsafeReason, std::string>> details;
  bool safe() const { return reasons.empty(); }
};

// Classifies one Query / Parse text (one or more statements). `schema` may be null (text
// reasons only). `options.standard_conforming_strings` must follow the server's setting, as
// for the Classifier.
MirrorSafety classify_mirror_safety(std::string_view sql, const MirrorSchema* schema = nullptr,
                                    LexerOptions options = {});

}  // namespace pgshift::routing
