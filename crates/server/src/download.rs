//! Results as tables: a GraphQL response whose single top-level field is a list becomes one
//! flat table (nested objects flattened to `parent_child` columns, one nested list of objects
//! exploded into rows, lists of scalars joined) encoded as an Arrow IPC stream, CSV or Parquet,
//! for BI tools and notebooks that pull tables, not JSON.
//!
//! The table's schema is fixed by the query and the schema's output types (`OutputTypes`,
//! `TablePlan`), never guessed from the rows: Int is Int64, Float Float64, Boolean Boolean,
//! strings, IDs, enums, dates and joined lists Utf8; a column is nullable where its field (or
//! an object above it) is, and the columns of an exploded list always are. An empty result has
//! the same columns with no rows.

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::Value as GqlValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A table encoding a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Arrow,
    Csv,
    Parquet,
}

/// The media types an `Accept` header names, in its order, without their parameters.
pub(crate) fn media_types(accept: &str) -> impl Iterator<Item = &str> {
    accept.split(',').map(|part| part.split(';').next().unwrap_or("").trim())
}

impl TableFormat {
    pub const ARROW_STREAM: &'static str = "application/vnd.apache.arrow.stream";
    pub const PARQUET: &'static str = "application/vnd.apache.parquet";

    /// The format a `format=` parameter names (`arrow`, `csv`, `parquet`).
    pub fn from_param(p: &str) -> Option<TableFormat> {
        match p.to_ascii_lowercase().as_str() {
            "arrow" => Some(TableFormat::Arrow),
            "csv" => Some(TableFormat::Csv),
            "parquet" => Some(TableFormat::Parquet),
            _ => None,
        }
    }

    /// The first table media type an `Accept` header lists, if any (JSON otherwise).
    pub fn from_accept(accept: &str) -> Option<TableFormat> {
        media_types(accept).find_map(|t| match t {
            Self::ARROW_STREAM => Some(TableFormat::Arrow),
            "text/csv" => Some(TableFormat::Csv),
            Self::PARQUET => Some(TableFormat::Parquet),
            _ => None,
        })
    }

    /// File name extension of a download.
    pub fn extension(self) -> &'static str {
        match self {
            TableFormat::Arrow => "arrows",
            TableFormat::Csv => "csv",
            TableFormat::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            TableFormat::Arrow => Self::ARROW_STREAM,
            TableFormat::Csv => "text/csv; charset=utf-8",
            TableFormat::Parquet => Self::PARQUET,
        }
    }
}

/// The output types of a GraphQL schema, from its introspection: each object type's fields
/// and their types. A table's columns and their Arrow types come from here and the query's
/// selection, never from the rows (an empty or all-null result has the same schema).
#[derive(Debug, Clone, Default)]
pub struct OutputTypes {
    query: String,
    objects: HashMap<String, HashMap<String, TypeRef>>,
}

/// A field's type: named (with its kind), a list of, or non-null.
#[derive(Debug, Clone, PartialEq)]
enum TypeRef {
    NonNull(Box<TypeRef>),
    List(Box<TypeRef>),
    Named { name: String, object: bool },
}

impl TypeRef {
    fn from_introspection(v: &Value) -> Result<TypeRef, String> {
        let of = || v.get("ofType").ok_or_else(|| format!("no ofType in {v}")).and_then(TypeRef::from_introspection);
        match v.get("kind").and_then(Value::as_str) {
            Some("NON_NULL") => Ok(TypeRef::NonNull(Box::new(of()?))),
            Some("LIST") => Ok(TypeRef::List(Box::new(of()?))),
            Some(kind) => Ok(TypeRef::Named {
                name: v.get("name").and_then(Value::as_str).ok_or_else(|| format!("no name in {v}"))?.to_string(),
                object: matches!(kind, "OBJECT" | "INTERFACE" | "UNION"),
            }),
            None => Err(format!("no kind in {v}")),
        }
    }

