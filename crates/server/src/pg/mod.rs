//! The Postgres wire protocol (`pgwire`) over the SQL layer (`cx_sql`): psql, psycopg,
//! SQLAlchemy, DBeaver, Tableau, Power BI, Metabase and Superset connect as to Postgres.
//!
//! - Authentication: the password is a cxlake key (`cxlake keys add`), the user name is free;
//!   the key's role decides the catalog (`responses` for agency and admin roles only) and the
//!   counts (the public role's are perturbed). Without a keys file every connection is a local
//!   admin and no password is asked (the CLI allows that on loopback only, as for HTTP).
//! - Simple and extended query protocols; results in text or binary as the client asks.
//! - Session statements are answered here, not by the SQL layer: `SET`, `SHOW`, `RESET`,
//!   `BEGIN`/`COMMIT`/`ROLLBACK`, `DISCARD ALL`, `DEALLOCATE`.
//! - Every other statement goes to `cx_sql::execute` (one read-only query over the caller's
//!   catalog); its errors carry their SQLSTATE.

mod cursor;
mod guard;

use super::auth::Principal;
use super::keys::KeyStore;
use super::metrics::Protocol;
use async_trait::async_trait;
use cursor::{CursorStatement, Cursors};
use cx_analytics::Analytics;
use cx_sql::statement::Param;
use cx_sql::values::{Cell, Field, SqlType};
use futures::{stream, Sink};
use pgwire::api::auth::{finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, DefaultServerParameterProvider, StartupHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;

/// What every connection shares.
pub struct PgService {
    pub analytics: Analytics,
    /// The result tables (benchmarks, trends, ...), planned once over the GraphQL schema.
    pub results: Option<Arc<crate::sql_tables::ResultCatalog>>,
    /// The keys file; none: every connection is a local admin.
    pub keys: Option<Arc<KeyStore>>,
    pub limits: cx_sql::Limits,
    /// Shared with the HTTP server's `/metrics`.
    pub metrics: Arc<super::metrics::Metrics>,
}

/// Accepts connections on `listener` until the process ends, each served on its own task.
pub async fn serve(listener: tokio::net::TcpListener, service: Arc<PgService>) -> std::io::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        let handlers = Handlers { backend: Arc::new(Backend { service: service.clone() }), startup: Arc::new(Startup { service: service.clone() }) };
        tokio::spawn(async move {
            // pgwire serves one end of a socket pair; the guard checks what the client sends.
            let (ours, theirs) = match tokio::net::UnixStream::pair() {
                Ok(pair) => pair,
                Err(e) => return tracing::warn!(%peer, error = %e, "no socket pair for a Postgres connection"),
            };
            let served = tokio::spawn(pgwire::tokio::process_socket_unix(theirs, handlers));
            if let Err(e) = guard::pump(socket, ours).await {
                tracing::debug!(%peer, error = %e, "a Postgres connection ended with an error");
            }
            let _ = served.await;
        });
    }
}

struct Handlers {
    backend: Arc<Backend>,
    startup: Arc<Startup>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

/// The server parameters a client reads at startup.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = "16.6 (cxlake)".into();
    p.is_superuser = false;
    p
}

/// Startup: a cleartext password checked against the keys file (or, without one, none asked).
struct Startup {
    service: Arc<PgService>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, key) = (rand_pid(), pgwire::messages::startup::SecretKey::I32(rand_pid()));
                client.set_pid_and_secret_key(pid, key);
                match self.service.keys {
                    None => {
                        client.session_extensions().insert(Principal::local_admin());
                        self.service.metrics.record_sign_in(Protocol::Postgres, false);
                        finish_authentication(client, &parameters()).await?;
                    }
                    Some(_) => {
                        client.send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword)).await?;
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let user = client.metadata().get(pgwire::api::METADATA_USER).cloned().unwrap_or_default();
                let password = pwd.into_password()?.password;
                let verified = self.service.keys.as_ref().map(|k| Principal::of_key(k, &password));
                match verified {
                    Some(Ok(principal)) => {
                        let (key, role) = (principal.key_id.clone().unwrap_or_default(), principal.role.label());
                        tracing::info!(target: "cxlake::access", user = %user, key = %key, role = %role, "a Postgres client signed in");
                        client.session_extensions().insert(principal);
                        self.service.metrics.record_sign_in(Protocol::Postgres, false);
                        finish_authentication(client, &parameters()).await?;
                    }
                    _ => {
                        tracing::warn!(target: "cxlake::access", user = %user, "a Postgres client presented a key that is not valid");
                        self.service.metrics.record_sign_in(Protocol::Postgres, true);
                        return Err(PgWireError::InvalidPassword(user));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn rand_pid() -> i32 {
    (uuid::Uuid::new_v4().as_u128() as i32).abs()
}

struct Backend {
    service: Arc<PgService>,
}

fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message.into())))
}

