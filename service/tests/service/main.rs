//! Integration tests: the real service (started through `Application::build`), a private
//! `redis-server` per test, and real WebSocket clients. No mocks.

// Test helpers fail the test on any error, which is what unwrap does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audience;
mod bad_input;
mod delivery;
mod http_api;
mod lifecycle;
mod no_loss;
mod redis_faults;
mod slow_clients;
mod source_latency;
mod spoiler_delay;
mod web_page;
mod websocket;

use scoreline_protocol::{MatchSnapshot, ScoreEvent, ServerMessage, Topic};
use scoreline_testkit::{TestApp, WsClient};

/// Subscribes and returns the snapshots of the `subscribed` reply.
async fn subscribe(client: &mut WsClient, topics: &[&str]) -> Vec<MatchSnapshot> {
    let topics: Vec<Topic> = topics
        .iter()
        .map(|topic| Topic::parse(topic).unwrap())
        .collect();
    client
        .send(&scoreline_protocol::ClientMessage::subscribe(&topics))
        .await
        .unwrap();
    client
        .recv_until(|message| match message {
            ServerMessage::Subscribed { snapshots, .. } => Some(snapshots),
            _ => None,
        })
        .await
        .unwrap()
}

/// The next event, skipping other messages.
async fn next_event(client: &mut WsClient) -> ScoreEvent {
    client
        .recv_until(|message| match message {
            ServerMessage::Event(event) => Some(event),
            _ => None,
        })
        .await
        .unwrap()
}

/// Waits until the service has applied `seq` of `topic` (events go through Redis asynchronously).
async fn wait_for_seq(app: &TestApp, topic: &str, seq: u64) -> MatchSnapshot {
    app.wait_for_seq(topic, seq).await.unwrap()
}

/// The series of metric `name` (a [`scoreline_service::telemetry`] constant) in `/metrics`: each
/// one's labels (`kind="invalid_utf8"`, or empty) and value.
///
/// Metrics are process-wide, so a test asserts on them only in a process of its own, where every
/// figure is its own: `cargo nextest run` (what `scripts/test` runs) gives each test one. Under
/// `cargo test` other tests would move the same counters, so this fails instead of passing by luck.
async fn series(app: &TestApp, name: &str) -> Vec<(String, f64)> {
    assert_eq!(
        std::env::var("NEXTEST_EXECUTION_MODE").as_deref(),
        Ok("process-per-test"),
        "this test asserts on process-wide metrics: run it in a process of its own with \
         `cargo nextest run` (scripts/test does)"
    );
    let body = app.get("/metrics").await.unwrap().body;
    body.lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = match series.strip_prefix(name)? {
                "" => "",
                labelled => labelled.strip_prefix('{')?.strip_suffix('}')?,
            };
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the series of metric `name` with exactly these `labels` (`""` for none); fails
/// the test when `/metrics` has no such series, so a misspelt name or label cannot pass.
async fn metric(app: &TestApp, name: &str, labels: &str) -> f64 {
    let all = series(app, name).await;
    all.iter()
        .find(|(found, _)| found == labels)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no series {name}{{{labels}}} in /metrics; it has {all:?}"))
}
