//! Building record batches of the responses table: one set of column builders in the order of
//! `schema::response_columns()`, filled either column by column (the generator) or from a
//! validated `Response` (ingestion, real-time submit).

use super::schema;
use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int8Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use cx_domain::validate::Response;
use std::sync::Arc;

/// Column builders of the responses table.
pub struct ResponseBatchBuilder {
    pub response_id: StringBuilder,
    pub submitted_at: TimestampMicrosecondBuilder,
    pub collection_id: StringBuilder,
    pub bureau: StringBuilder,
    pub service_id: StringBuilder,
    pub service_type: StringBuilder,
    pub channel: StringBuilder,
    pub office_id: StringBuilder,
    pub region: StringBuilder,
    pub stage: StringBuilder,
    pub scale: StringBuilder,
    pub trust: Int8Builder,
    pub satisfaction: Int8Builder,
    /// In `Driver::ALL` order.
    pub drivers: Vec<Int8Builder>,
    /// In `TAP_TOPICS` order.
    pub positive: Vec<BooleanBuilder>,
    pub negative: Vec<BooleanBuilder>,
    pub free_text_1: StringBuilder,
    pub free_text_2: StringBuilder,
    pub weight: Float64Builder,
    rows: usize,
}

fn answer(v: Option<i64>) -> Option<i8> {
    // Validation has bounded answers to 0-5; anything else is a bug upstream.
    v.map(|x| i8::try_from(x).expect("validated answers fit in i8"))
}

impl ResponseBatchBuilder {
    /// Builders with room for `n` rows.
    pub fn new(n: usize) -> Self {
        let s = || StringBuilder::with_capacity(n, n * 8);
        ResponseBatchBuilder {
            response_id: StringBuilder::with_capacity(n, n * 28),
            submitted_at: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            collection_id: s(),
            bureau: s(),
            service_id: s(),
            service_type: s(),
            channel: s(),
            office_id: s(),
            region: s(),
            stage: s(),
            scale: s(),
            trust: Int8Builder::with_capacity(n),
            satisfaction: Int8Builder::with_capacity(n),
            drivers: (0..6).map(|_| Int8Builder::with_capacity(n)).collect(),
            positive: (0..7).map(|_| BooleanBuilder::with_capacity(n)).collect(),
            negative: (0..7).map(|_| BooleanBuilder::with_capacity(n)).collect(),
            free_text_1: StringBuilder::new(),
            free_text_2: StringBuilder::new(),
            weight: Float64Builder::with_capacity(n),
            rows: 0,
        }
    }

    /// Rows appended through `push` (column-by-column callers count their own).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one validated response.
    pub fn push(&mut self, r: &Response) {
        self.response_id.append_value(&r.response_id);
        self.submitted_at.append_value(r.submitted_at.timestamp_micros());
        self.collection_id.append_value(&r.collection_id);
        self.bureau.append_value(&r.bureau);
        self.service_id.append_value(&r.service_id);
        self.service_type.append_value(r.service_type.as_str());
        self.channel.append_value(r.channel.as_str());
        self.office_id.append_option(r.office_id.as_deref());
        self.region.append_option(r.region.as_deref());
        self.stage.append_value(r.stage.as_str());
        self.scale.append_value(r.scale.as_str());
        self.trust.append_option(answer(r.trust));
        self.satisfaction.append_option(answer(r.satisfaction));
        for (b, v) in self.drivers.iter_mut().zip(&r.drivers) {
            b.append_option(answer(*v));
        }
        for (b, v) in self.positive.iter_mut().zip(&r.positive) {
            b.append_option(*v);
        }
        for (b, v) in self.negative.iter_mut().zip(&r.negative) {
            b.append_option(*v);
        }
        self.free_text_1.append_option(r.free_text[0].as_deref());
        self.free_text_2.append_option(r.free_text[1].as_deref());
        self.weight.append_value(r.weight);
        self.rows += 1;
    }

    /// The batch of everything appended so far; the builders start over empty.
    pub fn finish(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.response_id.finish()),
            Arc::new(self.submitted_at.finish()),
            Arc::new(self.collection_id.finish()),
            Arc::new(self.bureau.finish()),
            Arc::new(self.service_id.finish()),
            Arc::new(self.service_type.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.office_id.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.scale.finish()),
            Arc::new(self.trust.finish()),
            Arc::new(self.satisfaction.finish()),
        ];
        cols.extend(self.drivers.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        cols.extend(self.positive.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        cols.extend(self.negative.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        cols.push(Arc::new(self.free_text_1.finish()));
        cols.push(Arc::new(self.free_text_2.finish()));
        cols.push(Arc::new(self.weight.finish()));
        self.rows = 0;
        RecordBatch::try_new(schema::arrow_schema(), cols).expect("built batch matches the schema")
    }
}