fn sql_error(e: cx_sql::SqlError) -> PgWireError {
    user_error(e.sqlstate(), e.to_string())
}

/// The caller of a connection, as the SQL layer sees them.
async fn caller<C: ClientInfo>(service: &PgService, client: &C) -> PgWireResult<cx_sql::Caller> {
    let principal = client.session_extensions().get::<Principal>().ok_or_else(|| user_error("28000", "not signed in"))?;
    super::sql_access::caller(&service.analytics, service.results.as_ref(), &principal).await.map_err(|e| sql_error(e.into()))
}

/// A statement the session answers itself, or a query for the SQL layer.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `SET`, `RESET`, `DISCARD`, `DEALLOCATE`, `BEGIN`, `COMMIT`, `ROLLBACK`: a tag.
    Session(&'static str),
    /// `SHOW name`.
    Show(String),
    /// `SELECT version()`, `current_database()`, `current_catalog`, `current_schema()`,
    /// `current_user`: what clients ask on connect (the column and its value).
    Constant(&'static str, String),
    /// `DECLARE … CURSOR`, `FETCH`, `MOVE`, `CLOSE` (or what is wrong with one).
    Cursor(Result<CursorStatement, String>),
    Query,
}

fn classify(sql: &str) -> Kind {
    let words: Vec<String> = sql.trim().trim_end_matches(';').split_whitespace().take(3).map(|w| w.to_ascii_uppercase()).collect();
    let first = words.first().map(String::as_str).unwrap_or("");
    match first {
        "SET" => Kind::Session("SET"),
        "RESET" => Kind::Session("RESET"),
        "DISCARD" => Kind::Session("DISCARD ALL"),
        "DEALLOCATE" => Kind::Session("DEALLOCATE"),
        "BEGIN" | "START" => Kind::Session("BEGIN"),
        "COMMIT" | "END" => Kind::Session("COMMIT"),
        // Savepoints (SQLAlchemy's nested transactions): nothing is written, nothing to undo.
        "ROLLBACK" if words.get(1).map(String::as_str) == Some("TO") => Kind::Session("ROLLBACK TO"),
        "ROLLBACK" | "ABORT" => Kind::Session("ROLLBACK"),
        "SAVEPOINT" => Kind::Session("SAVEPOINT"),
        "RELEASE" => Kind::Session("RELEASE"),
        "SHOW" if words.get(1).map(String::as_str) == Some("TRANSACTION") => Kind::Show("transaction_isolation".into()),
        "SHOW" => Kind::Show(sql.split_whitespace().nth(1).unwrap_or("").trim_end_matches(';').to_ascii_lowercase()),
        _ => cursor::parse(sql).map(Kind::Cursor).or_else(|| constant(sql)).unwrap_or(Kind::Query),
    }
}

/// The session functions clients select on connect, alone in a `SELECT`.
fn constant(sql: &str) -> Option<Kind> {
    let text: String = sql.trim().trim_end_matches(';').to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let asked = text.strip_prefix("select ")?.trim_start_matches("pg_catalog.");
    Some(match asked {
        "version()" => Kind::Constant("version", format!("PostgreSQL 16.6 (cxlake {})", env!("CARGO_PKG_VERSION"))),
        "current_database()" => Kind::Constant("current_database", "cxlake".into()),
        "current_catalog" => Kind::Constant("current_catalog", "cxlake".into()),
        "current_schema()" | "current_schema" => Kind::Constant("current_schema", "public".into()),
        _ => return None,
    })
}

/// The value `SHOW name` answers.
fn show(name: &str) -> PgWireResult<String> {
    Ok(match name {
        "server_version" => "16.6 (cxlake)".into(),
        "server_encoding" | "client_encoding" => "UTF8".into(),
        "datestyle" => "ISO, YMD".into(),
        "timezone" => "Etc/UTC".into(),
        "transaction_isolation" | "default_transaction_isolation" => "read committed".into(),
        "transaction_read_only" | "default_transaction_read_only" => "on".into(),
        "standard_conforming_strings" | "integer_datetimes" => "on".into(),
        "search_path" => "public".into(),
        "max_identifier_length" => "63".into(),
        other => return Err(user_error("42704", format!("unrecognized configuration parameter \"{other}\""))),
    })
}

fn pg_type(t: SqlType) -> Type {
    match t {
        SqlType::Bool => Type::BOOL,
        SqlType::Int64 => Type::INT8,
        SqlType::Float64 => Type::FLOAT8,
        SqlType::Text => Type::TEXT,
        SqlType::Date => Type::DATE,
        SqlType::Timestamp => Type::TIMESTAMP,
    }
}

fn format_of(format: Option<&Format>, i: usize) -> FieldFormat {
    match format {
        Some(Format::Individual(v)) => v.get(i).map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
        Some(f) => f.format_for(i),
        None => FieldFormat::Text,
    }
}

fn field_infos(fields: &[Field], format: Option<&Format>) -> Vec<FieldInfo> {
    fields.iter().enumerate().map(|(i, f)| FieldInfo::new(f.name.clone(), None, None, pg_type(f.ty), format_of(format, i))).collect()
}

/// An answer as a result set in the formats asked for.
fn result_set(mut answer: cx_sql::Answer, format: Option<&Format>) -> PgWireResult<QueryResponse> {
    // One chunk per column: rows are read cell by cell, and a cell of a column of many chunks
    // (a frame read from many files) is found by a search over its chunks.
    answer.frame.rechunk_mut_par();
    let fields = cx_sql::values::fields(answer.frame.schema());
    let infos = Arc::new(field_infos(&fields, format));
    let mut encoder = DataRowEncoder::new(infos.clone());
    let mut rows: Vec<PgWireResult<DataRow>> = Vec::with_capacity(answer.frame.height());
    for i in 0..answer.frame.height() {
        for c in cx_sql::values::row(&answer.frame, i) {
            match c {
                Cell::Null => encoder.encode_field(&None::<i8>)?,
                Cell::Bool(b) => encoder.encode_field(&b)?,
                Cell::Int64(x) => encoder.encode_field(&x)?,
                Cell::Float64(x) => encoder.encode_field(&x)?,
                Cell::Text(s) => encoder.encode_field(&s)?,
                Cell::Date(d) => encoder.encode_field(&d)?,
                Cell::Timestamp(t) => encoder.encode_field(&t)?,
            }
        }
        rows.push(Ok(encoder.take_row()));
    }
    Ok(QueryResponse::new(infos, stream::iter(rows)))
}

/// A result of one text column and one row.
fn one_text(name: String, value: String, format: Option<&Format>) -> PgWireResult<QueryResponse> {
    let infos = Arc::new(vec![FieldInfo::new(name, None, None, Type::TEXT, format_of(format, 0))]);
    let mut encoder = DataRowEncoder::new(infos.clone());
    encoder.encode_field(&value)?;
    Ok(QueryResponse::new(infos, stream::iter(vec![Ok(encoder.take_row())])))
}

/// The session's cursors.
fn cursors<C: ClientInfo>(client: &C) -> Arc<Cursors> {
    client.session_extensions().get_or_insert_with(Cursors::default)
}

/// `sql` with `params` bound (unchanged without any).
fn bound(sql: &str, params: &[Param]) -> PgWireResult<String> {
    if params.is_empty() {
        return Ok(sql.to_string());
    }
    cx_sql::statement::bind(sql, params).map_err(sql_error)
}

/// What answering a statement noted: a warning to send before the response (the answer was
/// cut at the row limit) and the rows it holds.
#[derive(Default)]
struct Noted {
    warning: Option<String>,
    rows: usize,
}

/// One statement's response, `params` bound to its placeholders, with its warning; counted in
/// the metrics, a refused read logged as an access denial.
async fn respond<C: ClientInfo>(
    service: &PgService,
    client: &C,
    sql: &str,
    params: &[Param],
    format: Option<&Format>,
) -> PgWireResult<(Response, Option<String>)> {
    let started = std::time::Instant::now();
    let mut noted = Noted::default();
    let result = answer(service, client, sql, params, format, &mut noted).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(PgWireError::UserError(e)) if e.code == "42501" => {
            let principal = client.session_extensions().get::<Principal>();
            let role = principal.as_ref().map_or("none".to_string(), |p| p.role.label());
            tracing::warn!(target: "cxlake::access", protocol = "postgres", role = %role, reason = %e.message, "a SQL read was refused");
            "denied"
        }
        Err(_) => "error",
    };
    service.metrics.record_sql(Protocol::Postgres, outcome, noted.rows, started.elapsed().as_secs_f64());
    Ok((result?, noted.warning))
}

