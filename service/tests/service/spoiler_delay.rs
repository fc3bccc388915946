//! Spoiler delay: a fan who subscribes with `delay_secs` gets every event that long after it
//! happened and every snapshot as the match stood that long ago — also right after the service
//! restarts, from the match's history in Redis.

use std::time::Duration;

use redis::aio::ConnectionManager;
use scoreline_feed::{Layout, Publisher};
use scoreline_protocol::{
    ClientMessage, EventDraft, EventKind, MatchSnapshot, ScoreEvent, ServerMessage, Side, Topic,
};
use scoreline_testkit::{DeliveryChecker, RedisServer, TestApp, WsClient, goal, now_ms};

use crate::delivery::wait_for_stored;

const GAME: &str = "football/spoilers/ars-che";

async fn publisher(redis: &RedisServer) -> Publisher<ConnectionManager> {
    let manager = ConnectionManager::new(redis.client()).await.unwrap();
    Publisher::new(manager, Layout::default())
}

async fn happens(publisher: &mut Publisher<ConnectionManager>, kind: EventKind) -> ScoreEvent {
    happened(publisher, kind, 0).await
}

/// Publishes an event that happened `ago_ms` before now (its feed's timestamp says so), so a
/// test needs no sleep for it to be older than a delay.
async fn happened(
    publisher: &mut Publisher<ConnectionManager>,
    kind: EventKind,
    ago_ms: u64,
) -> ScoreEvent {
    let draft = EventDraft {
        ts_ms: now_ms() - ago_ms,
        ..scoreline_testkit::draft(GAME, kind)
    };
    publisher.publish(&draft).await.unwrap()
}

/// Announces GAME and kicks it off, a minute ago.
async fn kicked_off(publisher: &mut Publisher<ConnectionManager>) {
    let announced = scoreline_testkit::scheduled("Arsenal", "Chelsea");
    happened(publisher, announced, 61_000).await;
    happened(publisher, EventKind::MatchStarted, 60_000).await;
}

/// Subscribes to GAME with a delay; returns the reply's delay and the match's snapshot, if any.
async fn subscribe_delayed(client: &mut WsClient, delay_secs: u32) -> (u32, Option<MatchSnapshot>) {
    let game = Topic::parse(GAME).unwrap();
    let request = ClientMessage::subscribe([&game]).delayed(delay_secs);
    client.send(&request).await.unwrap();
    client
        .recv_until(|message| match message {
            ServerMessage::Subscribed {
                snapshots,
                delay_secs,
                ..
            } => Some((delay_secs, snapshots.into_iter().next())),
            _ => None,
        })
        .await
        .unwrap()
}

/// Follows a client until it has seq `until` of GAME, checking continuity; returns every event
/// with the wall-clock time it arrived.
async fn follow(
    client: &mut WsClient,
    checker: &mut DeliveryChecker,
    until: u64,
) -> Vec<(ScoreEvent, u64)> {
    let mut events = Vec::new();
    while checker.position(GAME).is_none_or(|point| point.seq < until) {
        let message = client.recv_within(Duration::from_secs(20)).await.unwrap();
        checker.observe(&message).unwrap();
        if let ServerMessage::Event(event) = message {
            events.push((event, now_ms()));
        }
    }
    events
}

fn score(snapshot: &MatchSnapshot) -> (u64, u32, u32) {
    (snapshot.seq, snapshot.score.home, snapshot.score.away)
}

/// A checker that starts from a `subscribed` reply's snapshot of GAME.
fn checker_from(snapshot: Option<MatchSnapshot>, delay_secs: u32) -> DeliveryChecker {
    let mut checker = DeliveryChecker::default();
    checker
        .observe(&ServerMessage::Subscribed {
            topics: vec![Topic::parse(GAME).unwrap()],
            snapshots: snapshot.into_iter().collect(),
            omitted: 0,
            resumed: Vec::new(),
            delay_secs,
        })
        .unwrap();
    checker
}

