//! Arrow Flight SQL over the SQL layer (`cx_sql`): ADBC drivers (Python, R, Go), the Flight
//! SQL JDBC driver (DBeaver, Tableau) and Grafana's Flight SQL source connect here.
//!
//! - Authentication: every call carries `authorization: Bearer <cxlake key>`. A client that
//!   signs in with user name and password (ADBC's `username`/`password`) gets that header back
//!   from the handshake, the password being the key. Without a keys file every call is a local
//!   admin's (the CLI allows that on loopback only, as for HTTP and Postgres).
//! - Stateless: a statement's handle and ticket are its SQL text (parameters bound into it as
//!   literals when a client sends them), so any replica can answer any call.
//! - `GetFlightInfo` plans a statement over empty tables (its schema, nothing computed);
//!   `DoGet` runs it and streams Arrow batches of the types `cx_sql::values::arrow_type`
//!   fixes. An answer cut at the row limit says so in its schema's metadata
//!   (`cxlake.truncated`).
//! - Catalog calls: one catalog (`cxlake`), one schema (`public`), the caller's tables with
//!   their Arrow schemas (`GetTables` with `include_schema`), table type `TABLE`.

use super::auth::Principal;
use super::keys::KeyStore;
use super::metrics::{Metrics, Protocol};
use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, SqlSupportedTransaction, TicketStatementQuery,
};
use arrow_flight::{Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket};
use base64::Engine;
use cx_analytics::Analytics;
use cx_sql::statement::{self, Param, CATALOG, SCHEMA};
use cx_sql::SqlError;
use futures::{stream, Stream, TryStreamExt};
use prost::Message;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use tonic::{Request, Response, Status, Streaming};

/// Rows per Arrow batch of an answer.
const BATCH_ROWS: usize = 65_536;

/// What every call shares.
pub struct FlightSqlServer {
    pub analytics: Analytics,
    /// The result tables (benchmarks, trends, ...), planned once over the GraphQL schema.
    pub results: Option<Arc<crate::sql_tables::ResultCatalog>>,
    /// The keys file; none: every call is a local admin's.
    pub keys: Option<Arc<KeyStore>>,
    pub limits: cx_sql::Limits,
    pub metrics: Arc<Metrics>,
}

/// TLS for the listener: PEM certificate chain and private key.
pub struct Tls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Serves Flight SQL on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, service: FlightSqlServer, tls: Option<Tls>) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = tls {
        // rustls is built with two providers in this tree (aws-lc, and ring through other
        // crates): name the one to use.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let identity = tonic::transport::Identity::from_pem(t.cert, t.key);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // Parameter batches are small; 16 MB leaves room for any a client sends.
    let svc = FlightServiceServer::new(service).max_decoding_message_size(16 << 20);
    builder.add_service(svc).serve_with_incoming(incoming).await
}

type DoGetStream = <FlightSqlServer as FlightService>::DoGetStream;

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "cxlake");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    // No transactions: a client's autocommit stays on.
    b.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build().expect("the server's SQL info")
});