async fn answer<C: ClientInfo>(
    service: &PgService,
    client: &C,
    sql: &str,
    params: &[Param],
    format: Option<&Format>,
    noted: &mut Noted,
) -> PgWireResult<Response> {
    match classify(sql) {
        Kind::Session("BEGIN") => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
        Kind::Session(tag @ ("COMMIT" | "ROLLBACK")) => Ok(Response::TransactionEnd(Tag::new(tag))),
        Kind::Session("ROLLBACK TO") => Ok(Response::Execution(Tag::new("ROLLBACK"))),
        Kind::Session(tag) => Ok(Response::Execution(Tag::new(tag))),
        Kind::Show(name) => {
            let value = show(&name)?;
            let mut r = one_text(name, value, format)?;
            r.set_command_tag("SHOW");
            Ok(Response::Query(r))
        }
        Kind::Constant(name, value) => Ok(Response::Query(one_text(name.to_string(), value, format)?)),
        Kind::Cursor(Err(e)) => Err(user_error("0A000", e)),
        Kind::Cursor(Ok(CursorStatement::Declare { name, query })) => {
            let caller = caller(service, client).await?;
            let answer = cx_sql::execute(&caller, &bound(&query, params)?, service.limits).await.map_err(sql_error)?;
            noted.warning = cut_note(&answer, service.limits);
            cursors(client).open(name, answer).map_err(|e| user_error("42P03", e))?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        Kind::Cursor(Ok(CursorStatement::Fetch { name, count, moving })) => {
            let page = cursors(client).fetch(&name, count).map_err(|e| user_error("34000", e))?;
            noted.rows = page.frame.height();
            if moving {
                return Ok(Response::Execution(Tag::new("MOVE").with_rows(page.frame.height())));
            }
            let mut r = result_set(page, format)?;
            r.set_command_tag("FETCH");
            Ok(Response::Query(r))
        }
        Kind::Cursor(Ok(CursorStatement::Close(name))) => {
            cursors(client).close(name.as_deref()).map_err(|e| user_error("34000", e))?;
            Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
        }
        Kind::Query => {
            let caller = caller(service, client).await?;
            let answer = cx_sql::execute(&caller, &bound(sql, params)?, service.limits).await.map_err(sql_error)?;
            noted.warning = cut_note(&answer, service.limits);
            noted.rows = answer.frame.height();
            Ok(Response::Query(result_set(answer, format)?))
        }
    }
}

/// What a client is told when an answer was cut at the row limit (also logged).
fn cut_note(answer: &cx_sql::Answer, limits: cx_sql::Limits) -> Option<String> {
    answer.truncated.then(|| {
        tracing::info!(rows = answer.frame.height(), "a SQL answer was cut at the row limit");
        format!("the answer was cut at {} rows (the server's --sql-max-rows); narrow the query or aggregate", limits.max_rows)
    })
}

/// Sends a warning (a NoticeResponse, SQLSTATE 01000) ahead of a response.
async fn warn<C>(client: &mut C, warning: Option<String>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    if let Some(w) = warning {
        let notice = pgwire::messages::response::NoticeResponse::from(ErrorInfo::new("WARNING".into(), "01000".into(), w));
        client.send(PgWireBackendMessage::NoticeResponse(notice)).await?;
    }
    Ok(())
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Several statements in one message run one after the other; the first error ends it.
        let mut out = Vec::new();
        for sql in split(query) {
            let (response, warning) = respond(&self.service, client, &sql, &[], None).await?;
            warn(client, warning).await?;
            out.push(response);
        }
        Ok(out)
    }
}

