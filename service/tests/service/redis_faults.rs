//! Redis going away: clients stay connected, /readyz turns red, the service reconnects by itself
//! and delivery resumes.

use scoreline_protocol::{ClientMessage, EventKind, ServerMessage, Side};
use scoreline_testkit::{PATIENCE, RedisServer, TestApp, event, goal};

use scoreline_service::telemetry::REDIS_RECONNECTS;

use crate::{metric, next_event, subscribe};

const GAME: &str = "football/premier-league/ars-che";

#[tokio::test]
async fn redis_restarted_mid_stream_then_delivery_resumes() {
    let mut redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football"]).await;
    for seq in 1..=3 {
        redis
            .publish(&event(GAME, seq, goal(Side::Home)))
            .await
            .unwrap();
        assert_eq!(next_event(&mut client).await.seq, seq);
    }

    redis.stop();
    app.wait_until_ready(false).await.unwrap();
    // The client is still connected and served while Redis is down.
    client.send(&ClientMessage::Ping { id: 7 }).await.unwrap();
    assert!(matches!(
        client.recv().await.unwrap(),
        ServerMessage::Pong { id: 7, .. }
    ));

    redis.start_again().unwrap();
    app.wait_until_ready(true).await.unwrap();
    for seq in 4..=6 {
        redis
            .publish(&event(GAME, seq, goal(Side::Away)))
            .await
            .unwrap();
    }
    for seq in 4..=6 {
        assert_eq!(next_event(&mut client).await.seq, seq);
    }
    assert!(metric(&app, REDIS_RECONNECTS, "").await >= 1.0);
}

#[tokio::test]
async fn the_service_starts_without_redis_and_catches_up_when_it_appears() {
    let mut redis = RedisServer::start().unwrap();
    redis.stop();
    let app = TestApp::with_redis(&redis).await.unwrap();
    assert_eq!(app.get("/readyz").await.unwrap().status, 503);
    assert_eq!(app.get("/healthz").await.unwrap().status, 200);
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football"]).await;

    redis.start_again().unwrap();
    app.wait_until_ready(true).await.unwrap();
    redis
        .publish(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.seq, 1);
}

#[tokio::test]
async fn http_publish_reports_503_while_redis_is_down() {
    let mut redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    redis.stop();
    app.wait_until_ready(false).await.unwrap();
    let reply = app
        .publish_http(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json().unwrap()["error"], "unavailable");
}

#[tokio::test]
async fn a_healthy_subscription_is_kept_across_liveness_pings() {
    let redis = RedisServer::start().unwrap();
    let _app = TestApp::with_redis(&redis).await.unwrap();
    // The subscriber pings every 2 s; a ping it misreads would make it resubscribe (and lose
    // whatever was published meanwhile). Its connection must outlive several pings: watch it
    // until Redis says it is 5 s old, and fail if it is ever replaced.
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5) + PATIENCE;
    let mut first_id = None;
    loop {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut connection)
            .await
            .unwrap();
        // Between two subscriptions there may briefly be none: that is a recycle too.
        let subscriber = clients
            .lines()
            .find(|line| line.contains(" psub=1 "))
            .unwrap_or_else(|| panic!("no pattern subscriber in:\n{clients}"));
        let field = |name: &str| -> u64 {
            subscriber
                .split(' ')
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {subscriber}"))
        };
        let id = *first_id.get_or_insert(field("id"));
        assert_eq!(
            field("id"),
            id,
            "the subscription was recycled: {subscriber}"
        );
        if field("age") >= 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis's clock stalled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
