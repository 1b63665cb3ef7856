//! The Postgres system catalog of one caller's catalog: `pg_catalog` (`pg_class`,
//! `pg_namespace`, `pg_attribute`, `pg_type`, `pg_description`, `pg_tables`, …) and
//! `information_schema` (`tables`, `columns`, `schemata`), so psql's `\dt` and `\d`,
//! SQLAlchemy's inspector and BI tools' table browsers list what the caller may read, and no
//! more (`responses` is listed only to roles that may read it).
//!
//! Clients send Postgres' own SQL for these, which polars' context does not run as written. A
//! query that reads system tables is rewritten first (`rewrite`):
//! - functions answered here: `pg_table_is_visible` and the `has_*_privilege` family → true,
//!   `pg_get_userbyid` → the owner, `format_type` → the type's name, `obj_description` → the
//!   table's description, `pg_encoding_to_char` → `UTF8`, sizes → 0, other `pg_*` functions
//!   and `array_to_string` → NULL (they describe objects cxlake has none of);
//! - casts to `regclass`, `regtype`, `oid` and the like dropped, `COLLATE` dropped,
//!   `OPERATOR(pg_catalog.~)` read as `~`, quoted oids (`c.oid = '16384'`) read as numbers,
//!   `x = ANY (ARRAY[…])` read as `x IN (…)`, `pg_catalog.t.c` as `t.c`;
//! - scalar subqueries in the select list (column defaults, collations) → NULL.
//!
//! A catalog query polars still cannot run answers no rows with the columns it names
//! (`empty_answer`): what such queries ask about (policies, publications, triggers,
//! inheritance) does not exist here. Table oids are 16384 + the table's place in the catalog.

use super::catalog::Catalog;
use super::values::{fields, SqlType};
use polars::prelude::*;
use sqlparser::ast::{
    BinaryOperator, DataType as SqlDataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Value,
    VisitMut, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// `pg_catalog`'s oid, `public`'s, `information_schema`'s.
const PG_CATALOG: i64 = 11;
const PUBLIC: i64 = 2200;
const INFORMATION_SCHEMA: i64 = 13_000;
/// The one role that owns everything (`pg_roles`).
const OWNER: i64 = 10;
const OWNER_NAME: &str = "cxlake";
const DATABASE_OID: i64 = 16_000;
const FIRST_TABLE_OID: i64 = 16_384;
/// `pg_class`'s own oid (the `classoid` of table descriptions).
const PG_CLASS_OID: i64 = 1259;

/// System tables psql's `\d` and BI tools read that describe what cxlake has none of
/// (policies, publications, rules, sequences, …): tables of no rows and no columns, so a query
/// of them answers no rows (`empty_answer`). Names neither here nor built by `System::table`
/// are unknown relations (`pg_shadow`, `pg_authid`: there are no passwords to read).
const EMPTY: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_statistic_ext_data",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_rewrite",
    "pg_sequence",
    "pg_foreign_table",
    "pg_foreign_server",
    "pg_foreign_data_wrapper",
    "pg_partitioned_table",
    "pg_event_trigger",
    "pg_opclass",
    "pg_depend",
    "pg_shdescription",
    "pg_tablespace",
    "pg_cast",
    "pg_operator",
    "pg_aggregate",
    "pg_language",
    "pg_stat_activity",
    "pg_locks",
    "pg_prepared_statements",
    "pg_cursors",
    "pg_range",
    "pg_ts_config",
    "pg_subscription",
    "pg_auth_members",
    "pg_generate_series",
    "pg_unnest",
    "pg_generate_subscripts",
    "information_schema_key_column_usage",
    "information_schema_table_constraints",
    "information_schema_referential_constraints",
    "information_schema_routines",
    "information_schema_parameters",
];

/// Set-returning functions of `pg_catalog` a catalog query may call in its FROM clause; they
/// read nothing, and a query calling one answers no rows (polars has none of them).
pub const SET_FUNCTIONS: &[&str] = &["generate_series", "unnest", "generate_subscripts"];