/// The statements of a simple query message, split at semicolons outside quotes.
fn split(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None::<char>);
    for ch in text.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// A prepared statement: its text and, for a query, its result columns (planned over the
/// catalog's empty tables: nothing is computed to describe it).
#[derive(Debug, Clone)]
pub struct Prepared {
    sql: String,
    fields: Vec<Field>,
    /// How many values it takes (`$1` … `$n`).
    params: usize,
}

pub struct Parser {
    service: Arc<PgService>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let (fields, params) = match classify(sql) {
            Kind::Query => {
                let caller = caller(&self.service, client).await?;
                let params = cx_sql::statement::placeholders(sql).map_err(sql_error)?;
                (cx_sql::values::fields(&cx_sql::describe(&caller, sql).map_err(sql_error)?), params)
            }
            Kind::Show(name) => (vec![Field { name, ty: SqlType::Text }], 0),
            Kind::Constant(name, _) => (vec![Field { name: name.to_string(), ty: SqlType::Text }], 0),
            Kind::Cursor(Ok(CursorStatement::Declare { query, .. })) => (Vec::new(), cx_sql::statement::placeholders(&query).map_err(sql_error)?),
            // A fetch returns the rows of the cursor's query, declared before.
            Kind::Cursor(Ok(CursorStatement::Fetch { name, moving: false, .. })) => (cursors(client).fields(&name).unwrap_or_default(), 0),
            Kind::Session(_) | Kind::Cursor(_) => (Vec::new(), 0),
        };
        Ok(Some(Prepared { sql: sql.to_string(), fields, params }))
    }

    /// Values are taken as text unless the client declares their types.
    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(vec![Type::TEXT; stmt.params])
    }

    fn get_result_schema(&self, stmt: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(field_infos(&stmt.fields, format))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser { service: self.service.clone() })
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = (0..portal.parameter_len()).map(|i| param(portal, i)).collect::<PgWireResult<Vec<_>>>()?;
        let (response, warning) = respond(&self.service, client, &portal.statement.statement.sql, &params, Some(&portal.result_column_format)).await?;
        warn(client, warning).await?;
        Ok(response)
    }
}

