//! A client that stops reading never delays the others; it is disconnected once its queue of
//! must-deliver frames overflows.

use std::time::Duration;

use scoreline_protocol::{EventKind, Side};
use scoreline_testkit::{RedisServer, TestApp, event, now_ms};

use scoreline_service::telemetry::SLOW_CLIENT_DISCONNECTS;

use crate::{metric, next_event, subscribe};

const GAME: &str = "football/premier-league/ars-che";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_while_a_fast_client_keeps_up() {
    let redis = RedisServer::start().unwrap();
    let mut config = TestApp::config(Some(&redis));
    config.max_queued_frames = 256;
    config.idle_timeout_secs = 120;
    let app = TestApp::spawn(config).await.unwrap();
    app.wait_until_ready(true).await.unwrap();

    let mut stalled = app.client().await.unwrap();
    subscribe(&mut stalled, &["football"]).await;
    let mut fast = app.client().await.unwrap();
    subscribe(&mut fast, &["football"]).await;

    // Large frames fill the kernel's socket buffers quickly, so the stalled client's queue
    // overflows within a few hundred events.
    const EVENTS: u64 = 2000;
    let name = "x".repeat(16 * 1024);
    let reader = tokio::spawn(async move {
        let mut latencies_ms = Vec::new();
        for seq in 1..=EVENTS {
            let received = next_event(&mut fast).await;
            assert_eq!(
                received.seq, seq,
                "the fast client must get every event in order"
            );
            latencies_ms.push(now_ms().saturating_sub(received.ts_ms));
        }
        latencies_ms
    });
    for seq in 1..=EVENTS {
        let kind = EventKind::Substitution {
            side: Side::Home,
            player_on: Some(name.clone()),
            player_off: None,
        };
        redis.publish(&event(GAME, seq, kind)).await.unwrap();
        if seq % 25 == 0 {
            // A steady feed rather than one burst: the fast client must be able to keep up even
            // on a loaded machine, while the stalled one still never reads.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut latencies_ms = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the fast client fell behind")
        .unwrap();
    latencies_ms.sort_unstable();
    let p99 = latencies_ms[latencies_ms.len() * 99 / 100];
    println!(
        "fast client latency: p50 {} ms, p99 {p99} ms",
        latencies_ms[latencies_ms.len() / 2]
    );
    assert!(
        p99 < 2000,
        "the stalled client slowed the fast one: p99 {p99} ms"
    );

    assert_eq!(
        metric(&app, SLOW_CLIENT_DISCONNECTS, "").await,
        1.0,
        "the stalled client, and only it, is cut off"
    );
    // Reading now, the stalled client finds its connection ended after what was buffered.
    let closed = stalled.closed().await.unwrap();
    assert!(matches!(closed.code, None | Some(1013)), "{closed:?}");
}
