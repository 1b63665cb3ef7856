//! GraphQL types of raw responses (`responses` query): rows with free text, visible in
//! introspection only to roles that may read raw rows (agency for its own agency, admin), and
//! the page around them (total count, cursor, truncation flag).

use async_graphql::SimpleObject;
use cx_analytics::responses::{RawResponse, ResponsesPage};

/// An answer or tapped indicator by column name.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::auth::sees_raw")]
pub struct RawAnswer {
    pub column: String,
    pub value: Option<i32>,
}

/// One stored response, as in the lake (with its partition columns).
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::auth::sees_raw")]
pub struct RawResponseOut {
    pub response_id: String,
    /// RFC 3339, UTC.
    pub submitted_at: String,
    pub agency: String,
    pub fiscal_year: i32,
    pub fiscal_quarter: i32,
    pub collection_id: String,
    pub bureau: String,
    pub service_id: String,
    pub service_type: String,
    pub channel: String,
    pub stage: String,
    pub office_id: Option<String>,
    pub region: Option<String>,
    pub scale: String,
    pub trust: Option<i32>,
    pub satisfaction: Option<i32>,
    pub effectiveness: Option<i32>,
    pub ease: Option<i32>,
    pub efficiency: Option<i32>,
    pub transparency: Option<i32>,
    pub humanity: Option<i32>,
    pub employee: Option<i32>,
    /// Tapped indicators that are set: `positive_ease`, `negative_other`, ...
    pub taps_positive: Vec<String>,
    pub taps_negative: Vec<String>,
    pub free_text_1: Option<String>,
    pub free_text_2: Option<String>,
    pub weight: f64,
}

impl From<RawResponse> for RawResponseOut {
    fn from(r: RawResponse) -> Self {
        let answer = |name: &str| r.answers.iter().find(|(c, _)| c == name).and_then(|(_, v)| *v);
        let taps =
            |prefix: &str| r.taps.iter().filter(|(c, v)| c.starts_with(prefix) && *v == Some(true)).map(|(c, _)| c[prefix.len()..].to_string()).collect();
        RawResponseOut {
            trust: answer("trust"),
            satisfaction: answer("satisfaction"),
            effectiveness: answer("effectiveness"),
            ease: answer("ease"),
            efficiency: answer("efficiency"),
            transparency: answer("transparency"),
            humanity: answer("humanity"),
            employee: answer("employee"),
            taps_positive: taps("positive_"),
            taps_negative: taps("negative_"),
            response_id: r.response_id,
            submitted_at: r.submitted_at,
            agency: r.agency,
            fiscal_year: r.fiscal_year,
            fiscal_quarter: r.fiscal_quarter,
            collection_id: r.collection_id,
            bureau: r.bureau,
            service_id: r.service_id,
            service_type: r.service_type,
            channel: r.channel,
            stage: r.stage,
            office_id: r.office_id,
            region: r.region,
            scale: r.scale,
            free_text_1: r.free_text_1,
            free_text_2: r.free_text_2,
            weight: r.weight,
        }
    }
}

/// Where the page sits in the whole list.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::auth::sees_raw")]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// A page of raw responses. `truncated` is true when the list was cut at the page size:
/// `totalCount` rows match in all, and `pageInfo.endCursor` continues.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::auth::sees_raw")]
pub struct ResponsePage {
    pub rows: Vec<RawResponseOut>,
    pub total_count: u64,
    pub truncated: bool,
    pub page_info: PageInfo,
}

impl From<ResponsesPage> for ResponsePage {
    fn from(p: ResponsesPage) -> Self {
        let end_cursor = p.next.as_ref().map(|c| c.encode());
        ResponsePage {
            truncated: p.next.is_some(),
            total_count: p.total,
            rows: p.rows.into_iter().map(Into::into).collect(),
            page_info: PageInfo { has_next_page: p.next.is_some(), end_cursor },
        }
    }
}
