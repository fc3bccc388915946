//! Events reach exactly the clients subscribed to them, after their snapshots, in order.

use scoreline_protocol::{ClientMessage, EventKind, ServerMessage, Side, Topic};
use scoreline_testkit::{RedisServer, TestApp, event, goal, goal_by, scheduled};

use crate::{next_event, subscribe, wait_for_seq};

const GAME: &str = "football/premier-league/ars-che";

#[tokio::test]
async fn snapshot_comes_first_then_events_in_seq_order() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    redis
        .publish(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    redis
        .publish(&event(GAME, 2, EventKind::MatchStarted))
        .await
        .unwrap();
    redis
        .publish(&event(GAME, 3, goal_by(Side::Home, "Saka")))
        .await
        .unwrap();
    wait_for_seq(&app, GAME, 3).await;

    let mut client = app.client().await.unwrap();
    let snapshots = subscribe(&mut client, &[GAME]).await;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        (
            snapshots[0].seq,
            snapshots[0].score.home,
            snapshots[0].score.away
        ),
        (3, 1, 0)
    );
    assert_eq!(snapshots[0].home.name, "ARS");

    for seq in 4..=8 {
        redis
            .publish(&event(GAME, seq, goal(Side::Away)))
            .await
            .unwrap();
    }
    for seq in 4..=8 {
        assert_eq!(next_event(&mut client).await.seq, seq);
    }
}

