//! The quarterly HISP report against the scores of the same quarter, and its downloads.

use crate::common::{analytics, shared_lake};
use cxlake::analytics::hisp::HispQuery;
use cxlake::analytics::{Filter, ScoresQuery};
use cxlake::domain::{Dimension, FiscalQuarter, Measure, Scale};

#[tokio::test(flavor = "multi_thread")]
async fn report_counts_equal_the_scores_of_the_quarter() {
    let a = analytics(shared_lake());
    let quarter = FiscalQuarter::new(2026, 3);
    let report = a.hisp_report(&HispQuery { quarter, agencies: None }).await.unwrap();
    assert!(report.rows.len() > 20, "{}", report.rows.len());
    let filter = Filter { from: Some(quarter.start()), to: Some(quarter.end()), ..Default::default() };
    let measures: Vec<Measure> = cxlake::domain::hisp::QUESTIONS.iter().filter_map(|q| q.measure).collect();
    let scores = a
        .scores(&ScoresQuery { filter, group_by: vec![Dimension::Service, Dimension::Channel], measures: measures.clone(), ..Default::default() })
        .await
        .unwrap();
    let mut checked = 0;
    for row in &report.rows {
        let scale = if row.point_scale == 2 { Scale::Thumbs } else { Scale::Likert5 };
        for q in &row.questions {
            let Some(m) = cxlake::domain::hisp::QUESTIONS[q.number as usize - 1].measure else {
                assert!(q.counts.is_none());
                continue;
            };
            let s = scores
                .rows
                .iter()
                .find(|s| {
                    s.measure == m
                        && s.key.get(Dimension::Service) == Some(row.service.id.as_str())
                        && s.key.get(Dimension::Channel) == Some(row.channel.as_str())
                })
                .unwrap();
            let expected: Vec<u64> = if scale == Scale::Thumbs { vec![0, 1] } else { vec![1, 2, 3, 4, 5] }
                .into_iter()
                .map(|v| s.distribution.iter().filter(|d| d.scale == scale && d.value == v).map(|d| d.count).sum())
                .collect();
            match q.counts {
                Some(c) => {
                    assert!(!q.suppressed && q.n >= report.min_cell || q.n == 0);
                    assert_eq!(&c[..expected.len()], &expected[..], "{} {} q{}", row.service.id, row.channel, q.number);
                    checked += 1;
                }
                None if q.suppressed => assert!(q.n < report.min_cell && q.n > 0),
                None => assert!(scale == Scale::Thumbs && !m.has_thumbs()),
            }
        }
        assert!(row.surveys_offered.unwrap_or(0) >= row.respondents, "{row:?}");
        assert!(row.volume_of_customers.unwrap_or(0) >= row.surveys_offered.unwrap_or(0), "{row:?}");
    }
    assert!(checked > 100, "{checked}");
    // Designated services without data are exactly those with no response this quarter.
    let with_data: std::collections::BTreeSet<&str> = scores.rows.iter().filter(|r| r.n > 0).filter_map(|r| r.key.get(Dimension::Service)).collect();
    let catalog = a.catalog();
    let expected: Vec<&str> = catalog.services.iter().filter(|s| s.designated && !with_data.contains(s.id.as_str())).map(|s| s.id.as_str()).collect();
    let got: Vec<&str> = report.services_without_data.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_carry_the_layout_and_the_due_date() {
    use poem::test::TestClient;
    let a = analytics(shared_lake());
    let cli = TestClient::new(cxlake::api::server::routes(cxlake::api::schema(a.clone()), a, None));
    let resp = cli.get("/v1/reports/hisp?fiscalYear=2022&quarter=2&format=csv").send().await;
    resp.assert_status_is_ok();
    resp.assert_header("x-cxlake-due-date", "2022-04-29");
    resp.assert_header("x-cxlake-due-date-source", "PUBLISHED");
    let text = resp.0.into_body().into_string().await.unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    assert_eq!(header, cxlake::domain::hisp::columns());
    let resp = cli.get("/v1/reports/hisp?fiscalYear=2026&quarter=1&format=xlsx").send().await;
    resp.assert_status_is_ok();
    resp.assert_header("x-cxlake-due-date", "2026-01-30");
    resp.assert_header("x-cxlake-due-date-source", "RULE");
    let bytes = resp.0.into_body().into_vec().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "an XLSX file is a zip archive");
    let resp = cli.get("/v1/reports/hisp?fiscalYear=2026&quarter=5").send().await;
    resp.assert_status(poem::http::StatusCode::BAD_REQUEST);
    assert!(resp.0.into_body().into_string().await.unwrap().contains("quarter"));
}