/// ADBC's Go client sends `Basic` credentials without `=` padding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn status(e: SqlError) -> Status {
    let message = format!("{e} (SQLSTATE {})", e.sqlstate());
    match e {
        SqlError::Invalid(_) | SqlError::Query { .. } => Status::invalid_argument(message),
        SqlError::UnknownTable { .. } => Status::not_found(message),
        SqlError::Forbidden { .. } => Status::permission_denied(message),
        SqlError::Timeout(_) => Status::deadline_exceeded(message),
        SqlError::Analytics(cx_analytics::AnalyticsError::Busy { .. }) => Status::resource_exhausted(message),
        SqlError::Analytics(_) => Status::internal(message),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// A stream of `batches` under `schema` (sent even when there are no batches).
fn batches_stream(schema: SchemaRef, batches: Vec<RecordBatch>) -> DoGetStream {
    let input = stream::iter(batches.into_iter().map(Ok::<_, FlightError>));
    Box::pin(FlightDataEncoderBuilder::new().with_schema(schema).build(input).map_err(Status::from))
}

/// The answer of a catalog call: the one batch its builder made, under the builder's schema.
fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> Result<Response<DoGetStream>, Status> {
    Ok(Response::new(batches_stream(schema, vec![batch?])))
}

/// A FlightInfo whose one endpoint is redeemed on the same connection with `ticket`.
fn info(ticket: Vec<u8>, schema: &Schema, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(internal)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A ticket that runs `sql`.
fn statement_ticket(sql: &str) -> Vec<u8> {
    TicketStatementQuery { statement_handle: sql.as_bytes().to_vec().into() }.as_any().encode_to_vec()
}

fn handle_text(handle: &[u8]) -> Result<String, Status> {
    String::from_utf8(handle.to_vec()).map_err(|_| Status::invalid_argument("the statement handle is not a statement of this server"))
}

impl FlightSqlServer {
    /// The principal of a call: its bearer key's role (a local admin without a keys file).
    fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let Some(keys) = &self.keys else { return Ok(Principal::local_admin()) };
        let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let key = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "));
        match key.map(|k| Principal::of_key(keys, k.trim())) {
            Some(Ok(principal)) => Ok(principal),
            Some(Err(_)) => Err(self.refused("a Flight SQL client presented a key that is not valid")),
            None => Err(self.refused("a Flight SQL call came without `authorization: Bearer <key>`")),
        }
    }

    fn refused(&self, why: &str) -> Status {
        tracing::warn!(target: "cxlake::access", protocol = "flight_sql", "{why}");
        self.metrics.record_sign_in(Protocol::FlightSql, true);
        Status::unauthenticated(format!("{why}; sign in with a cxlake key (the password, or the bearer token)"))
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<cx_sql::Caller, Status> {
        let principal = self.principal(request)?;
        super::sql_access::caller(&self.analytics, self.results.as_ref(), &principal).await.map_err(|e| status(e.into()))
    }

    /// The Arrow schema `sql` answers with, planned without computing anything.
    async fn schema_of<T>(&self, sql: &str, request: &Request<T>) -> Result<SchemaRef, Status> {
        let caller = self.caller(request).await?;
        let planned = cx_sql::describe(&caller, sql).map_err(|e| self.counted_error(e, 0.0))?;
        Ok(cx_sql::values::arrow_schema(&cx_sql::values::fields(&planned)))
    }

    /// Counts a failed statement (a refused read logged as an access denial).
    fn counted_error(&self, e: SqlError, seconds: f64) -> Status {
        let outcome = if matches!(e, SqlError::Forbidden { .. }) {
            tracing::warn!(target: "cxlake::access", protocol = "flight_sql", reason = %e, "a SQL read was refused");
            "denied"
        } else {
            "error"
        };
        self.metrics.record_sql(Protocol::FlightSql, outcome, 0, seconds);
        status(e)
    }

    /// Runs `sql` and streams its answer.
    async fn run<T>(&self, sql: &str, request: &Request<T>) -> Result<Response<DoGetStream>, Status> {
        let started = std::time::Instant::now();
        let caller = self.caller(request).await?;
        let answer = match cx_sql::execute(&caller, sql, self.limits).await {
            Ok(a) => a,
            Err(e) => return Err(self.counted_error(e, started.elapsed().as_secs_f64())),
        };
        let fields = cx_sql::values::fields(answer.frame.schema());
        let mut schema = Schema::clone(&cx_sql::values::arrow_schema(&fields));
        if answer.truncated {
            tracing::info!(rows = answer.frame.height(), "a SQL answer was cut at the row limit");
            schema.metadata.insert("cxlake.truncated".into(), format!("true: cut at {} rows (the server's --sql-max-rows)", self.limits.max_rows));
        }
        let schema = Arc::new(schema);
        let rows = answer.frame.height();
        let frame = answer.frame;
        let batches = tokio::task::spawn_blocking(move || -> Result<Vec<RecordBatch>, String> {
            let mut out = Vec::with_capacity(rows.div_ceil(BATCH_ROWS));
            let mut at = 0;
            while at < rows {
                let part = frame.slice(at as i64, BATCH_ROWS);
                at += part.height();
                out.push(cx_sql::values::record_batch(&part).map_err(|e| e.to_string())?);
            }
            Ok(out)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        let batches = batches.into_iter().map(|b| b.with_schema(schema.clone()).map_err(internal)).collect::<Result<Vec<_>, _>>()?;
        self.metrics.record_sql(Protocol::FlightSql, "ok", rows, started.elapsed().as_secs_f64());
        Ok(Response::new(batches_stream(schema, batches)))
    }
}

/// The values of a parameter batch's one row, in column order.
fn parameters(batch: &RecordBatch) -> Result<Vec<Param>, Status> {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType as A, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type};
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!("{} rows of parameters: bind one row at a time", batch.num_rows())));
    }
    let schema = batch.schema();
    batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| {
            if a.is_null(0) {
                return Ok(Param::Null);
            }
            Ok(match a.data_type() {
                A::Boolean => Param::Bool(a.as_boolean().value(0)),
                A::Int8 => Param::Int(a.as_primitive::<Int8Type>().value(0).into()),
                A::Int16 => Param::Int(a.as_primitive::<Int16Type>().value(0).into()),
                A::Int32 => Param::Int(a.as_primitive::<Int32Type>().value(0).into()),
                A::Int64 => Param::Int(a.as_primitive::<Int64Type>().value(0)),
                A::Float32 => Param::Float(a.as_primitive::<Float32Type>().value(0).into()),
                A::Float64 => Param::Float(a.as_primitive::<Float64Type>().value(0)),
                A::Utf8 => Param::Text(a.as_string::<i32>().value(0).to_string()),
                A::LargeUtf8 => Param::Text(a.as_string::<i64>().value(0).to_string()),
                other => return Err(Status::invalid_argument(format!("parameter {}: a {other} value is not supported; send text or a number", f.name()))),
            })
        })
        .collect()
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlServer {
    type FlightService = FlightSqlServer;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        // Basic credentials whose password is a key: the key becomes the bearer token.
        let basic = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|s| s.strip_prefix("Basic "));
        let key = match basic {
            Some(b) => {
                let decoded = BASE64.decode(b.trim()).map_err(|_| Status::invalid_argument("the Basic credentials are not base64"))?;
                let text = String::from_utf8(decoded).map_err(|_| Status::invalid_argument("the Basic credentials are not UTF-8"))?;
                text.split_once(':').map(|(_, password)| password.to_string()).unwrap_or_default()
            }
            None => String::new(),
        };
        if let Some(keys) = &self.keys {
            match Principal::of_key(keys, &key) {
                Ok(p) => tracing::info!(target: "cxlake::access", key = %p.key_id.unwrap_or_default(), role = %p.role.label(), "a Flight SQL client signed in"),
                Err(_) => return Err(self.refused("a Flight SQL client presented a key that is not valid")),
            }
        }
        self.metrics.record_sign_in(Protocol::FlightSql, false);
        let out = stream::iter(vec![Ok(HandshakeResponse { protocol_version: 0, payload: Default::default() })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> = Response::new(Box::pin(out));
        let token = format!("Bearer {}", if self.keys.is_some() { key.as_str() } else { "local" });
        response.metadata_mut().insert("authorization", token.parse().map_err(|_| Status::invalid_argument("the key is not a header value"))?);
        Ok(response)
    }

    async fn get_flight_info_statement(&self, query: CommandStatementQuery, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let schema = self.schema_of(&query.query, &request).await?;
        info(statement_ticket(&query.query), &schema, request.into_inner())
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let sql = handle_text(&ticket.statement_handle)?;
        self.run(&sql, &request).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = handle_text(&cmd.prepared_statement_handle)?;
        let schema = self.schema_of(&sql, &request).await?;
        info(statement_ticket(&sql), &schema, request.into_inner())
    }

    async fn do_get_prepared_statement(&self, cmd: CommandPreparedStatementQuery, request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let sql = handle_text(&cmd.prepared_statement_handle)?;
        self.run(&sql, &request).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let schema = self.schema_of(&query.query, &request).await?;
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &arrow::ipc::writer::IpcWriteOptions::default()).try_into().map_err(internal)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into_bytes().into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(&self, _query: ActionClosePreparedStatementRequest, _request: Request<Action>) -> Result<(), Status> {
        // Handles are the statements themselves: nothing is kept to close.
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.principal(&request)?;
        let sql = handle_text(&query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(request.into_inner().map_err(FlightError::from)).try_collect().await?;
        let params = match batches.as_slice() {
            [] => Vec::new(),
            [one] => parameters(one)?,
            more => return Err(Status::invalid_argument(format!("{} batches of parameters: bind one row at a time", more.len()))),
        };
        // The new handle is the statement with its values bound as literals (never as SQL).
        let bound = statement::bind(&sql, &params).map_err(status)?;
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(bound.into_bytes().into()) })
    }

    async fn get_flight_info_sql_info(&self, query: CommandGetSqlInfo, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let ticket = query.as_any().encode_to_vec();
        info(ticket, &query.into_builder(&SQL_INFO).schema(), request.into_inner())
    }

    async fn do_get_sql_info(&self, query: CommandGetSqlInfo, _request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let b = query.into_builder(&SQL_INFO);
        one_batch(b.schema(), b.build())
    }

    async fn get_flight_info_catalogs(&self, query: CommandGetCatalogs, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let ticket = query.as_any().encode_to_vec();
        info(ticket, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_catalogs(&self, query: CommandGetCatalogs, request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG);
        one_batch(b.schema(), b.build())
    }

    async fn get_flight_info_schemas(&self, query: CommandGetDbSchemas, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let ticket = query.as_any().encode_to_vec();
        info(ticket, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_schemas(&self, query: CommandGetDbSchemas, request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        one_batch(b.schema(), b.build())
    }

    async fn get_flight_info_tables(&self, query: CommandGetTables, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let ticket = query.as_any().encode_to_vec();
        info(ticket, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_tables(&self, query: CommandGetTables, request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let mut b = query.into_builder();
        for t in cx_sql::Catalog::for_caller(&caller).tables {
            let schema = cx_sql::values::arrow_schema(&cx_sql::values::fields(&t.schema()));
            b.append(CATALOG, SCHEMA, &t.name, "TABLE", &schema)?;
        }
        one_batch(b.schema(), b.build())
    }

    async fn get_flight_info_table_types(&self, query: CommandGetTableTypes, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let ticket = query.as_any().encode_to_vec();
        info(ticket, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_table_types(&self, query: CommandGetTableTypes, _request: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        b.append("TABLE");
        one_batch(b.schema(), b.build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
