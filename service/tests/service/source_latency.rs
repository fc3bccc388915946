//! Source-to-screen latency: every event written to a fan is measured from its source timestamp.

use scoreline_protocol::{ScoreEvent, Side};
use scoreline_testkit::{TestApp, event, goal};

use scoreline_service::telemetry::SOURCE_TO_SEND_SECONDS;

use crate::{next_event, series, subscribe};

const GAME: &str = "football/source-latency/ars-che";

/// The count of `scoreline_source_to_send_seconds` observations at or below `le`, once the
/// histogram has any (this test's own: each test runs in its own process).
async fn at_most(app: &TestApp, le: &str) -> Option<f64> {
    let bucket = format!("{SOURCE_TO_SEND_SECONDS}_bucket");
    let labels = format!("le=\"{le}\"");
    series(app, &bucket)
        .await
        .into_iter()
        .find(|(found, _)| *found == labels)
        .map(|(_, count)| count)
}

#[tokio::test]
async fn an_event_that_happened_90_s_ago_is_recorded_90_s_behind_the_source() {
    let app = TestApp::in_memory().await.unwrap();
    let mut fan = app.client().await.unwrap();
    subscribe(&mut fan, &["football/source-latency"]).await;

    // The feed stamps the goal 90 s in the past (a feed running late): the fan is 90 s behind.
    let mut late: ScoreEvent = event(GAME, 1, goal(Side::Home));
    late.ts_ms -= 90_000;
    app.publish_http(&late).await.unwrap();
    assert_eq!(next_event(&mut fan).await.seq, 1);

    // The histogram is recorded after the write, so wait for it rather than read it once. It
    // holds this one observation, between 60 and 120 s.
    let deadline = tokio::time::Instant::now() + scoreline_testkit::PATIENCE;
    loop {
        let (below, within) = (at_most(&app, "60").await, at_most(&app, "120").await);
        if within.is_some() {
            assert_eq!((below, within), (Some(0.0), Some(1.0)));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no observation recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