/// The name a system relation runs under: `pg_catalog.x` and `x` → `x`,
/// `information_schema.x` → `information_schema_x`; None for other names.
pub fn relation_name(schema: Option<&str>, table: &str) -> Option<String> {
    match schema {
        Some("pg_catalog") | None if table.starts_with("pg_") => Some(table.to_string()),
        // Set-returning functions psql calls in catalog queries (`pg_catalog.generate_series`).
        Some("pg_catalog") if SET_FUNCTIONS.contains(&table) => Some(format!("pg_{table}")),
        Some("information_schema") => Some(format!("information_schema_{table}")),
        _ => None,
    }
}

/// Whether a (rewritten) relation name is a system table.
pub fn is_system(name: &str) -> bool {
    name.starts_with("pg_") || name.starts_with("information_schema_")
}

/// The catalog's tables with their oids and columns.
pub struct System {
    tables: Vec<Relation>,
}

struct Relation {
    oid: i64,
    name: String,
    description: String,
    columns: Vec<(String, SqlType)>,
}

type Cols = Vec<Column>;

fn col<T>(name: &str, values: Vec<T>) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), values)
}

/// A frame of `columns`; an unknown system table is a frame of no columns.
fn frame(columns: Cols) -> DataFrame {
    DataFrame::new_infer_height(columns).expect("columns of one length")
}

/// An empty table with these columns: `i` an integer (oids too), `b` a boolean, else text.
fn empty(spec: &[(&str, char)]) -> DataFrame {
    frame(
        spec.iter()
            .map(|(name, t)| match t {
                'i' => col(name, Vec::<i64>::new()),
                'b' => col(name, Vec::<bool>::new()),
                _ => col(name, Vec::<Option<String>>::new()),
            })
            .collect(),
    )
}

