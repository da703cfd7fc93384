#pragma once
// Issue 14.2: pgshift's own idle pooled servers must not block DROP DATABASE, ALTER
// DATABASE ... RENAME or CREATE DATABASE ... TEMPLATE (PostgreSQL refuses them while any
// other backend is connected to the database). Before such a statement is relayed, the idle
// servers of every pool of the databases it names are closed on every I/O thread. The
// server waits up to 5 s for other backends to leave, so the closes (posted to each thread,
// Terminate then close) land well within that window.
//
// Called by both relays with the start of each Query and Parse message; cheap for any
// statement that does not contain the word "database". Thread-safe (PoolRegistry is).
#include <cstdint>
#include <span>
#include <string_view>

#include "pool/pool_shared.hpp"

namespace pgshift::proxy {

// `body` is the message body or its first part: Query (SQL\0) or Parse (name\0 SQL\0 ...).
// A statement cut off by the end of `body` is checked as far as it goes.
void free_databases_for_message(pool::PoolRegistry& registry, std::uint8_t type,
                                std::span<const std::uint8_t> body, std::uint64_t session);

// The same for SQL text already extracted.
void free_databases_for_sql(pool::PoolRegistry& registry, std::string_view sql,
                            std::uint64_t session);

// Whether a Query / Parse (body or its first part) runs a statement whose effect DISCARD ALL
// does not undo (routing::outlives_discard_all): its server is then closed, not reused.
bool leaves_lasting_state(std::uint8_t type, std::span<const std::uint8_t> body);
bool leaves_lasting_state(std::string_view sql);

}  // namespace pgshift::proxy
