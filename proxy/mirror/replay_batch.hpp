#pragma once
// Pure helpers of the pipelined replay (replay.cpp, docs/sync.md "Mirror mode"): how one
// queued transaction is written on the mirror's connection, and whether the next one may be
// sent before its answer. No I/O, no locks; used on the mirror thread.
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/prepared_set.hpp"
#include "wire/builder.hpp"

namespace pgshift::mirror {

using NameSet = std::set<std::string, std::less<>>;

// Whether replaying `messages` (one MirrorTxn) leaves the connection outside a transaction
// block whatever its statements do, errors included, so that the next transaction may be
// pipelined behind it without running inside a block it left open. True when
//   - its last unit is a lone COMMIT / END (ROLLBACK / ABORT), as a simple Query or as one
//     Bind + Execute of such a statement before a Sync: the server runs it even in a failed
//     block and ends the block; or
//   - it is one unit (a simple Query, or extended messages ending in Sync) that contains
//     no BEGIN, START or CHAIN anywhere in its SQL: the unit is its own implicit
//     transaction, ended by the Sync or the end of the Query.
// Conservative: anything else (a multi-statement COMMIT, a DO block, a FunctionCall...) is
// false, and the replay waits for that transaction's answer before sending the next.
bool ends_idle(std::span<const std::uint8_t> messages);

// A statement that ends a transaction block and nothing else: COMMIT, END, ROLLBACK, ABORT,
// each with an optional WORK or TRANSACTION, case-insensitive, comments and one trailing
// semicolon allowed. Not COMMIT AND CHAIN, not ROLLBACK TO SAVEPOINT.
bool is_lone_exit(std::string_view sql);

// A lone BEGIN / START TRANSACTION (with an optional WORK or TRANSACTION, no modes), or a
// lone COMMIT / END: comments and one trailing semicolon allowed, case-insensitive.
bool is_lone_begin(std::string_view sql);
bool is_lone_commit(std::string_view sql);

// Appends a joinable transaction (MirrorTxn::joinable: a lone BEGIN, statements, a lone
// COMMIT, each its own round trip) to `out` as ONE round trip of the statements between them:
//   - simple Queries become one Query, joined by "\n;" (a line comment at the end of one ends
//     at the newline; empty statements are ignored by the server);
//   - extended-protocol batches lose the Syncs between them and all of BEGIN's and COMMIT's
//     round trips but the Parse of a named statement and a Close, and end in one Sync.
// The server runs the statements as one implicit transaction: committed at the end, or
// rolled back whole at the first error, and idle afterwards either way, so the next
// transaction may follow in the pipeline whatever happens. The other side then runs and
// answers one round trip instead of one per statement (docs/sync.md, "How the replay is
// pipelined"). The answer has the middle statements' command tags, without BEGIN and COMMIT.
// Returns false, and leaves `out` unchanged, for anything else: other message kinds, fewer
// than three round trips, a BEGIN with options, a last statement that is not a COMMIT or END.
bool join_transaction(std::span<const std::uint8_t> messages, wire::Bytes& out);

// Appends one transaction's messages to `out` as the mirror's connection needs them: the
// Parse of a named statement the connection already holds (`prepared`) is left out, and the
// statement evicted from `prepared` to make room for a new one is closed first. The names it
// prepares or evicts are appended to `introduced`. Returns false, and changes nothing, when
// it has a Parse of a statement in `pending` (prepared or evicted by a transaction whose
// answer has not come yet: if that one fails, what the server holds under the name is not
// known).
bool append_replay(std::span<const std::uint8_t> messages, pool::PreparedSet& prepared,
                   const NameSet& pending, wire::Bytes& out, std::vector<std::string>& introduced);

}  // namespace pgshift::mirror
