#pragma once
// Statements that need a database free of other sessions: PostgreSQL refuses them with
// "database ... is being accessed by other users" (after waiting 5 s) while any backend is
// connected to it, and pgshift's own idle pooled servers count. The session relays ask
// which databases a statement names, so the pools can close their idle servers first.
//   DROP DATABASE [IF EXISTS] x                 -> x
//   ALTER DATABASE x RENAME TO y                -> x
//   ALTER DATABASE x SET TABLESPACE t           -> x
//   CREATE DATABASE y [WITH] ... TEMPLATE [=] t -> t (template1 without TEMPLATE or DEFAULT)
// Found with the lexer (routing/lexer.hpp), statement by statement, so names inside
// literals and comments never count. Names are returned as the server folds them (unquoted
// identifiers lower-cased, quoted ones verbatim). Pure; thread-safe.
#include <string>
#include <string_view>
#include <vector>

#include "routing/lexer.hpp"

namespace pgshift::routing {

std::vector<std::string> databases_needing_exclusive_access(std::string_view sql,
                                                            LexerOptions options = {});

// Statements whose effect on the backend DISCARD ALL does not undo, so a pooled server that
// ran one is closed rather than reset for the next client (docs/pooling.md): LOAD, and
// two-phase commit (PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED).
bool outlives_discard_all(std::string_view sql, LexerOptions options = {});

// Whether any statement of `sql` drops every protocol-level prepared statement of the
// backend: DISCARD ALL, or DEALLOCATE [PREPARE] ALL. A pooled server's record of what it has
// prepared (pool::PreparedSet) is then forgotten, so that the statements are prepared again
// (docs/pooling.md). DEALLOCATE of one name and DISCARD PLANS/TEMP/SEQUENCES leave the
// statements in place: forgetting them would make the next Parse of one fail with 42P05.
bool drops_prepared_statements(std::string_view sql, LexerOptions options = {});

}  // namespace pgshift::routing
