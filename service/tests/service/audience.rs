//! "N fans watching": counts of a match's own subscribers over every instance on one Redis.

use scoreline_protocol::ServerMessage;
use scoreline_testkit::{RedisServer, TestApp, WsClient};

use crate::subscribe;

const GAME: &str = "football/audience/ars-che";

/// A service on `redis` (or in memory) that counts fans every 100 ms.
async fn counting(redis: Option<&RedisServer>) -> TestApp {
    let mut config = TestApp::config(redis);
    config.audience_interval_millis = 100;
    let app = TestApp::spawn(config).await.unwrap();
    if redis.is_some() {
        app.wait_until_ready(true).await.unwrap();
    }
    app
}

/// Waits until `fan` is told that `fans` watch GAME (earlier counts are skipped).
async fn told(fan: &mut WsClient, fans: u64) {
    fan.recv_until(|message| match message {
        ServerMessage::Watching {
            match_topic,
            fans: count,
        } if match_topic.as_str() == GAME && count == fans => Some(()),
        _ => None,
    })
    .await
    .unwrap_or_else(|error| panic!("never told {fans} fans watch {GAME}: {error}"));
}

#[tokio::test]
async fn fans_watching_a_match_are_counted_over_every_instance_and_told_the_count() {
    let redis = RedisServer::start().unwrap();
    let (one, two) = (counting(Some(&redis)).await, counting(Some(&redis)).await);
    let mut first = one.client().await.unwrap();
    let mut second = two.client().await.unwrap();
    let mut third = two.client().await.unwrap();
    // Following the sport is not watching the match; the page subscribes the match on opening it.
    let mut sport_only = one.client().await.unwrap();
    subscribe(&mut sport_only, &["football"]).await;
    subscribe(&mut first, &["football", GAME]).await;
    subscribe(&mut second, &[GAME]).await;
    subscribe(&mut third, &[GAME]).await;

    told(&mut first, 3).await;
    told(&mut second, 3).await;

    // A fan leaves on the other instance: the count drops everywhere.
    third.close().await.unwrap();
    told(&mut first, 2).await;
    told(&mut second, 2).await;

    // The sport-only fan was never told anything about the match.
    let unexpected = sport_only
        .recv_within(std::time::Duration::from_millis(300))
        .await;
    assert!(
        !matches!(unexpected, Ok(ServerMessage::Watching { .. })),
        "{unexpected:?}"
    );
}

#[tokio::test]
async fn without_redis_an_instance_counts_its_own_fans() {
    let app = counting(None).await;
    let mut first = app.client().await.unwrap();
    let mut second = app.client().await.unwrap();
    subscribe(&mut first, &[GAME]).await;
    told(&mut first, 1).await;
    subscribe(&mut second, &[GAME]).await;
    told(&mut first, 2).await;
    told(&mut second, 2).await;
}
