//! Replaying into a real (private) Redis and recording from it: the contract the service consumes.
//! By default every event goes through the numbering script, so the tests read back gap-free
//! seqs from both the channel and the match's history Stream.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use feed_replayer::fixture::{self, Fixture};
use feed_replayer::plan::{Pace, Plan};
use feed_replayer::publish::{History, Publisher, RedisMode, RedisPublisher};
use feed_replayer::record::{RecordOptions, record};
use feed_replayer::replay::{ReplayOptions, replay_all};
use feed_replayer::validate;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressDrawTarget};
use scoreline_feed::{Layout, read_history};
use scoreline_protocol::{EventKind, MatchTopic, ScoreEvent};
use scoreline_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

fn load(relative: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(relative);
    fixture::read(&path).expect("fixture reads")
}

fn fast(speed: f64) -> ReplayOptions {
    ReplayOptions {
        pace: Pace::new(speed, 0).expect("valid pace"),
        ..ReplayOptions::default()
    }
}

/// A publisher through the numbering script with the service's default layout.
async fn numbered(server: &RedisServer) -> RedisPublisher {
    RedisPublisher::connect(&server.url(), RedisMode::Numbered(Layout::default()))
        .await
        .unwrap()
}

/// Every event in a match's history Stream, oldest first.
async fn history(server: &RedisServer, topic: &MatchTopic) -> Vec<ScoreEvent> {
    let mut connection = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    read_history(&mut connection, &Layout::default(), topic, 0, 100_000)
        .await
        .unwrap()
}