    /// Whether the value may be null, and the type without the non-null wrapper.
    fn nullable(&self) -> (bool, &TypeRef) {
        match self {
            TypeRef::NonNull(inner) => (false, inner),
            other => (true, other),
        }
    }
}

const INTROSPECTION: &str = "{ __schema { queryType { name } types { name kind fields(includeDeprecated: true) { name type { ...T } } } } }
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

impl OutputTypes {
    /// Reads the output types of a schema by introspection (its own, as any client would).
    pub async fn of<Q, M, S>(schema: &async_graphql::Schema<Q, M, S>) -> Result<OutputTypes, String>
    where
        Q: async_graphql::ObjectType + 'static,
        M: async_graphql::ObjectType + 'static,
        S: async_graphql::SubscriptionType + 'static,
    {
        let response = schema.execute(async_graphql::Request::new(INTROSPECTION).data(crate::auth::Principal::local_admin())).await;
        if !response.errors.is_empty() {
            return Err(format!("introspection failed: {:?}", response.errors));
        }
        let data = response.data.into_json().map_err(|e| e.to_string())?;
        let schema = &data["__schema"];
        let mut out = OutputTypes { query: schema["queryType"]["name"].as_str().unwrap_or("Query").to_string(), objects: HashMap::new() };
        for t in schema["types"].as_array().into_iter().flatten() {
            let (Some(name), Some(fields)) = (t["name"].as_str(), t["fields"].as_array()) else { continue };
            let mut map = HashMap::new();
            for f in fields {
                if let Some(field) = f["name"].as_str() {
                    map.insert(field.to_string(), TypeRef::from_introspection(&f["type"])?);
                }
            }
            out.objects.insert(name.to_string(), map);
        }
        Ok(out)
    }

    fn field(&self, object: &str, field: &str) -> Result<TypeRef, String> {
        if field == "__typename" {
            return Ok(TypeRef::NonNull(Box::new(TypeRef::Named { name: "String".into(), object: false })));
        }
        self.objects.get(object).and_then(|o| o.get(field)).cloned().ok_or_else(|| format!("{object} has no field '{field}'"))
    }
}

/// One column of a downloaded table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// The GraphQL scalar the column holds (`Date`, `Int`, an enum's name, ...; `String` for a
    /// joined list).
    pub scalar: String,
}

/// The table a query downloads, planned from its text and the output types before any row is
/// seen: the top-level field, the page's list (for a page such as `responses`) and the columns
/// in the order `flatten` fills them (a level's scalars, then its nested objects' columns, then
/// its one exploded list's).
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    pub field: String,
    pub page_list: Option<String>,
    pub columns: Vec<Column>,
}

/// The Arrow type of a named GraphQL type.
fn arrow_type(named: &str) -> DataType {
    match named {
        "Int" => DataType::Int64,
        "Float" => DataType::Float64,
        "Boolean" => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

/// The named type under lists and non-null wrappers.
fn innermost(t: &TypeRef) -> (&str, bool) {
    match t {
        TypeRef::NonNull(inner) | TypeRef::List(inner) => innermost(inner),
        TypeRef::Named { name, object } => (name, *object),
    }
}

/// A selected field: its response key, its name, its selection sets (a key selected twice is
/// one column) and whether `@skip`/`@include` may leave it out (then its column is nullable).
type Selected<'a> = (String, String, Vec<&'a SelectionSet>, bool);

/// The fields a selection set selects, fragments expanded, in order.
fn selected<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, conditional: bool, out: &mut Vec<Selected<'a>>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let key = f.node.response_key().node.to_string();
                let conditional = conditional || !f.node.directives.is_empty();
                match out.iter_mut().find(|(k, ..)| *k == key) {
                    Some((_, _, sets, c)) => {
                        sets.push(&f.node.selection_set.node);
                        *c = *c && conditional;
                    }
                    None => out.push((key, f.node.name.node.to_string(), vec![&f.node.selection_set.node], conditional)),
                }
            }
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node) {
                    selected(doc, &fragment.node.selection_set.node, conditional || !s.node.directives.is_empty(), out);
                }
            }
            Selection::InlineFragment(i) => selected(doc, &i.node.selection_set.node, conditional || !i.node.directives.is_empty(), out),
        }
    }
}