impl System {
    pub fn new(catalog: &Catalog) -> System {
        let tables = catalog
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| Relation {
                oid: FIRST_TABLE_OID + i as i64,
                name: t.name.clone(),
                description: t.description(),
                columns: fields(&t.schema()).into_iter().map(|f| (f.name, f.ty)).collect(),
            })
            .collect();
        System { tables }
    }

    /// The rows of system table `name` (see `relation_name`); None for a name that is not one.
    pub fn frame(&self, name: &str) -> Option<DataFrame> {
        if EMPTY.contains(&name) {
            return Some(frame(Vec::new()));
        }
        self.table(name)
    }

    fn table(&self, name: &str) -> Option<DataFrame> {
        let n = self.tables.len();
        let t = &self.tables;
        let ints = |name: &str, v: i64, k: usize| col(name, vec![v; k]);
        let bools = |name: &str, v: bool, k: usize| col(name, vec![v; k]);
        let texts = |name: &str, v: &str, k: usize| col(name, vec![v; k]);
        let nulls = |name: &str, k: usize| col(name, vec![None::<String>; k]);
        Some(match name {
            "pg_namespace" => frame(vec![
                col("oid", vec![PG_CATALOG, PUBLIC, INFORMATION_SCHEMA]),
                col("nspname", vec!["pg_catalog", "public", "information_schema"]),
                ints("nspowner", OWNER, 3),
                nulls("nspacl", 3),
            ]),
            "pg_class" => frame(vec![
                col("oid", t.iter().map(|r| r.oid).collect::<Vec<_>>()),
                col("relname", t.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                ints("relnamespace", PUBLIC, n),
                ints("reltype", 0, n),
                ints("reloftype", 0, n),
                ints("relowner", OWNER, n),
                ints("relam", 2, n),
                ints("relfilenode", 0, n),
                ints("reltablespace", 0, n),
                ints("relpages", 0, n),
                col("reltuples", vec![-1.0f64; n]),
                ints("relallvisible", 0, n),
                ints("reltoastrelid", 0, n),
                bools("relhasindex", false, n),
                bools("relisshared", false, n),
                texts("relpersistence", "p", n),
                texts("relkind", "r", n),
                col("relnatts", t.iter().map(|r| r.columns.len() as i64).collect::<Vec<_>>()),
                ints("relchecks", 0, n),
                bools("relhasrules", false, n),
                bools("relhastriggers", false, n),
                bools("relhassubclass", false, n),
                bools("relrowsecurity", false, n),
                bools("relforcerowsecurity", false, n),
                bools("relispopulated", true, n),
                texts("relreplident", "d", n),
                bools("relispartition", false, n),
                ints("relrewrite", 0, n),
                nulls("relacl", n),
                nulls("reloptions", n),
                nulls("relpartbound", n),
            ]),
            "pg_attribute" => {
                let cols: Vec<(i64, i64, &str, SqlType)> =
                    t.iter().flat_map(|r| r.columns.iter().enumerate().map(move |(i, (c, ty))| (r.oid, i as i64 + 1, c.as_str(), *ty))).collect();
                let k = cols.len();
                frame(vec![
                    col("attrelid", cols.iter().map(|c| c.0).collect::<Vec<_>>()),
                    col("attname", cols.iter().map(|c| c.2).collect::<Vec<_>>()),
                    col("atttypid", cols.iter().map(|c| c.3.postgres().0).collect::<Vec<_>>()),
                    ints("attstattarget", -1, k),
                    col("attlen", cols.iter().map(|c| c.3.postgres().3).collect::<Vec<_>>()),
                    col("attnum", cols.iter().map(|c| c.1).collect::<Vec<_>>()),
                    ints("attndims", 0, k),
                    ints("atttypmod", -1, k),
                    col("attbyval", cols.iter().map(|c| c.3.postgres().3 > 0).collect::<Vec<_>>()),
                    bools("attnotnull", false, k),
                    bools("atthasdef", false, k),
                    bools("atthasmissing", false, k),
                    texts("attidentity", "", k),
                    texts("attgenerated", "", k),
                    bools("attisdropped", false, k),
                    bools("attislocal", true, k),
                    ints("attinhcount", 0, k),
                    col("attcollation", cols.iter().map(|c| if c.3 == SqlType::Text { 100 } else { 0 }).collect::<Vec<i64>>()),
                    nulls("attacl", k),
                    nulls("attoptions", k),
                ])
            }
            "pg_type" => {
                let ty = SqlType::ALL;
                let k = ty.len();
                let category = |t: &SqlType| match t {
                    SqlType::Bool => "B",
                    SqlType::Int64 | SqlType::Float64 => "N",
                    SqlType::Text => "S",
                    SqlType::Date | SqlType::Timestamp => "D",
                };
                frame(vec![
                    col("oid", ty.iter().map(|t| t.postgres().0).collect::<Vec<_>>()),
                    col("typname", ty.iter().map(|t| t.postgres().1).collect::<Vec<_>>()),
                    ints("typnamespace", PG_CATALOG, k),
                    ints("typowner", OWNER, k),
                    col("typlen", ty.iter().map(|t| t.postgres().3).collect::<Vec<_>>()),
                    col("typbyval", ty.iter().map(|t| t.postgres().3 > 0).collect::<Vec<_>>()),
                    texts("typtype", "b", k),
                    col("typcategory", ty.iter().map(category).collect::<Vec<_>>()),
                    bools("typispreferred", false, k),
                    bools("typisdefined", true, k),
                    texts("typdelim", ",", k),
                    ints("typrelid", 0, k),
                    ints("typelem", 0, k),
                    ints("typarray", 0, k),
                    bools("typnotnull", false, k),
                    ints("typbasetype", 0, k),
                    ints("typtypmod", -1, k),
                    ints("typndims", 0, k),
                    col("typcollation", ty.iter().map(|t| if *t == SqlType::Text { 100 } else { 0 }).collect::<Vec<i64>>()),
                    nulls("typdefault", k),
                ])
            }
            "pg_database" => frame(vec![
                col("oid", vec![DATABASE_OID]),
                col("datname", vec![super::statement::CATALOG]),
                ints("datdba", OWNER, 1),
                ints("encoding", 6, 1),
                texts("datlocprovider", "c", 1),
                bools("datistemplate", false, 1),
                bools("datallowconn", true, 1),
                ints("datconnlimit", -1, 1),
                ints("dattablespace", 1663, 1),
                texts("datcollate", "C.UTF-8", 1),
                texts("datctype", "C.UTF-8", 1),
                nulls("datacl", 1),
            ]),
            "pg_am" => frame(vec![col("oid", vec![2i64]), col("amname", vec!["heap"]), texts("amtype", "t", 1)]),
            "pg_description" => frame(vec![
                col("objoid", t.iter().map(|r| r.oid).collect::<Vec<_>>()),
                ints("classoid", PG_CLASS_OID, n),
                ints("objsubid", 0, n),
                col("description", t.iter().map(|r| r.description.clone()).collect::<Vec<_>>()),
            ]),
            "pg_roles" => frame(vec![
                col("oid", vec![OWNER]),
                col("rolname", vec![OWNER_NAME]),
                bools("rolsuper", false, 1),
                bools("rolinherit", true, 1),
                bools("rolcreaterole", false, 1),
                bools("rolcreatedb", false, 1),
                bools("rolcanlogin", true, 1),
                bools("rolreplication", false, 1),
                ints("rolconnlimit", -1, 1),
                bools("rolbypassrls", false, 1),
            ]),
            "pg_user" => {
                frame(vec![col("usename", vec![OWNER_NAME]), col("usesysid", vec![OWNER]), bools("usesuper", false, 1), bools("usecreatedb", false, 1)])
            }
            "pg_tables" => frame(vec![
                texts("schemaname", super::statement::SCHEMA, n),
                col("tablename", t.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                texts("tableowner", OWNER_NAME, n),
                nulls("tablespace", n),
                bools("hasindexes", false, n),
                bools("hasrules", false, n),
                bools("hastriggers", false, n),
                bools("rowsecurity", false, n),
            ]),
            "pg_views" => empty(&[("schemaname", 't'), ("viewname", 't'), ("viewowner", 't'), ("definition", 't')]),
            "pg_matviews" => empty(&[("schemaname", 't'), ("matviewname", 't'), ("matviewowner", 't'), ("definition", 't')]),
            "pg_index" => empty(&[("indexrelid", 'i'), ("indrelid", 'i'), ("indnatts", 'i'), ("indisunique", 'b'), ("indisprimary", 'b'), ("indkey", 't')]),
            "pg_constraint" => {
                empty(&[("oid", 'i'), ("conname", 't'), ("connamespace", 'i'), ("contype", 't'), ("conrelid", 'i'), ("confrelid", 'i'), ("conkey", 't')])
            }
            "pg_inherits" => empty(&[("inhrelid", 'i'), ("inhparent", 'i'), ("inhseqno", 'i')]),
            "pg_attrdef" => empty(&[("oid", 'i'), ("adrelid", 'i'), ("adnum", 'i'), ("adbin", 't')]),
            "pg_collation" => empty(&[("oid", 'i'), ("collname", 't'), ("collnamespace", 'i')]),
            "pg_trigger" => empty(&[("oid", 'i'), ("tgrelid", 'i'), ("tgname", 't'), ("tgisinternal", 'b')]),
            "pg_proc" => empty(&[("oid", 'i'), ("proname", 't'), ("pronamespace", 'i'), ("prokind", 't')]),
            "pg_extension" => empty(&[("oid", 'i'), ("extname", 't'), ("extversion", 't')]),
            "pg_enum" => empty(&[("oid", 'i'), ("enumtypid", 'i'), ("enumlabel", 't')]),
            "information_schema_schemata" => frame(vec![
                texts("catalog_name", super::statement::CATALOG, 3),
                col("schema_name", vec!["pg_catalog", "public", "information_schema"]),
                texts("schema_owner", OWNER_NAME, 3),
            ]),
            "information_schema_tables" => frame(vec![
                texts("table_catalog", super::statement::CATALOG, n),
                texts("table_schema", super::statement::SCHEMA, n),
                col("table_name", t.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                texts("table_type", "BASE TABLE", n),
                texts("is_insertable_into", "NO", n),
                texts("is_typed", "NO", n),
            ]),
            "information_schema_columns" => {
                let cols: Vec<(&str, i64, &str, SqlType)> =
                    t.iter().flat_map(|r| r.columns.iter().enumerate().map(move |(i, (c, ty))| (r.name.as_str(), i as i64 + 1, c.as_str(), *ty))).collect();
                let k = cols.len();
                let precision = |ty: SqlType| match ty {
                    SqlType::Int64 => Some(64i64),
                    SqlType::Float64 => Some(53),
                    _ => None,
                };
                frame(vec![
                    texts("table_catalog", super::statement::CATALOG, k),
                    texts("table_schema", super::statement::SCHEMA, k),
                    col("table_name", cols.iter().map(|c| c.0).collect::<Vec<_>>()),
                    col("column_name", cols.iter().map(|c| c.2).collect::<Vec<_>>()),
                    col("ordinal_position", cols.iter().map(|c| c.1).collect::<Vec<_>>()),
                    nulls("column_default", k),
                    texts("is_nullable", "YES", k),
                    col("data_type", cols.iter().map(|c| c.3.postgres().2).collect::<Vec<_>>()),
                    col("character_maximum_length", vec![None::<i64>; k]),
                    col("numeric_precision", cols.iter().map(|c| precision(c.3)).collect::<Vec<_>>()),
                    col("numeric_precision_radix", cols.iter().map(|c| precision(c.3).map(|_| 2i64)).collect::<Vec<_>>()),
                    col("numeric_scale", cols.iter().map(|c| (c.3 == SqlType::Int64).then_some(0i64)).collect::<Vec<_>>()),
                    texts("udt_catalog", super::statement::CATALOG, k),
                    texts("udt_schema", "pg_catalog", k),
                    col("udt_name", cols.iter().map(|c| c.3.postgres().1).collect::<Vec<_>>()),
                    texts("is_updatable", "NO", k),
                ])
            }
            "information_schema_views" => empty(&[("table_catalog", 't'), ("table_schema", 't'), ("table_name", 't'), ("view_definition", 't')]),
            _ => return None,
        })
    }

    /// A CASE over table oids giving each table's description (`obj_description`).
    fn describe_case(&self, oid: &Expr) -> String {
        let whens: String = self.tables.iter().map(|t| format!(" WHEN {} THEN '{}'", t.oid, t.description.replace('\'', "''"))).collect();
        format!("CASE {oid}{whens} ELSE NULL END")
    }
}

/// Rewrites a query that reads system tables so polars' context can run it (see the module's
/// text).
pub fn rewrite(query: &mut Query, system: &System) {
    let _ = VisitMut::visit(query, &mut Rewriter { system });
}

struct Rewriter<'a> {
    system: &'a System,
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(text).ok()?.parse_expr().ok()
}

fn null() -> Expr {
    Expr::Value(Value::Null.into())
}

fn text(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.into()).into())
}

