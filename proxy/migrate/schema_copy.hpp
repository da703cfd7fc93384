#pragma once
// `sync start --copy-schema`: the source's schema (pg_dump --schema-only) applied to an
// empty target with psql, in two steps so the initial copy runs without secondary indexes:
//   before the copy: pre-data (types, functions, tables...) and the PRIMARY KEY constraints
//                    from post-data (logical replication needs the key on the subscriber to
//                    apply UPDATE and DELETE while the copy is running);
//   after the copy:  the rest of post-data (indexes, other constraints, triggers).
// Blocking; CLI only.
#include <string>
#include <vector>

#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {

class SchemaCopy {
 public:
  SchemaCopy(const SyncSides& sides, std::vector<TableRef> tables);
  ~SchemaCopy();  // removes the temporary dump files

  // Dumps both sections and applies pre-data + primary keys. Throws std::runtime_error with
  // pg_dump's or psql's failure.
  void before_copy();
  // Applies the rest of post-data.
  void after_copy();

 private:
  void dump(const std::string& section, const std::string& file);
  void apply(const std::string& file);

  const SyncSides& sides_;
  std::vector<TableRef> tables_;
  std::string dir_;
  std::string post_rest_;
};

// Splits pg_dump's post-data script by its "-- Name: ...; Type: ...;" headers into the
// primary key constraints and everything else; the preamble (SET ...) goes to both.
void split_post_data(const std::string& script, std::string& primary_keys, std::string& rest);

}  // namespace pgshift::migrate