impl OutputTypes {
    /// The plan of the table a document (its operation `operation`, or its only one) downloads.
    pub fn plan(&self, doc: &ExecutableDocument, operation: Option<&str>) -> Result<TablePlan, String> {
        let op = match (&doc.operations, operation) {
            (async_graphql::parser::types::DocumentOperations::Single(op), _) => op,
            (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
                ops.get(name).ok_or_else(|| format!("the document has no operation '{name}'"))?
            }
            (async_graphql::parser::types::DocumentOperations::Multiple(_), None) => return Err("the document has several operations: name one".into()),
        };
        let mut top = Vec::new();
        selected(doc, &op.node.selection_set.node, false, &mut top);
        let [(key, name, sets, _)] = &top[..] else {
            return Err(format!("a table download needs exactly one top-level field; the query selects {}", top.len()));
        };
        let ty = self.field(&self.query, name)?;
        let (_, inner) = ty.nullable();
        match inner {
            TypeRef::List(item) => Ok(TablePlan { field: key.clone(), page_list: None, columns: self.row_columns(doc, key, item, sets)? }),
            TypeRef::Named { name: object, object: true } => {
                // A page: exactly one list among its selected fields holds the rows.
                let mut fields = Vec::new();
                sets.iter().for_each(|s| selected(doc, s, false, &mut fields));
                let mut lists = Vec::new();
                for (k, f, s, _) in &fields {
                    let t = self.field(object, f)?;
                    if let TypeRef::List(item) = t.nullable().1 {
                        lists.push((k.clone(), item.as_ref().clone(), s.clone()));
                    }
                }
                let [(list_key, item, s)] = &lists[..] else {
                    return Err(format!("'{key}' is an object; a table download needs it to hold exactly one list"));
                };
                Ok(TablePlan { field: key.clone(), page_list: Some(list_key.clone()), columns: self.row_columns(doc, list_key, item, s)? })
            }
            _ => Err(format!("'{key}' is not a list")),
        }
    }

    /// The columns of a table whose rows are the items (of type `item`) of the list `key`:
    /// the objects' selected fields, or one column of scalars named `key`.
    fn row_columns(&self, doc: &ExecutableDocument, key: &str, item: &TypeRef, sets: &[&SelectionSet]) -> Result<Vec<Column>, String> {
        let (nullable, item) = item.nullable();
        Ok(match innermost(item) {
            (object, true) => self.columns(doc, object, sets, "", nullable)?,
            (scalar, false) => vec![Column { name: key.to_string(), data_type: arrow_type(scalar), nullable, scalar: scalar.to_string() }],
        })
    }

    /// The columns of the objects of type `object` selected by `sets`, under `prefix`.
    fn columns(&self, doc: &ExecutableDocument, object: &str, sets: &[&SelectionSet], prefix: &str, nullable_above: bool) -> Result<Vec<Column>, String> {
        let mut fields = Vec::new();
        sets.iter().for_each(|s| selected(doc, s, false, &mut fields));
        let (mut base, mut nested, mut exploded) = (Vec::new(), Vec::new(), None::<(String, Vec<Column>)>);
        for (key, field, sub, conditional) in &fields {
            let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}_{key}") };
            let ty = self.field(object, field)?;
            let (nullable, inner) = ty.nullable();
            let nullable = nullable || nullable_above || *conditional;
            match (inner, innermost(inner)) {
                (TypeRef::List(_), (item, true)) => {
                    if let Some((other, _)) = &exploded {
                        return Err(format!("'{other}' and '{name}' are both lists of objects; a table can unnest one: select only one of them"));
                    }
                    // An empty list leaves its columns null.
                    exploded = Some((name.clone(), self.columns(doc, item, sub, &name, true)?));
                }
                // A list of scalars is joined with "; " (an empty one leaves the cell null).
                (TypeRef::List(_), (_, false)) => base.push(Column { name, data_type: DataType::Utf8, nullable: true, scalar: "String".into() }),
                (_, (item, true)) => nested.extend(self.columns(doc, item, sub, &name, nullable)?),
                (_, (scalar, false)) => base.push(Column { name, data_type: arrow_type(scalar), nullable, scalar: scalar.to_string() }),
            }
        }
        base.extend(nested);
        base.extend(exploded.into_iter().flat_map(|(_, c)| c));
        Ok(base)
    }
}