/// The unqualified, lower-case name of a function or type.
fn last_name(name: &sqlparser::ast::ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => id.value.to_lowercase(),
        _ => String::new(),
    }
}

/// The first argument of a call, if it is a plain expression.
fn first_arg(args: &FunctionArguments) -> Option<&Expr> {
    match args {
        FunctionArguments::List(list) => match list.args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

/// `'16384'`: a quoted number, as psql writes oids.
fn quoted_number(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let replacement = match expr {
            Expr::Function(f) => {
                let name = last_name(&f.name);
                match name.as_str() {
                    "pg_table_is_visible"
                    | "pg_type_is_visible"
                    | "pg_function_is_visible"
                    | "has_table_privilege"
                    | "has_schema_privilege"
                    | "has_database_privilege"
                    | "has_column_privilege"
                    | "has_any_column_privilege"
                    | "pg_has_role" => Some(Expr::Value(Value::Boolean(true).into())),
                    "pg_get_userbyid" => Some(text(OWNER_NAME)),
                    "pg_encoding_to_char" => Some(text("UTF8")),
                    "current_database" => Some(text(super::statement::CATALOG)),
                    "current_schema" => Some(text(super::statement::SCHEMA)),
                    "pg_relation_size" | "pg_total_relation_size" | "pg_table_size" | "pg_indexes_size" => {
                        Some(Expr::Value(Value::Number("0".into(), false).into()))
                    }
                    "quote_ident" => first_arg(&f.args).cloned(),
                    "format_type" => first_arg(&f.args).and_then(|a| {
                        let whens: String = SqlType::ALL.iter().map(|t| format!(" WHEN {} THEN '{}'", t.postgres().0, t.postgres().2)).collect();
                        parse_expr(&format!("CASE {a}{whens} ELSE NULL END"))
                    }),
                    "obj_description" => first_arg(&f.args).and_then(|a| parse_expr(&self.system.describe_case(a))),
                    n if n.starts_with("pg_") || n.ends_with("_description") || n == "array_to_string" => Some(null()),
                    _ => None,
                }
            }
            Expr::Cast { expr: inner, data_type, .. } => {
                let drop = match data_type {
                    SqlDataType::Regclass => true,
                    SqlDataType::Custom(name, _) => {
                        matches!(last_name(name).as_str(), "regclass" | "regtype" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "oid")
                    }
                    _ => false,
                };
                if let (false, SqlDataType::Custom(name, _)) = (drop, &*data_type) {
                    // `::pg_catalog.text` and `::name`: text.
                    if matches!(last_name(name).as_str(), "text" | "name" | "varchar") {
                        *data_type = SqlDataType::Text;
                    }
                }
                drop.then(|| (**inner).clone())
            }
            Expr::Collate { expr: inner, .. } => Some((**inner).clone()),
            // `pg_catalog.pg_class.relname`: `pg_class.relname`.
            Expr::CompoundIdentifier(ids) if ids.len() == 3 && ids[0].value.eq_ignore_ascii_case("pg_catalog") => {
                Some(Expr::CompoundIdentifier(ids[1..].to_vec()))
            }
            // `x = ANY (ARRAY['r', 'p'])`: `x IN ('r', 'p')`.
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } => match right.as_ref() {
                Expr::Array(a) => Some(Expr::InList { expr: left.clone(), list: a.elem.clone(), negated: false }),
                _ => None,
            },
            Expr::BinaryOp { left, op, right } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                    let mapped = match parts.last().map(String::as_str) {
                        Some("~") => Some(BinaryOperator::PGRegexMatch),
                        Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                        Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                        Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                        Some("=") => Some(BinaryOperator::Eq),
                        Some("<>") => Some(BinaryOperator::NotEq),
                        _ => None,
                    };
                    if let Some(m) = mapped {
                        *op = m;
                    }
                }
                if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                    for side in [left, right] {
                        if let Some(n) = quoted_number(side) {
                            **side = Expr::Value(Value::Number(n.to_string(), false).into());
                        }
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(r) = replacement {
            *expr = r;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            // `JOIN t ON (a = b)`: polars takes the condition without the parentheses.
            for join in select.from.iter_mut().flat_map(|f| f.joins.iter_mut()) {
                use sqlparser::ast::{JoinConstraint, JoinOperator as J};
                let constraint = match &mut join.join_operator {
                    J::Join(c) | J::Inner(c) | J::Left(c) | J::LeftOuter(c) | J::Right(c) | J::RightOuter(c) | J::FullOuter(c) => c,
                    _ => continue,
                };
                if let JoinConstraint::On(on @ Expr::Nested(_)) = constraint {
                    if let Expr::Nested(inner) = on {
                        *on = (**inner).clone();
                    }
                }
            }
            for (i, item) in select.projection.iter_mut().enumerate() {
                match item {
                    // A scalar subquery (a default, a collation: none here) is NULL.
                    SelectItem::UnnamedExpr(Expr::Subquery(_)) => {
                        *item = SelectItem::ExprWithAlias { expr: null(), alias: Ident::with_quote('"', format!("column{}", i + 1)) };
                    }
                    SelectItem::ExprWithAlias { expr: e @ Expr::Subquery(_), .. } => *e = null(),
                    // A call keeps its name (Postgres names the column after the function)
                    // when the rewrite replaces it.
                    SelectItem::UnnamedExpr(Expr::Function(f)) => {
                        let alias = Ident::with_quote('"', last_name(&f.name));
                        let expr = Expr::Function(f.clone());
                        *item = SelectItem::ExprWithAlias { expr, alias };
                    }
                    // Other unnamed values (`''`, a CASE) get names of their own, as Postgres
                    // names them apart by place (polars would name them alike).
                    SelectItem::UnnamedExpr(e) if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {
                        let expr = e.clone();
                        *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', format!("column{}", i + 1)) };
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The answer to a catalog query polars cannot run: no rows, one text column per item of the
/// select list, named as Postgres would name it.
pub fn empty_answer(query: &Query) -> DataFrame {
    let mut body = query.body.as_ref();
    while let SetExpr::SetOperation { left, .. } = body {
        body = left;
    }
    let names: Vec<String> = match body {
        SetExpr::Select(select) => select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                SelectItem::UnnamedExpr(e) => match e {
                    Expr::Identifier(id) => id.value.clone(),
                    Expr::CompoundIdentifier(ids) => ids.last().map_or("?column?".into(), |i| i.value.clone()),
                    Expr::Function(f) => last_name(&f.name),
                    _ => "?column?".into(),
                },
                _ => "?column?".into(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    frame(
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| if seen.insert(n.clone()) { n } else { format!("{n}_{i}") })
            .map(|n| col(&n, Vec::<Option<String>>::new()))
            .collect(),
    )
}