/// Bound value `i` of `portal`, decoded as the type the client declared (text otherwise).
fn param(portal: &Portal<Prepared>, i: usize) -> PgWireResult<Param> {
    let ty = portal.statement.parameter_types.get(i).cloned().flatten().unwrap_or(Type::TEXT);
    let value = match ty {
        Type::INT2 => portal.parameter::<i16>(i, &ty)?.map(|v| Param::Int(v.into())),
        Type::INT4 => portal.parameter::<i32>(i, &ty)?.map(|v| Param::Int(v.into())),
        Type::INT8 => portal.parameter::<i64>(i, &ty)?.map(Param::Int),
        Type::FLOAT4 => portal.parameter::<f32>(i, &ty)?.map(|v| Param::Float(v.into())),
        Type::FLOAT8 => portal.parameter::<f64>(i, &ty)?.map(Param::Float),
        Type::BOOL => portal.parameter::<bool>(i, &ty)?.map(Param::Bool),
        // Text, and text-format values of other types (a date, a numeric): the bytes as sent,
        // bound as a quoted literal.
        _ if portal.parameter_format.is_text(i) || matches!(ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN) => portal
            .parameters
            .get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8(b.to_vec()).map(Param::Text).map_err(|_| user_error("22021", format!("${}: not UTF-8 text", i + 1))))
            .transpose()?,
        other => return Err(user_error("0A000", format!("${}: a binary {other} value is not supported; send it as text", i + 1))),
    };
    Ok(value.unwrap_or(Param::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_quotes() {
        assert_eq!(split("SET a = 'x;y'; SELECT \";\" FROM t;  ; "), vec!["SET a = 'x;y'", " SELECT \";\" FROM t"]);
        assert_eq!(classify("  begin;"), Kind::Session("BEGIN"));
        assert_eq!(classify("show TimeZone"), Kind::Show("timezone".into()));
        assert_eq!(classify("SELECT 1"), Kind::Query);
        assert_eq!(classify("select  pg_catalog.version() ;"), Kind::Constant("version", format!("PostgreSQL 16.6 (cxlake {})", env!("CARGO_PKG_VERSION"))));
        assert_eq!(classify("SELECT current_catalog"), Kind::Constant("current_catalog", "cxlake".into()));
        assert_eq!(classify("SELECT current_database() FROM services"), Kind::Query);
    }
}
