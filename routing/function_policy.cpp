#include "routing/function_policy.hpp"

#include <algorithm>
#include <iterator>

namespace pgshift::routing {
namespace {

// Side-effect-free builtins. Keep sorted (binary search; checked by a unit test) and keep
// docs/routing.md in step (also checked). Type names appear because typmods and
// function-style casts look like calls: numeric(10,2), varchar(20), int4(x); so do CUBE and
// ROLLUP in GROUP BY.
constexpr std::string_view kAllowed[] = {
    "abbrev",
    "abs",
    "acos",
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_dims",
    "array_fill",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_sample",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "asin",
    "atan",
    "atan2",
    "avg",
    "bernoulli",  // TABLESAMPLE BERNOULLI (10)
    "bigint",
    "bit",
    "bit_and",
    "bit_count",
    "bit_length",
    "bit_or",
    "bit_xor",
    "bool",
    "bool_and",
    "bool_or",
    "boolean",
    "bpchar",
    "broadcast",
    "btrim",
    "bytea",
    "cardinality",
    "cast",
    "cbrt",
    "ceil",
    "ceiling",
    "char",
    "char_length",
    "character",
    "character_length",
    "chr",
    "cidr",
    "clock_timestamp",
    "coalesce",
    "col_description",
    "concat",
    "concat_ws",
    "corr",
    "cos",
    "cot",
    "count",
    "covar_pop",
    "covar_samp",
    "cube",
    "cume_dist",
    "current_database",
    "current_date",
    "current_schema",
    "current_schemas",
    "current_setting",
    "current_time",
    "current_timestamp",
    "date",
    "date_bin",
    "date_part",
    "date_trunc",
    "dec",
    "decimal",
    "decode",
    "degrees",
    "dense_rank",
    "div",
    "encode",
    "every",
    "exp",
    "extract",
    "factorial",
    "family",
    "first_value",
    "float",
    "float4",
    "float8",
    "floor",
    "format",
    "format_type",
    "gcd",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "greatest",
    "grouping",
    "has_column_privilege",
    "has_database_privilege",
    "has_schema_privilege",
    "has_table_privilege",
    "host",
    "hostmask",
    "inet",
    "initcap",
    "int",
    "int2",
    "int4",
    "int8",
    "integer",
    "interval",
    "isfinite",
    "json",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object",
    "json_object_agg",
    "json_object_keys",
    "json_populate_record",
    "json_populate_recordset",
    "json_strip_nulls",
    "json_to_record",
    "json_to_recordset",
    "json_typeof",
    "jsonb",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_populate_record",
    "jsonb_populate_recordset",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lag",
    "last_value",
    "lcm",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "localtime",
    "localtimestamp",
    "log",
    "log10",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "masklen",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "money",
    "name",
    "netmask",
    "network",
    "normalize",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "num_nonnulls",
    "num_nulls",
    "numeric",
    "obj_description",
    "octet_length",
    "overlay",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_backend_pid",
    "pg_column_size",
    "pg_database_size",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_functiondef",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "pg_has_role",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_postmaster_start_time",
    "pg_relation_size",
    "pg_size_bytes",
    "pg_size_pretty",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_typeof",
    "phraseto_tsquery",
    "pi",
    "plainto_tsquery",
    "position",
    "pow",
    "power",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "radians",
    "random",
    "range_merge",
    "rank",
    "real",
    "regclass",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_substr",
    "regproc",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regtype",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rollup",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "scale",
    "session_user",
    "set_masklen",
    "setweight",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sign",
    "sin",
    "smallint",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "string_to_table",
    "strpos",
    "substr",
    "substring",
    "sum",
    "system",  // TABLESAMPLE SYSTEM (10)
    "tan",
    "text",
    "time",
    "timeofday",
    "timestamp",
    "timestamptz",
    "timetz",
    "timezone",
    "to_ascii",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_regclass",
    "to_regproc",
    "to_regtype",
    "to_timestamp",
    "to_tsquery",
    "to_tsvector",
    "transaction_timestamp",
    "translate",
    "treat",
    "trim",
    "trunc",
    "ts_headline",
    "ts_rank",
    "ts_rank_cd",
    "tsquery",
    "tsvector",
    "unistr",
    "unnest",
    "upper",
    "uuid",
    "var_pop",
    "var_samp",
    "varbit",
    "varchar",
    "variance",
    "varying",  // character varying(20)
    "version",
    "websearch_to_tsquery",
    "width_bucket",
    "xml",
    "xmlagg",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
};

// Known to change state even though they are "just" functions.
constexpr std::string_view kWriteExact[] = {
    "currval",  // reads session state that only exists where nextval ran
    "lastval",
    "nextval",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_cancel_backend",
    "pg_clear_attribute_stats",
    "pg_copy_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_create_restore_point",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "pg_export_snapshot",
    "pg_file_write",
    "pg_import_system_collations",
    "pg_log_backend_memory_contexts",
    "pg_notify",
    "pg_promote",
    "pg_reload_conf",
    "pg_replication_origin_create",
    "pg_rotate_logfile",
    "pg_sleep",  // harmless, but ties up a connection: keep it where the app expects it
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_switch_wal",
    "pg_terminate_backend",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "setval",
    "txid_current",
    "txid_current_if_assigned",
};

constexpr std::string_view kWritePrefixes[] = {
    "dblink",          "lo_",           "pg_create_",      "pg_drop_",     "pg_logical_",
    "pg_replication_", "pg_stat_reset", "pg_read_binary_", "pg_truncate_", "pg_file_",
};

bool contains_sorted(std::string_view name) {
  return std::binary_search(std::begin(kAllowed), std::end(kAllowed), name);
}

std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string_view to_string(FunctionKind k) {
  switch (k) {
    case FunctionKind::read_only:
      return "read_only";
    case FunctionKind::unknown:
      return "unknown";
    case FunctionKind::write:
      return "write";
    case FunctionKind::advisory_lock:
      return "advisory_lock";
    case FunctionKind::advisory_unlock:
      return "advisory_unlock";
    case FunctionKind::set_config:
      return "set_config";
  }
  return "invalid";
}

FunctionPolicy::FunctionPolicy(const std::vector<std::string>& extra_allowed) {
  for (const auto& f : extra_allowed) {
    std::string name = lower_copy(f);
    if (name.starts_with("pg_catalog.")) name.erase(0, 11);
    extra_.insert(std::move(name));
  }
}

FunctionKind FunctionPolicy::classify(std::string_view schema, std::string_view name) const {
  const bool builtin_schema = schema.empty() || schema == "pg_catalog";
  if (builtin_schema) {
    if (name.starts_with("pg_advisory_xact_") || name.starts_with("pg_try_advisory_xact_")) {
      return FunctionKind::write;  // transaction-scoped: released at commit, no pin
    }
    if (name.starts_with("pg_advisory_unlock")) return FunctionKind::advisory_unlock;
    if (name.starts_with("pg_advisory_") || name.starts_with("pg_try_advisory_")) {
      return FunctionKind::advisory_lock;
    }
    if (name == "set_config") return FunctionKind::set_config;
    if (std::find(std::begin(kWriteExact), std::end(kWriteExact), name) != std::end(kWriteExact)) {
      return FunctionKind::write;
    }
    for (auto prefix : kWritePrefixes) {
      if (name.starts_with(prefix)) return FunctionKind::write;
    }
    if (contains_sorted(name)) return FunctionKind::read_only;
  }
  // dblink lives in whatever schema the extension was installed into.
  if (name.starts_with("dblink")) return FunctionKind::write;
  std::string key;
  if (!builtin_schema) {
    key.reserve(schema.size() + 1 + name.size());
    key.append(schema).append(".");
  }
  key.append(name);
  if (extra_.contains(lower_copy(key))) return FunctionKind::read_only;
  return FunctionKind::unknown;
}

std::vector<std::string_view> FunctionPolicy::builtin_allowed() {
  return {std::begin(kAllowed), std::end(kAllowed)};
}

}  // namespace pgshift::routing