type Row = Vec<(String, Value)>;

/// A GraphQL scalar as JSON (enums as their names).
fn scalar(v: &GqlValue) -> Value {
    match v {
        GqlValue::Enum(name) => Value::String(name.to_string()),
        other => other.clone().into_json().unwrap_or(Value::Null),
    }
}

/// Flattens one object into rows, in the order the query selected the fields: scalars and
/// nested objects become columns; a nested list of objects multiplies the rows (at most one
/// per object); lists of scalars are joined with "; "; an empty list adds nothing.
fn flatten(obj: &async_graphql::indexmap::IndexMap<async_graphql::Name, GqlValue>, prefix: &str) -> Result<Vec<Row>, String> {
    let mut base: Row = Vec::new();
    let mut exploded: Option<(String, Vec<Row>)> = None;
    let mut nested: Vec<Vec<Row>> = Vec::new();
    for (k, v) in obj {
        let name = if prefix.is_empty() { k.to_string() } else { format!("{prefix}_{k}") };
        match v {
            GqlValue::Object(o) => nested.push(flatten(o, &name)?),
            GqlValue::List(items) if items.is_empty() => {}
            GqlValue::List(items) if items.iter().any(|i| matches!(i, GqlValue::Object(_))) => {
                if let Some((other, _)) = &exploded {
                    return Err(format!("'{other}' and '{name}' are both lists of objects; a table can unnest one: select only one of them"));
                }
                let mut rows = Vec::new();
                for item in items {
                    match item {
                        GqlValue::Object(o) => rows.extend(flatten(o, &name)?),
                        other => rows.push(vec![(name.clone(), scalar(other))]),
                    }
                }
                exploded = Some((name, rows));
            }
            GqlValue::List(items) => {
                let text: Vec<String> = items
                    .iter()
                    .map(|i| match scalar(i) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect();
                base.push((name, Value::String(text.join("; "))));
            }
            other => base.push((name, scalar(other))),
        }
    }
    let mut rows = vec![base];
    for group in nested.into_iter().chain(exploded.map(|(_, r)| r)) {
        if group.is_empty() {
            continue;
        }
        rows = rows.iter().flat_map(|r| group.iter().map(move |g| r.iter().chain(g).cloned().collect())).collect();
    }
    Ok(rows)
}

/// Prefix of the schema metadata keys (and, in the server, of `x-cxlake-` headers) that carry
/// a page's fields beside its rows: `cxlake.totalCount`, `cxlake.truncated`,
/// `cxlake.pageInfo_endCursor`.
pub const PAGE_METADATA: &str = "cxlake.";

/// The table of a GraphQL `data` object whose single field is a list, or a page: an object
/// holding one list (its rows) beside scalar fields (total count, truncation flag, cursor),
/// which go into the table's schema metadata, so no download hides that it was cut. The
/// columns and their types are the plan's, whatever the rows hold.
pub fn table(data: &GqlValue, plan: &TablePlan) -> Result<RecordBatch, String> {
    let GqlValue::Object(fields) = data else { return Err("the response has no data".into()) };
    let mut list = fields.get(plan.field.as_str()).ok_or_else(|| format!("the response has no '{}'", plan.field))?;
    let mut name = plan.field.as_str();
    let mut metadata = HashMap::new();
    if let (Some(rows_name), GqlValue::Object(page)) = (&plan.page_list, list) {
        let others: async_graphql::indexmap::IndexMap<_, _> =
            page.iter().filter(|(k, _)| k.as_str() != rows_name).map(|(k, v)| (k.clone(), v.clone())).collect();
        for row in flatten(&others, "")? {
            for (k, v) in row {
                metadata.insert(format!("{PAGE_METADATA}{k}"), v.as_str().map_or_else(|| v.to_string(), str::to_string));
            }
        }
        list = page.get(rows_name.as_str()).unwrap_or(&GqlValue::Null);
        name = rows_name;
    }
    let items: &[GqlValue] = match list {
        GqlValue::List(items) => items,
        // A null list (its field failed or is absent): no rows, the same columns.
        GqlValue::Null => &[],
        _ => return Err(format!("'{name}' is not a list")),
    };
    let mut rows = Vec::new();
    for item in items {
        match item {
            GqlValue::Object(o) => rows.extend(flatten(o, "")?),
            other => rows.push(vec![(name.to_string(), scalar(other))]),
        }
    }
    let index: Vec<HashMap<&str, &Value>> = rows.iter().map(|r| r.iter().map(|(k, v)| (k.as_str(), v)).collect()).collect();
    let mut schema_fields = Vec::with_capacity(plan.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    for c in &plan.columns {
        let values = index.iter().map(|r| r.get(c.name.as_str()).copied().filter(|v| !v.is_null()));
        let mismatch = |v: &Value| format!("column '{}' is {:?}, but a row holds {v}", c.name, c.data_type);
        let array: ArrayRef = match c.data_type {
            DataType::Boolean => {
                let mut b = BooleanBuilder::new();
                for v in values {
                    b.append_option(v.map(|v| v.as_bool().ok_or_else(|| mismatch(v))).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::new();
                for v in values {
                    b.append_option(v.map(|v| v.as_i64().ok_or_else(|| mismatch(v))).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Float64 => {
                let mut b = Float64Builder::new();
                for v in values {
                    b.append_option(v.map(|v| v.as_f64().ok_or_else(|| mismatch(v))).transpose()?);
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::new();
                values.for_each(|v| b.append_option(v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))));
                Arc::new(b.finish())
            }
        };
        schema_fields.push(Field::new(&c.name, c.data_type.clone(), c.nullable));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(schema_fields).with_metadata(metadata));
    RecordBatch::try_new_with_options(schema, arrays, &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()))).map_err(|e| e.to_string())
}

/// A table being written in one of the formats, batch by batch (any `Write`: a buffer, or a
/// channel streaming to the client).
pub enum TableSink<W: std::io::Write + Send> {
    Arrow(arrow::ipc::writer::StreamWriter<W>),
    Parquet(parquet::arrow::ArrowWriter<W>),
    Csv(csv::Writer<W>, bool),
}

impl<W: std::io::Write + Send> TableSink<W> {
    pub fn new(out: W, schema: &arrow::datatypes::SchemaRef, format: TableFormat) -> Result<Self, String> {
        Ok(match format {
            TableFormat::Arrow => TableSink::Arrow(arrow::ipc::writer::StreamWriter::try_new(out, schema).map_err(|e| e.to_string())?),
            TableFormat::Parquet => {
                let props = cx_lake::writer::parquet_properties(&[]);
                TableSink::Parquet(parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(|e| e.to_string())?)
            }
            TableFormat::Csv => TableSink::Csv(csv::Writer::from_writer(out), false),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            TableSink::Arrow(w) => w.write(batch).map_err(|e| e.to_string()),
            TableSink::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            TableSink::Csv(w, header_written) => {
                if !*header_written {
                    w.write_record(batch.schema().fields().iter().map(|f| f.name().as_str())).map_err(|e| e.to_string())?;
                    *header_written = true;
                }
                let options = arrow::util::display::FormatOptions::default();
                // Named zones need chrono-tz in arrow; UTC is written as an offset instead.
                let columns: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|a| match a.data_type() {
                        DataType::Timestamp(unit, Some(tz)) if tz.as_ref() == "UTC" => {
                            arrow::compute::cast(a, &DataType::Timestamp(*unit, Some("+00:00".into()))).map_err(|e| e.to_string())
                        }
                        _ => Ok(a.clone()),
                    })
                    .collect::<Result<_, _>>()?;
                let formatters = columns
                    .iter()
                    .map(|a| arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                for i in 0..batch.num_rows() {
                    w.write_record(formatters.iter().map(|f| f.value(i).to_string())).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Completes the table (footer, trailing bytes) and returns the writer.
    pub fn finish(self) -> Result<(), String> {
        match self {
            TableSink::Arrow(mut w) => w.finish().map_err(|e| e.to_string()),
            TableSink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            TableSink::Csv(mut w, _) => w.flush().map_err(|e| e.to_string()),
        }
    }
}

/// Encodes a table.
pub fn encode(batch: &RecordBatch, format: TableFormat) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut sink = TableSink::new(&mut out, &batch.schema(), format)?;
    sink.write(batch)?;
    sink.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small schema in the shape of the real ones: a list query of groups, each with a
    /// nested object, a list of scalars and a list of objects; and a page.
    mod fixture {
        use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

        #[derive(SimpleObject, Clone)]
        pub struct Driver {
            pub driver: String,
            pub shapley: Option<f64>,
            pub suppressed: bool,
        }
        #[derive(SimpleObject, Clone)]
        pub struct Interval {
            pub low: f64,
            pub high: f64,
        }
        #[derive(SimpleObject, Clone)]
        #[graphql(rename_fields = "camelCase")]
        pub struct Group {
            pub service_type: String,
            pub n: u64,
            pub r2: Option<f64>,
            pub ci: Option<Interval>,
            pub warnings: Vec<String>,
            pub drivers: Vec<Driver>,
            pub others: Vec<Driver>,
        }
        #[derive(SimpleObject, Clone)]
        #[graphql(rename_fields = "camelCase")]
        pub struct Page {
            pub total_count: u64,
            pub nodes: Vec<Driver>,
        }
        pub struct Query(pub Vec<Group>);
        #[Object]
        impl Query {
            async fn groups(&self) -> Vec<Group> {
                self.0.clone()
            }
            async fn page(&self) -> Page {
                Page { total_count: 0, nodes: Vec::new() }
            }
            async fn name(&self) -> String {
                String::new()
            }
        }
        pub fn schema(groups: Vec<Group>) -> Schema<Query, EmptyMutation, EmptySubscription> {
            Schema::new(Query(groups), EmptyMutation, EmptySubscription)
        }
    }

    async fn download(groups: Vec<fixture::Group>, query: &str) -> Result<RecordBatch, String> {
        let schema = fixture::schema(groups);
        let types = OutputTypes::of(&schema).await?;
        let plan = types.plan(&async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?, None)?;
        let response = schema.execute(query).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        table(&response.data, &plan)
    }

    fn groups() -> Vec<fixture::Group> {
        use fixture::*;
        let d = |driver: &str, shapley| Driver { driver: driver.into(), shapley: Some(shapley), suppressed: false };
        vec![
            Group {
                service_type: "benefits".into(),
                n: 40,
                r2: Some(0.5),
                ci: Some(Interval { low: 0.25, high: 0.75 }),
                warnings: vec!["small n".into(), "vif".into()],
                drivers: vec![d("EASE", 0.2), d("EFFICIENCY", 0.1)],
                others: Vec::new(),
            },
            Group { service_type: "recreation".into(), n: 9, r2: None, ci: None, warnings: Vec::new(), drivers: Vec::new(), others: Vec::new() },
        ]
    }

    const QUERY: &str = "{ groups { n r2 ... on Group { serviceType } warnings ci { low high } drivers { driver shapley suppressed } } }";

    #[tokio::test]
    async fn nested_fields_flatten_and_one_list_explodes() {
        let t = download(groups(), QUERY).await.unwrap();
        let names: Vec<String> = t.schema().fields().iter().map(|f| f.name().clone()).collect();
        // A level's scalars, then its nested objects, then its exploded list.
        assert_eq!(names, ["n", "r2", "serviceType", "warnings", "ci_low", "ci_high", "drivers_driver", "drivers_shapley", "drivers_suppressed"]);
        assert_eq!(t.num_rows(), 3);
        let csv = String::from_utf8(encode(&t, TableFormat::Csv).unwrap()).unwrap();
        assert_eq!(csv.lines().nth(1).unwrap(), "40,0.5,benefits,small n; vif,0.25,0.75,EASE,0.2,false");
        assert_eq!(csv.lines().nth(3).unwrap(), "9,,recreation,,,,,,");
        let two = "{ groups { drivers { driver } others { driver } } }";
        assert!(download(groups(), two).await.unwrap_err().contains("select only one"));
        assert!(download(groups(), "{ groups { n } name }").await.unwrap_err().contains("exactly one top-level field"));
        assert!(download(groups(), "{ name }").await.unwrap_err().contains("not a list"));
    }

    #[tokio::test]
    async fn the_schema_comes_from_the_types_not_the_rows() {
        let full = download(groups(), QUERY).await.unwrap();
        let types: Vec<(DataType, bool)> = full.schema().fields().iter().map(|f| (f.data_type().clone(), f.is_nullable())).collect();
        use DataType::*;
        assert_eq!(
            types,
            [(Int64, false), (Float64, true), (Utf8, false), (Utf8, true), (Float64, true), (Float64, true), (Utf8, true), (Float64, true), (Boolean, true)]
        );
        // Every r2 null, every list empty, no rows at all: the same schema.
        let mut nulls = groups();
        nulls.iter_mut().for_each(|g| {
            g.r2 = None;
            g.ci = None;
            g.drivers.clear();
        });
        assert_eq!(download(nulls, QUERY).await.unwrap().schema(), full.schema());
        let empty = download(Vec::new(), QUERY).await.unwrap();
        assert_eq!((empty.schema(), empty.num_rows()), (full.schema(), 0));
        // A page: its list's columns, whatever it holds.
        let page = download(Vec::new(), "{ page { totalCount nodes { driver shapley } } }").await.unwrap();
        assert_eq!(
            page.schema().fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect::<Vec<_>>(),
            [("driver", Utf8), ("shapley", Float64)]
        );
        assert_eq!(page.schema().metadata().get("cxlake.totalCount").map(String::as_str), Some("0"));
        // A field `@include` may leave out is nullable, so leaving it out is still a table.
        let skipped = download(groups(), "{ groups { serviceType n @include(if: false) } }").await.unwrap();
        assert_eq!(skipped.schema().field(1).name(), "n");
        assert!(skipped.schema().field(1).is_nullable() && !skipped.schema().field(0).is_nullable());
    }

    #[test]
    fn accept_headers_and_params() {
        assert_eq!(TableFormat::from_accept("text/csv"), Some(TableFormat::Csv));
        assert_eq!(TableFormat::from_accept("application/json, application/vnd.apache.arrow.stream;q=0.9"), Some(TableFormat::Arrow));
        assert_eq!(TableFormat::from_accept("application/json"), None);
        assert_eq!(TableFormat::from_param("Parquet"), Some(TableFormat::Parquet));
    }
}
