//! The numbering publish against a real (private) Redis.

// Test helpers fail the test on any error, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use scoreline_feed::{
    Layout, Numbered, Position, Publisher, RecoveryKind, number, read_history, read_recent_history,
};
use scoreline_protocol::{EventDraft, EventKind, MatchTopic, ScoreEvent, Side};
use scoreline_testkit::{RedisServer, goal, roll_back_to};

const GAME: &str = "football/premier-league/ars-che";

fn draft(kind: EventKind) -> EventDraft {
    EventDraft {
        ts_ms: 1_740_841_200_000,
        clock_secs: Some(60),
        ..scoreline_testkit::draft(GAME, kind)
    }
}

#[tokio::test]
async fn concurrent_publishers_get_one_gap_free_sequence() {
    let redis = RedisServer::start().unwrap();
    let connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut subscriber = redis.client().get_async_pubsub().await.unwrap();
    subscriber
        .subscribe(format!("scores:{GAME}"))
        .await
        .unwrap();
    let mut messages = subscriber.into_on_message();

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let mut publisher = Publisher::new(connection.clone(), Layout::default());
            tokio::spawn(async move {
                for _ in 0..50 {
                    publisher.publish(&draft(goal(Side::Home))).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let mut seqs = Vec::new();
    let mut epochs = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let message = messages.next().await.unwrap();
        let event = ScoreEvent::from_json(message.get_payload_bytes()).unwrap();
        epochs.insert(event.epoch);
        seqs.push(event.seq);
    }
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "published in seq order, none missing"
    );
    assert_eq!(epochs.len(), 1);

    let mut connection = connection;
    let history = read_history(
        &mut connection,
        &Layout::default(),
        &draft(goal(Side::Home)).match_topic,
        150,
        1000,
    )
    .await
    .unwrap();
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (151..=200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_new_history_has_a_larger_epoch_and_starts_at_one() {
    let redis = RedisServer::start().unwrap();
    let connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut publisher = Publisher::new(connection.clone(), Layout::default());
    let first = publisher
        .publish(&draft(EventKind::MatchStarted))
        .await
        .unwrap();
    let second = publisher.publish(&draft(goal(Side::Away))).await.unwrap();
    assert_eq!((second.epoch, second.seq), (first.epoch, 2));
    let again = publisher
        .publish_new_history(&draft(EventKind::MatchStarted))
        .await
        .unwrap();
    assert!(again.epoch > first.epoch);
    assert_eq!(again.seq, 1);
    let mut connection = connection;
    let topic = MatchTopic::parse(GAME).unwrap();
    let history = read_history(&mut connection, &Layout::default(), &topic, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        history,
        vec![again],
        "the old history is gone with its epoch"
    );
}

#[tokio::test]
async fn the_history_is_bounded_and_keeps_the_newest() {
    let redis = RedisServer::start().unwrap();
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let layout = Layout {
        history_len: 5,
        ..Layout::default()
    };
    let mut publisher = Publisher::new(connection.clone(), layout.clone());
    for _ in 0..12 {
        publisher.publish(&draft(goal(Side::Home))).await.unwrap();
    }
    let topic = MatchTopic::parse(GAME).unwrap();
    let all = read_history(&mut connection, &layout, &topic, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [8, 9, 10, 11, 12]
    );
    let recent = read_recent_history(&mut connection, &layout, &topic, 2)
        .await
        .unwrap();
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), [11, 12]);
}

/// A connection that finds Redis again after it restarts: Scoreline's own (the testkit's).
async fn reconnecting(redis: &RedisServer) -> scoreline_feed::RedisConnection {
    redis.connection()
}

/// Every event of the match's history, oldest first.
async fn whole_history(redis: &RedisServer) -> Vec<ScoreEvent> {
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let topic = MatchTopic::parse(GAME).unwrap();
    read_history(&mut connection, &Layout::default(), &topic, 0, 1000)
        .await
        .unwrap()
}

/// Publishes until Redis answers again (it is restarting).
async fn publish_when_back<C: redis::aio::ConnectionLike + Send>(
    publisher: &mut Publisher<C>,
    draft: &EventDraft,
) -> ScoreEvent {
    for _ in 0..100 {
        match publisher.publish(draft).await {
            Ok(event) => return event,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("Redis never came back")
}

#[tokio::test]
async fn a_redis_that_lost_its_data_gets_the_match_back_before_the_next_event() {
    let mut redis = RedisServer::start().unwrap();
    let mut publisher = Publisher::new(reconnecting(&redis).await, Layout::default());
    let mut published = Vec::new();
    for kind in [EventKind::MatchStarted, goal(Side::Home), goal(Side::Away)] {
        published.push(publisher.publish(&draft(kind)).await.unwrap());
    }
    redis.start_again().unwrap();
    assert!(whole_history(&redis).await.is_empty(), "Redis kept nothing");

    let next = publish_when_back(&mut publisher, &draft(goal(Side::Home))).await;
    assert_eq!(
        (next.epoch, next.seq),
        (published[0].epoch, 4),
        "the same history goes on: no new epoch, no reused seq"
    );
    published.push(next);
    assert_eq!(whole_history(&redis).await, published);
    let recoveries = publisher.recoveries();
    assert_eq!(recoveries.len(), 1);
    assert_eq!(recoveries[0].redis_had, None);
    assert_eq!(
        recoveries[0].how,
        RecoveryKind::Restored { entries: 3 },
        "{recoveries:?}"
    );
}

#[tokio::test]
async fn a_numbering_rolled_back_by_a_failover_is_put_forward_again() {
    let redis = RedisServer::start().unwrap();
    let connection = reconnecting(&redis).await;
    let mut publisher = Publisher::new(connection.clone(), Layout::default());
    let mut published = Vec::new();
    for _ in 0..5 {
        published.push(publisher.publish(&draft(goal(Side::Home))).await.unwrap());
    }
    // What a replica that missed the last two writes holds once promoted: seq 3, history 1..3.
    let mut raw = connection.clone();
    roll_back_to(&mut raw, &Layout::default(), &published[..3])
        .await
        .unwrap();

    let next = publisher.publish(&draft(goal(Side::Away))).await.unwrap();
    assert_eq!(next.seq, 6, "seqs 4 and 5 are not reused for other events");
    published.push(next);
    assert_eq!(whole_history(&redis).await, published);
    assert_eq!(
        publisher.recoveries()[0]
            .redis_had
            .map(|position| position.seq),
        Some(3)
    );
}

#[tokio::test]
async fn the_script_numbers_nothing_when_redis_forgot_what_the_caller_expects() {
    let redis = RedisServer::start().unwrap();
    let mut connection = reconnecting(&redis).await;
    let layout = Layout::default();
    let expect = Position { epoch: 7, seq: 12 };
    let answer = number(
        &mut connection,
        &layout,
        &draft(goal(Side::Home)),
        false,
        Some(expect),
    )
    .await
    .unwrap();
    assert_eq!(answer, Numbered::Forgotten { redis: None });
    assert!(whole_history(&redis).await.is_empty(), "nothing recorded");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing numbered: {keys:?}");
}

#[tokio::test]
async fn a_match_started_over_by_someone_else_is_published_again_as_the_newest_history() {
    let redis = RedisServer::start().unwrap();
    let connection = reconnecting(&redis).await;
    let mut ours = Publisher::new(connection.clone(), Layout::default());
    let first = ours.publish(&draft(EventKind::MatchStarted)).await.unwrap();
    ours.publish(&draft(goal(Side::Home))).await.unwrap();
    // Another feed, with no memory of ours, starts the match over.
    let mut other = Publisher::new(connection.clone(), Layout::default());
    let theirs = other
        .publish_new_history(&draft(EventKind::MatchStarted))
        .await
        .unwrap();
    assert!(theirs.epoch > first.epoch);

    let next = ours.publish(&draft(goal(Side::Away))).await.unwrap();
    assert!(next.epoch > theirs.epoch, "ours is the newest history now");
    let history = whole_history(&redis).await;
    assert_eq!(
        history.iter().map(|event| event.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(history[2], next);
    assert_eq!(
        ours.recoveries()[0].how,
        RecoveryKind::Republished { events: 2 }
    );
}
