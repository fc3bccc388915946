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
    let deadline = tokio::time::Instant::now() + scoreline_testkit::PATIENCE;
    loop {
        let reply = app.get(&format!("/api/matches/{topic}")).await.unwrap();
        if reply.status == 200 {
            let snapshot: MatchSnapshot = serde_json::from_str(&reply.body).unwrap();
            if snapshot.seq >= seq {
                return snapshot;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} never reached seq {seq}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The value of a metric line (`name{labels} value`) in `/metrics`, 0 when absent.
async fn metric(app: &TestApp, line_prefix: &str) -> f64 {
    let body = app.get("/metrics").await.unwrap().body;
    body.lines()
        .find(|line| line.starts_with(line_prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}
