//! The GraphQL mutation root: `submitResponses`, the real-time submit path. Inputs are
//! decoded into the lake's JSON columns and handed to `ingest::submit`, which validates them
//! exactly as `POST /v1/responses` and file ingestion do.

use super::types::{Channel, Scale, ServiceType, Stage};
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cx_ingest::submit::{SubmitError, Submitter};
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Default)]
pub struct MutationRoot;

/// A tapped-indicator topic (Touchpoints A-11 v2): one of the drivers, or other.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TapTopic {
    Effectiveness,
    Ease,
    Efficiency,
    Transparency,
    Humanity,
    Employee,
    Other,
}

/// One survey response as submitted. Answers are 1-5 (Likert) or 0/1 (thumbs, trust and
/// satisfaction only); drivers are Likert items; `positive`/`negative` list tapped topics.
#[derive(InputObject)]
pub struct ResponseInput {
    /// Unique id; a new UUID when omitted. Resubmitting the same id stores nothing new.
    pub response_id: Option<String>,
    /// When the response was given; the time of receipt when omitted.
    pub submitted_at: Option<DateTime<Utc>>,
    pub agency: String,
    pub bureau: String,
    pub service_id: String,
    pub service_type: ServiceType,
    pub channel: Channel,
    pub collection_id: String,
    pub office_id: Option<String>,
    /// USPS state or territory code.
    pub region: Option<String>,
    /// Defaults to TRANSACTION.
    pub stage: Option<Stage>,
    pub scale: Scale,
    pub trust: Option<i32>,
    pub satisfaction: Option<i32>,
    pub effectiveness: Option<i32>,
    pub ease: Option<i32>,
    pub efficiency: Option<i32>,
    pub transparency: Option<i32>,
    pub humanity: Option<i32>,
    pub employee: Option<i32>,
    pub positive: Option<Vec<TapTopic>>,
    pub negative: Option<Vec<TapTopic>>,
    #[graphql(name = "freeText1")]
    pub free_text_1: Option<String>,
    #[graphql(name = "freeText2")]
    pub free_text_2: Option<String>,
    /// Survey weight; 1 when omitted.
    pub weight: Option<f64>,
}

fn topic(t: TapTopic) -> &'static str {
    match t {
        TapTopic::Effectiveness => "effectiveness",
        TapTopic::Ease => "ease",
        TapTopic::Efficiency => "efficiency",
        TapTopic::Transparency => "transparency",
        TapTopic::Humanity => "humanity",
        TapTopic::Employee => "employee",
        TapTopic::Other => "other",
    }
}

impl ResponseInput {
    /// The response as a JSON object in the lake's columns.
    fn into_object(self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("response_id", self.response_id.map(Value::from));
        put("submitted_at", self.submitted_at.map(|t| Value::from(t.to_rfc3339())));
        put("agency", Some(self.agency.into()));
        put("bureau", Some(self.bureau.into()));
        put("service_id", Some(self.service_id.into()));
        put("service_type", Some(cx_domain::ServiceType::from(self.service_type).as_str().into()));
        put("channel", Some(cx_domain::Channel::from(self.channel).as_str().into()));
        put("collection_id", Some(self.collection_id.into()));
        put("office_id", self.office_id.map(Value::from));
        put("region", self.region.map(Value::from));
        put("stage", self.stage.map(|s| cx_domain::Stage::from(s).as_str().into()));
        put("scale", Some(cx_domain::Scale::from(self.scale).as_str().into()));
        for (k, v) in [
            ("trust", self.trust),
            ("satisfaction", self.satisfaction),
            ("effectiveness", self.effectiveness),
            ("ease", self.ease),
            ("efficiency", self.efficiency),
            ("transparency", self.transparency),
            ("humanity", self.humanity),
            ("employee", self.employee),
        ] {
            put(k, v.map(Value::from));
        }
        for (positive, list) in [(true, self.positive), (false, self.negative)] {
            if let Some(list) = list {
                for t in [
                    TapTopic::Effectiveness,
                    TapTopic::Ease,
                    TapTopic::Efficiency,
                    TapTopic::Transparency,
                    TapTopic::Humanity,
                    TapTopic::Employee,
                    TapTopic::Other,
                ] {
                    put(&cx_domain::survey::tap_column(topic(t), positive), Some(Value::Bool(list.contains(&t))));
                }
            }
        }
        put("free_text_1", self.free_text_1.map(Value::from));
        put("free_text_2", self.free_text_2.map(Value::from));
        put("weight", self.weight.map(Value::from));
        Value::Object(m)
    }
}

/// What a submit stored.
#[derive(SimpleObject)]
pub struct SubmitResult {
    /// Responses durably logged; they appear in queries within seconds.
    pub accepted: i32,
    pub response_ids: Vec<String>,
}

/// A submit error as a GraphQL error: BAD_USER_INPUT naming each response and field, or
/// UNAVAILABLE when nothing could be logged.
pub fn submit_error(e: SubmitError) -> async_graphql::Error {
    match e {
        SubmitError::Invalid(problems) => {
            let message = problems.iter().map(|p| format!("responses[{}].{}: {}", p.index, p.column, p.reason)).collect::<Vec<_>>().join("; ");
            async_graphql::Error::new(message).extend_with(|_, ext| {
                ext.set("code", "BAD_USER_INPUT");
                ext.set("problems", async_graphql::Value::from_json(serde_json::to_value(&problems).expect("problems serialize")).unwrap_or_default());
            })
        }
        SubmitError::Unavailable(m) => async_graphql::Error::new(m).extend_with(|_, ext| ext.set("code", "UNAVAILABLE")),
    }
}

#[Object(name = "SubmitMutation")]
impl MutationRoot {
    /// Submits survey responses in real time. All or nothing: any invalid response refuses
    /// the batch with errors naming the response index and field. Returns once the responses
    /// are durable on disk. Collectors submit for their own agency only.
    #[graphql(visible = "crate::auth::sees_submit")]
    async fn submit_responses(&self, ctx: &Context<'_>, responses: Vec<ResponseInput>) -> Result<SubmitResult> {
        let role = &crate::auth::principal(ctx).role;
        if let Some(reason) = role.submit_refusal(responses.iter().map(|r| r.agency.as_str())) {
            return Err(crate::auth::forbidden(ctx, reason));
        }
        let submitter = ctx.data::<Arc<Submitter>>().map_err(|_| {
            async_graphql::Error::new("this server is read-only: it does not accept submissions").extend_with(|_, ext| ext.set("code", "READ_ONLY"))
        })?;
        let items = responses.into_iter().map(ResponseInput::into_object).collect();
        let ids = submitter.submit(items).await.map_err(submit_error)?;
        Ok(SubmitResult { accepted: ids.len() as i32, response_ids: ids })
    }
}