#[tokio::test]
async fn a_delayed_fan_gets_each_goal_the_delay_after_it_happened_and_a_live_fan_at_once() {
    const DELAY: u32 = 3;
    const DELAY_MS: u64 = DELAY as u64 * 1_000;
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut feed = publisher(&redis).await;
    kicked_off(&mut feed).await;
    crate::wait_for_seq(&app, GAME, 2).await;

    let mut live = app.client().await.unwrap();
    crate::subscribe(&mut live, &[GAME]).await;
    let mut delayed = app.client().await.unwrap();
    let (delay, snapshot) = subscribe_delayed(&mut delayed, DELAY).await;
    assert_eq!(delay, DELAY);
    assert_eq!(snapshot.as_ref().map(score), Some((2, 0, 0)));

    let goal = happens(&mut feed, goal(Side::Home)).await;
    let arrived = crate::next_event(&mut live).await;
    assert_eq!(arrived.seq, goal.seq);
    assert!(
        now_ms() < goal.ts_ms + DELAY_MS,
        "live fans are not delayed"
    );

    // A fan who joins a second after the goal, 3 s behind, must not see it yet.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut late = app.client().await.unwrap();
    let (_, late_snapshot) = subscribe_delayed(&mut late, DELAY).await;
    if now_ms() < goal.ts_ms + DELAY_MS {
        let seen = late_snapshot.as_ref().map(score);
        assert_eq!(seen, Some((2, 0, 0)), "the goal is not spoiled");
    }

    for (fan, snapshot) in [(&mut delayed, snapshot), (&mut late, late_snapshot)] {
        let mut checker = checker_from(snapshot, DELAY);
        for (event, at) in follow(fan, &mut checker, goal.seq).await {
            assert!(
                at >= event.ts_ms + DELAY_MS,
                "event {} arrived {} ms after it happened, under the 3 s delay",
                event.seq,
                at - event.ts_ms
            );
        }
        let seen = checker.snapshot(GAME).unwrap();
        assert_eq!(score(seen), (3, 1, 0));
        assert_eq!(seen.home.name, "Arsenal");
    }
}

#[tokio::test]
async fn changing_the_delay_resends_the_match_as_of_the_new_one_and_a_delay_too_long_is_refused() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut feed = publisher(&redis).await;
    happens(
        &mut feed,
        scoreline_testkit::scheduled("Arsenal", "Chelsea"),
    )
    .await;
    happens(&mut feed, EventKind::MatchStarted).await;
    let goal = happens(&mut feed, goal(Side::Home)).await;
    crate::wait_for_seq(&app, GAME, goal.seq).await;

    let mut fan = app.client().await.unwrap();
    let live = crate::subscribe(&mut fan, &[GAME]).await;
    assert_eq!(score(&live[0]), (3, 1, 0));
    let (delay, snapshot) = subscribe_delayed(&mut fan, 30).await;
    assert_eq!(
        (delay, snapshot),
        (30, None),
        "30 s ago the match was not announced yet"
    );
    let (delay, snapshot) = subscribe_delayed(&mut fan, 0).await;
    assert_eq!((delay, snapshot.map(|s| score(&s))), (0, Some((3, 1, 0))));

    let game = Topic::parse(GAME).unwrap();
    fan.send(&ClientMessage::subscribe([&game]).delayed(301))
        .await
        .unwrap();
    let refusal = fan.recv().await.unwrap();
    let ServerMessage::Error { code, message, .. } = refusal else {
        panic!("expected an error, got {refusal:?}")
    };
    assert_eq!(code, scoreline_protocol::ErrorCode::BadRequest);
    assert!(message.contains("at most 300"), "{message}");
}

#[tokio::test]
async fn after_a_restart_a_delayed_fan_gets_the_match_as_it_stood_from_the_redis_history() {
    const DELAY: u32 = 10;
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut feed = publisher(&redis).await;
    // The kick-off is older than the delay, so the fan has something to see.
    kicked_off(&mut feed).await;
    let goal = happens(&mut feed, goal(Side::Home)).await;
    crate::wait_for_seq(&app, GAME, goal.seq).await;
    assert!(
        wait_for_stored(&redis, GAME, goal.seq).await,
        "the goal is in the stored snapshot"
    );
    app.shutdown().await.unwrap();

    // The restarted service knows the match from the store, goal included; a fan 10 s behind must
    // still get it as it stood 10 s ago.
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut fan = app.client().await.unwrap();
    let (_, snapshot) = subscribe_delayed(&mut fan, DELAY).await;
    let answered_ms = now_ms();
    assert!(
        answered_ms < goal.ts_ms + u64::from(DELAY) * 1_000,
        "the restart took longer than the delay ({} ms): nothing left to check",
        answered_ms - goal.ts_ms
    );
    let snapshot = snapshot.expect("the match was under way 10 s ago");
    assert_eq!(score(&snapshot), (2, 0, 0), "no spoiler after a restart");
    assert_eq!(snapshot.home.name, "Arsenal");

    let mut checker = checker_from(Some(snapshot), DELAY);
    let events = follow(&mut fan, &mut checker, goal.seq).await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0].1 >= goal.ts_ms + u64::from(DELAY) * 1_000,
        "the goal came early"
    );
    assert_eq!(score(checker.snapshot(GAME).unwrap()), (3, 1, 0));
}