fn seqs(events: &[ScoreEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

fn one_to(count: usize) -> Vec<u64> {
    (1..=count as u64).collect()
}

fn hidden() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
}

/// Waits until Redis reports `count` pattern subscriptions, so nothing published is missed.
async fn wait_for_pattern_subscribers(client: &redis::Client, count: i64) {
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..200 {
        let patterns: i64 = redis::cmd("PUBSUB")
            .arg("NUMPAT")
            .query_async(&mut connection)
            .await
            .unwrap();
        if patterns >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no pattern subscriber appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_concurrent_matches_arrives_in_order_on_its_channel() {
    let server = RedisServer::start().unwrap();
    let client = server.client();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.psubscribe("scores:*").await.unwrap();

    let fixtures = [
        load("football/world-cup-2022-final-arg-fra.jsonl"),
        load("tennis/us-open-2023-women-final-gau-sab.jsonl"),
    ];
    let plans: Vec<Plan> = fixtures
        .iter()
        .map(|fixture| Plan::of(fixture).unwrap())
        .collect();
    let expected_total: usize = plans.iter().map(|plan| plan.events.len()).sum();
    let publisher = numbered(&server).await;
    let outcomes = replay_all(
        plans.clone(),
        Arc::new(Publisher::Redis(Box::new(publisher))),
        fast(100_000.0),
        CancellationToken::new(),
        &hidden(),
    )
    .await
    .unwrap();
    assert_eq!(
        outcomes
            .iter()
            .map(|outcome| outcome.published)
            .sum::<u64>(),
        expected_total as u64
    );

    let mut received: HashMap<String, Vec<ScoreEvent>> = HashMap::new();
    let mut messages = subscriber.on_message();
    for _ in 0..expected_total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("message in time")
            .expect("stream open");
        let event =
            ScoreEvent::from_json(message.get_payload_bytes()).expect("payload is a score event");
        assert_eq!(
            message.get_channel_name(),
            format!("scores:{}", event.match_topic)
        );
        received
            .entry(event.match_topic.to_string())
            .or_default()
            .push(event);
    }
    for plan in &plans {
        let events = &received[plan.match_topic.as_str()];
        assert_eq!(
            seqs(events),
            one_to(plan.events.len()),
            "numbered by Redis from 1, gap-free"
        );
        assert!(events.iter().all(|event| event.epoch == events[0].epoch));
        for (event, planned) in events.iter().zip(&plan.events) {
            assert_eq!(event.clock_secs, planned.clock_secs);
            if !matches!(planned.kind, EventKind::MatchScheduled { .. }) {
                assert_eq!(event.kind, planned.kind);
            }
        }
        assert!(events.windows(2).all(|pair| pair[0].ts_ms <= pair[1].ts_ms));
        assert_eq!(
            &history(&server, &plan.match_topic).await,
            events,
            "the history Stream holds exactly what the channel carried"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_loop_round_starts_a_new_history_with_a_larger_epoch() {
    let server = RedisServer::start().unwrap();
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let plan = Plan::of(&fixture).unwrap();
    let round_len = plan.events.len();
    let mut subscriber = server.client().get_async_pubsub().await.unwrap();
    subscriber
        .subscribe(format!("scores:{}", plan.match_topic))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let replay = tokio::spawn({
        let publisher = Arc::new(Publisher::Redis(Box::new(numbered(&server).await)));
        let cancel = cancel.clone();
        let options = ReplayOptions {
            looping: true,
            loop_pause: Duration::from_millis(100),
            ..fast(1_000_000.0)
        };
        async move { replay_all(vec![plan], publisher, options, cancel, &hidden()).await }
    });
    // Two whole rounds and the first event of a third.
    let mut events = Vec::new();
    let mut messages = subscriber.on_message();
    while events.len() < 2 * round_len + 1 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("message in time")
            .expect("stream open");
        events.push(ScoreEvent::from_json(message.get_payload_bytes()).unwrap());
    }
    cancel.cancel();
    let outcomes = replay.await.unwrap().unwrap();
    assert!(outcomes[0].rounds >= 3);
    let rounds: Vec<&[ScoreEvent]> = events.chunks(round_len).collect();
    for round in &rounds {
        assert_eq!(seqs(round), one_to(round.len()), "each round counts from 1");
        assert!(round.iter().all(|event| event.epoch == round[0].epoch));
    }
    assert!(rounds[0][0].epoch < rounds[1][0].epoch && rounds[1][0].epoch < rounds[2][0].epoch);
    let kept = history(&server, &fixture.header.match_topic).await;
    assert!(
        kept.iter().all(|event| event.epoch >= rounds[2][0].epoch),
        "a new round's history replaces the old one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mode_publishes_the_replayers_numbering_and_keeps_no_history() {
    let server = RedisServer::start().unwrap();
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let plan = Plan::of(&fixture).unwrap();
    let mut subscriber = server.client().get_async_pubsub().await.unwrap();
    subscriber
        .subscribe(format!("scores:{}", plan.match_topic))
        .await
        .unwrap();
    let publisher = RedisPublisher::connect(
        &server.url(),
        RedisMode::Plain {
            channel_prefix: "scores:".into(),
        },
    )
    .await
    .unwrap();
    replay_all(
        vec![plan.clone()],
        Arc::new(Publisher::Redis(Box::new(publisher))),
        fast(1_000_000.0),
        CancellationToken::new(),
        &hidden(),
    )
    .await
    .unwrap();
    let mut messages = subscriber.on_message();
    let mut events = Vec::new();
    for _ in 0..plan.events.len() {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("message in time")
            .expect("stream open");
        events.push(ScoreEvent::from_json(message.get_payload_bytes()).unwrap());
    }
    assert_eq!(
        seqs(&events),
        plan.events
            .iter()
            .map(|planned| planned.seq)
            .collect::<Vec<_>>()
    );
    assert!(history(&server, &plan.match_topic).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_recognises_an_event_whose_publish_went_through() {
    let server = RedisServer::start().unwrap();
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let plan = Plan::of(&fixture).unwrap();
    let publisher = Publisher::Redis(Box::new(numbered(&server).await));
    let first = plan.stamp(0, 1, 0, 1_000);
    let second = plan.stamp(1, 1, 0, 1_001);
    assert_eq!(publisher.find_published(&first, None).await, None);
    let published = publisher.publish(&first, History::StartNew).await.unwrap();
    assert_eq!(published.seq, 1);
    // As if the answer to that publish had been lost: the retry finds it in the history.
    assert_eq!(
        publisher.find_published(&first, None).await,
        Some(published.clone())
    );
    // An event not yet published, or one already confirmed, is not taken for the retried one.
    let confirmed = Some((published.epoch, published.seq));
    assert_eq!(publisher.find_published(&second, confirmed).await, None);
    assert_eq!(publisher.find_published(&first, confirmed).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_replay_validates_and_matches_the_original() {
    let server = RedisServer::start().unwrap();
    let client = server.client();
    let out = tempfile::tempdir().unwrap();
    let speed = 10_000.0;
    let options = RecordOptions {
        out_dir: out.path().to_path_buf(),
        topic: None,
        channel_prefix: "scores:".into(),
        time_scale: speed,
        stop_after_matches: Some(2),
    };
    let recording = {
        let redis = server.connection();
        tokio::spawn(
            async move { record(&redis, &options, CancellationToken::new(), |_| {}).await },
        )
    };
    wait_for_pattern_subscribers(&client, 1).await;

    let originals = [
        load("football/champions-league-2005-final-mil-liv.jsonl"),
        load("basketball/nba-finals-2016-game-7-gsw-cle.jsonl"),
    ];
    let plans: Vec<Plan> = originals
        .iter()
        .map(|fixture| Plan::of(fixture).unwrap())
        .collect();
    let publisher = numbered(&server).await;
    replay_all(
        plans,
        Arc::new(Publisher::Redis(Box::new(publisher))),
        fast(speed),
        CancellationToken::new(),
        &hidden(),
    )
    .await
    .unwrap();

    let summary = tokio::time::timeout(Duration::from_secs(20), recording)
        .await
        .expect("recording ends")
        .unwrap()
        .unwrap();
    assert_eq!(summary.written.len(), 2);
    for original in &originals {
        let topic = &original.header.match_topic;
        let path = out
            .path()
            .join(topic.sport_slug())
            .join(topic.competition_slug())
            .join(format!("{}.jsonl", topic.match_slug()));
        let recorded = fixture::read(&path).unwrap_or_else(|error| panic!("{error}"));
        validate::check(&recorded).unwrap_or_else(|problems| panic!("{problems:?}"));
        assert_eq!(recorded.header.home, original.header.home);
        assert_eq!(recorded.header.result.score, original.header.result.score);
        assert_eq!(recorded.header.result.winner, original.header.result.winner);
        let kinds = |fixture: &Fixture| {
            fixture
                .events
                .iter()
                .map(|event| event.kind.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&recorded), kinds(original));
        // Timing comes back to within the scheduler's millisecond times the speed-up, plus slack
        // for a busy machine.
        for (recorded, original) in recorded.events.iter().zip(&original.events) {
            assert!(
                recorded.offset_ms.abs_diff(original.offset_ms) <= 600_000,
                "{} vs {}",
                recorded.offset_ms,
                original.offset_ms
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_reported_before_anything_starts() {
    let mut server = RedisServer::start().unwrap();
    let url = server.url();
    server.stop();
    let error = RedisPublisher::connect(&url, RedisMode::Numbered(Layout::default()))
        .await
        .err()
        .expect("connect fails");
    assert!(error.is_transient());
    assert!(
        error
            .to_string()
            .contains(&format!("127.0.0.1:{}", server.port())),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_rides_out_a_redis_restart() {
    let mut server = RedisServer::start().unwrap();
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let plan = Plan::of(&fixture).unwrap();
    let topic = plan.match_topic.clone();
    let publisher = Arc::new(Publisher::Redis(Box::new(numbered(&server).await)));
    // Kill Redis, start the replay, bring Redis back a moment later: the first publishes fail,
    // are retried, and the whole match still goes out.
    server.stop();
    let replay = tokio::spawn({
        let publisher = Arc::clone(&publisher);
        async move {
            replay_all(
                vec![plan],
                publisher,
                fast(1_000_000.0),
                CancellationToken::new(),
                &hidden(),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.start_again().unwrap();
    let outcomes = tokio::time::timeout(Duration::from_secs(20), replay)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcomes[0].published, fixture.events.len() as u64 + 1);
    // This Redis keeps no data over a restart, and it was down before the first event, so
    // every event is in the history it has now, numbered from 1 without a gap or a duplicate.
    assert_eq!(
        seqs(&history(&server, &topic).await),
        one_to(fixture.events.len() + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_resubscribes_after_a_redis_restart() {
    let mut server = RedisServer::start().unwrap();
    let client = server.client();
    let out = tempfile::tempdir().unwrap();
    let options = RecordOptions {
        out_dir: out.path().to_path_buf(),
        topic: Some(scoreline_protocol::Topic::parse("football").unwrap()),
        channel_prefix: "scores:".into(),
        time_scale: 1.0,
        stop_after_matches: Some(1),
    };
    let recording = {
        let redis = server.connection();
        tokio::spawn(
            async move { record(&redis, &options, CancellationToken::new(), |_| {}).await },
        )
    };
    wait_for_pattern_subscribers(&client, 1).await;
    server.stop();
    server.start_again().unwrap();
    // The recorder notices, resubscribes, and records a whole match published afterwards.
    wait_for_pattern_subscribers(&client, 1).await;
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let publisher = numbered(&server).await;
    replay_all(
        vec![Plan::of(&fixture).unwrap()],
        Arc::new(Publisher::Redis(Box::new(publisher))),
        fast(1_000_000.0),
        CancellationToken::new(),
        &hidden(),
    )
    .await
    .unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), recording)
        .await
        .expect("recording ends")
        .unwrap()
        .unwrap();
    assert_eq!(summary.written.len(), 1);
    let recorded = fixture::read(&summary.written[0]).unwrap();
    assert_eq!(recorded.events.len(), fixture.events.len());
    validate::check(&recorded).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_through_the_real_service_numbers_every_draft_and_each_run_starts_afresh() {
    let server = RedisServer::start().unwrap();
    let app = scoreline_testkit::TestApp::with_redis(&server)
        .await
        .unwrap();
    let fixture = load("football/champions-league-1999-final-mun-bay.jsonl");
    let plan = Plan::of(&fixture).unwrap();
    let mut epochs = Vec::new();
    for _run in 0..2 {
        let publisher = feed_replayer::publish::HttpPublisher::new(
            &app.http_url(""),
            scoreline_testkit::TEST_TOKEN,
        );
        let outcomes = replay_all(
            vec![plan.clone()],
            Arc::new(Publisher::Http(publisher)),
            fast(1_000_000.0),
            CancellationToken::new(),
            &hidden(),
        )
        .await
        .unwrap();
        assert_eq!(
            outcomes[0].snapshot.score, fixture.header.result.score,
            "the display follows the events as the service numbered them"
        );
        let kept = history(&server, &plan.match_topic).await;
        assert_eq!(seqs(&kept), one_to(plan.events.len()));
        assert!(kept.iter().all(|event| event.epoch == kept[0].epoch));
        epochs.push(kept[0].epoch);
    }
    assert!(
        epochs[0] < epochs[1],
        "?new_history=true gave the second run a larger epoch: {epochs:?}"
    );
}
