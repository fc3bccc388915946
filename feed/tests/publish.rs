//! The numbering publish against a real (private) Redis.

// Test helpers fail the test on any error, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use scoreline_feed::{Layout, Publisher, read_history, read_recent_history};
use scoreline_protocol::{EventDraft, EventKind, MatchTopic, ScoreEvent, Side};
use scoreline_testkit::{RedisServer, goal};

const GAME: &str = "football/premier-league/ars-che";

fn draft(kind: EventKind) -> EventDraft {
    EventDraft {
        match_topic: MatchTopic::parse(GAME).unwrap(),
        ts_ms: 1_740_841_200_000,
        clock_secs: Some(60),
        kind,
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