#[tokio::test]
async fn prefix_subscriptions_cover_every_match_below_them() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut sport = app.client().await.unwrap();
    let mut competition = app.client().await.unwrap();
    let mut tennis = app.client().await.unwrap();
    subscribe(&mut sport, &["football"]).await;
    subscribe(&mut competition, &["football/premier-league"]).await;
    subscribe(&mut tennis, &["tennis"]).await;

    redis
        .publish(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    redis
        .publish(&event(
            "football/la-liga/rma-fcb",
            1,
            EventKind::MatchStarted,
        ))
        .await
        .unwrap();
    redis
        .publish(&event(
            "tennis/wimbledon/alc-djo",
            1,
            EventKind::MatchStarted,
        ))
        .await
        .unwrap();
    // A sentinel on a topic every client follows tells us each has seen all it will see.
    redis
        .publish(&event(
            "football/premier-league/liv-eve",
            1,
            EventKind::MatchStarted,
        ))
        .await
        .unwrap();
    redis
        .publish(&event(
            "tennis/wimbledon/sin-zve",
            1,
            EventKind::MatchStarted,
        ))
        .await
        .unwrap();

    let topics = |events: Vec<scoreline_protocol::ScoreEvent>| {
        events
            .into_iter()
            .map(|event| event.match_topic.to_string())
            .collect::<Vec<_>>()
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_event(&mut sport).await);
    }
    assert_eq!(
        topics(seen),
        [
            GAME,
            "football/la-liga/rma-fcb",
            "football/premier-league/liv-eve"
        ]
    );
    let seen = vec![
        next_event(&mut competition).await,
        next_event(&mut competition).await,
    ];
    assert_eq!(topics(seen), [GAME, "football/premier-league/liv-eve"]);
    let seen = vec![next_event(&mut tennis).await, next_event(&mut tennis).await];
    assert_eq!(
        topics(seen),
        ["tennis/wimbledon/alc-djo", "tennis/wimbledon/sin-zve"]
    );
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_each_event_once() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football", GAME, "football/premier-league"]).await;
    app.publish_http(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    app.publish_http(&event(GAME, 2, goal(Side::Home)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.seq, 1);
    assert_eq!(next_event(&mut client).await.seq, 2);
}

#[tokio::test]
async fn unsubscribe_stops_the_topic_and_keeps_the_others() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    let other = "tennis/wimbledon/alc-djo";
    subscribe(&mut client, &[GAME, other]).await;
    let topic = Topic::parse(GAME).unwrap();
    client
        .send(&ClientMessage::unsubscribe([&topic]))
        .await
        .unwrap();
    let removed = client
        .recv_until(|message| match message {
            ServerMessage::Unsubscribed { topics } => Some(topics),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(removed, [topic]);

    redis
        .publish(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    redis
        .publish(&event(other, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.match_topic.as_str(), other);
}

#[tokio::test]
async fn two_instances_on_one_redis_both_deliver_and_share_snapshots() {
    let redis = RedisServer::start().unwrap();
    let first = TestApp::with_redis(&redis).await.unwrap();
    let second = TestApp::with_redis(&redis).await.unwrap();
    let mut on_first = first.client().await.unwrap();
    let mut on_second = second.client().await.unwrap();
    subscribe(&mut on_first, &["football"]).await;
    subscribe(&mut on_second, &["football"]).await;

    redis
        .publish(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    redis
        .publish(&event(GAME, 2, goal(Side::Home)))
        .await
        .unwrap();
    for client in [&mut on_first, &mut on_second] {
        assert_eq!(next_event(client).await.seq, 1);
        assert_eq!(next_event(client).await.seq, 2);
    }

    // A third instance started now serves the stored snapshot at once, before any new event.
    let stored = wait_for_stored(&redis, GAME, 2).await;
    assert!(stored);
    let third = TestApp::with_redis(&redis).await.unwrap();
    let reply = third.get(&format!("/api/matches/{GAME}")).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json().unwrap()["seq"], 2);
    assert_eq!(reply.json().unwrap()["score"]["home"], 1);
}

/// Waits until the snapshot of `topic` at `seq` is in Redis (instances write every 250 ms).
pub async fn wait_for_stored(redis: &RedisServer, topic: &str, seq: u64) -> bool {
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for _ in 0..200 {
        let stored: Option<u64> = redis::cmd("HGET")
            .arg(format!("scoreline:match:{topic}"))
            .arg("seq")
            .query_async(&mut connection)
            .await
            .unwrap();
        if stored == Some(seq) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn a_restarted_service_serves_the_same_snapshots() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    redis
        .publish(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    redis
        .publish(&event(GAME, 2, goal(Side::Away)))
        .await
        .unwrap();
    wait_for_seq(&app, GAME, 2).await;
    assert!(wait_for_stored(&redis, GAME, 2).await);
    app.shutdown().await.unwrap();

    let restarted = TestApp::with_redis(&redis).await.unwrap();
    let mut client = restarted.client().await.unwrap();
    let snapshots = subscribe(&mut client, &["football/premier-league"]).await;
    assert_eq!(snapshots.len(), 1);
    assert_eq!((snapshots[0].seq, snapshots[0].score.away), (2, 1));
    // And live events continue from there.
    redis
        .publish(&event(GAME, 3, goal(Side::Home)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.seq, 3);
}

#[tokio::test]
async fn the_in_process_broker_works_end_to_end() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football"]).await;
    let reply = app
        .publish_http(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    app.publish_http(&event(GAME, 2, goal(Side::Home)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.seq, 1);
    let goal_event = next_event(&mut client).await;
    assert_eq!(goal_event.kind, goal(Side::Home));
    assert_eq!(app.get("/readyz").await.unwrap().status, 200);
}

#[tokio::test]
async fn ping_gets_a_pong_with_the_same_id() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = app.client().await.unwrap();
    client.send(&ClientMessage::Ping { id: 42 }).await.unwrap();
    let message = client.recv().await.unwrap();
    assert!(matches!(message, ServerMessage::Pong { id: 42, server_ms } if server_ms > 0));
}

#[tokio::test]
async fn list_returns_the_catalogue_without_subscribing() {
    let app = TestApp::in_memory().await.unwrap();
    app.publish_http(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    app.publish_http(&event(
        "tennis/wimbledon/alc-djo",
        1,
        EventKind::MatchStarted,
    ))
    .await
    .unwrap();
    let mut client = app.client().await.unwrap();
    wait_for_seq(&app, "tennis/wimbledon/alc-djo", 1).await;
    client
        .send(&ClientMessage::List {
            prefix: Some("football".into()),
            status: None,
        })
        .await
        .unwrap();
    let ServerMessage::Catalogue { matches, omitted } = client.recv().await.unwrap() else {
        panic!("expected a catalogue")
    };
    assert_eq!(omitted, 0);
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].home.name, "ARS");
}
