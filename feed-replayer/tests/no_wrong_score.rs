//! Never a wrong score: every recorded match replayed through real Redis and the real service,
//! with Redis forgetting everything or the service away while a new history starts, must end at
//! the fixture's recorded result, names included, for every kind of client.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fixtures, wrong};
use feed_replayer::fixture::{self, Fixture};
use feed_replayer::plan::{Pace, Plan};
use feed_replayer::publish::{Publisher, RedisMode, RedisPublisher};
use feed_replayer::replay::{ReplayOptions, replay_all};
use indicatif::{MultiProgress, ProgressDrawTarget};
use scoreline_feed::{Layout, Position, read_heads};
use scoreline_protocol::{ClientMessage, MatchSnapshot, ServerMessage, Topic};
use scoreline_testkit::{DeliveryChecker, RedisServer, TestApp, WsClient};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn every_sport() -> Vec<Topic> {
    ["football", "basketball", "tennis"]
        .iter()
        .map(|topic| Topic::parse(topic).unwrap())
        .collect()
}

/// A fan's connection, reading in the background: every message goes through a checker that
/// fails on a silent gap, a duplicate or a reordering, and builds the match as the fan sees it.
struct Fan {
    checker: Arc<Mutex<DeliveryChecker>>,
    reader: JoinHandle<anyhow::Result<()>>,
}

impl Fan {
    /// Connects and subscribes to every sport, resuming from `checker`'s positions.
    async fn join(app: &TestApp, checker: DeliveryChecker) -> Fan {
        let mut client = app.client().await.unwrap();
        let request = ClientMessage::resume(&every_sport(), checker.resume_points());
        client.send(&request).await.unwrap();
        let checker = Arc::new(Mutex::new(checker));
        let shared = Arc::clone(&checker);
        let reader = tokio::spawn(async move { read_forever(&mut client, &shared).await });
        Fan { checker, reader }
    }

    /// Drops the connection (as a phone losing its network does) and keeps what it showed.
    async fn leave(self) -> DeliveryChecker {
        self.reader.abort();
        assert!(
            self.reader.await.is_err_and(|error| error.is_cancelled()),
            "the fan's reader failed before it left"
        );
        self.checker.lock().unwrap().clone()
    }

    /// What the fan sees now; fails with the reason if the connection ended or the checker
    /// found a broken guarantee.
    async fn shows(&mut self) -> DeliveryChecker {
        if self.reader.is_finished() {
            let ended = (&mut self.reader).await;
            panic!("the fan's connection ended: {ended:?}");
        }
        self.checker.lock().unwrap().clone()
    }
}

async fn read_forever(
    client: &mut WsClient,
    checker: &Mutex<DeliveryChecker>,
) -> anyhow::Result<()> {
    loop {
        // A fan may hear nothing for a while (a quiet match, a service restarting): that is
        // not a failure, so only the caller's deadline ends the wait.
        let message = client.recv_within(Duration::from_secs(3600)).await?;
        if let ServerMessage::Error { message, .. } = &message {
            anyhow::bail!("the service refused a request: {message}");
        }
        checker.lock().unwrap().observe(&message)?;
    }
}

/// Waits until every fixture shows its recorded result for `fan`, or fails with what is wrong.
async fn wait_for_results(fan: &mut Fan, fixtures: &[Fixture], who: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shows = fan.shows().await;
        let wrong: Vec<String> = fixtures
            .iter()
            .filter_map(|fixture| {
                let topic = fixture.header.match_topic.as_str();
                wrong(shows.snapshot(topic), fixture).map(|what| format!("{topic}: {what}"))
            })
            .collect();
        if wrong.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{who} ends with wrong scores:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `GET /api/matches/<topic>` says of each fixture must be its recorded result too.
async fn assert_api_agrees(app: &TestApp, fixtures: &[Fixture]) {
    for fixture in fixtures {
        let topic = &fixture.header.match_topic;
        let reply = app.get(&format!("/api/matches/{topic}")).await.unwrap();
        assert_eq!(reply.status, 200, "{topic}: {}", reply.body);
        let snapshot: MatchSnapshot = serde_json::from_str(&reply.body).unwrap();
        if let Some(what) = wrong(Some(&snapshot), fixture) {
            panic!("GET /api/matches/{topic} {what}");
        }
    }
}

/// Where `fixture`'s match stands in Redis's numbering.
async fn head(redis: &RedisServer, fixture: &Fixture) -> Position {
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let heads = read_heads(&mut connection, &Layout::default(), 100)
        .await
        .unwrap();
    heads
        .into_iter()
        .find(|(topic, _)| *topic == fixture.header.match_topic)
        .map(|(_, position)| position)
        .unwrap_or_else(|| panic!("Redis does not number {}", fixture.header.match_topic))
}

async fn replayer(redis: &RedisServer) -> Arc<Publisher> {
    let publisher = RedisPublisher::connect(&redis.url(), RedisMode::Numbered(Layout::default()))
        .await
        .unwrap();
    Arc::new(Publisher::Redis(Box::new(publisher)))
}

fn replay(
    fixtures: &[Fixture],
    publisher: Arc<Publisher>,
    pace: Pace,
) -> JoinHandle<Vec<feed_replayer::replay::MatchOutcome>> {
    let plans: Vec<Plan> = fixtures
        .iter()
        .map(|fixture| Plan::of(fixture).unwrap())
        .collect();
    let options = ReplayOptions {
        pace,
        ..ReplayOptions::default()
    };
    tokio::spawn(async move {
        let hidden = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        replay_all(plans, publisher, options, CancellationToken::new(), &hidden)
            .await
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_its_data_mid_replay_leaves_every_score_right() {
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), 9, "every recorded match");
    let mut redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut stays = Fan::join(&app, DeliveryChecker::default()).await;
    let reconnects = Fan::join(&app, DeliveryChecker::default()).await;

    // About 12 s for the longest match (a five-set final); Redis loses everything once the fan
    // who stays has seen a quarter of all the events, so every match is under way.
    let replay = replay(
        &fixtures,
        replayer(&redis).await,
        Pace::new(1_000.0, 0).unwrap(),
    );
    let quarter = fixtures.iter().map(|f| f.events.len() as u64).sum::<u64>() / 4;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shows = stays.shows().await;
        let seen: u64 = fixtures
            .iter()
            .map(|f| shows.events(f.header.match_topic.as_str()))
            .sum();
        if seen >= quarter {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay never got a quarter of the way: {seen} of {quarter} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let away = reconnects.leave().await;
    redis.stop();
    app.wait_until_ready(false).await.unwrap();
    redis.start_again().unwrap();
    app.wait_until_ready(true).await.unwrap();
    let mut reconnects = Fan::join(&app, away).await;

    let outcomes = replay.await.unwrap();
    assert_eq!(outcomes.len(), fixtures.len());
    let mut late = Fan::join(&app, DeliveryChecker::default()).await;

    wait_for_results(&mut stays, &fixtures, "the fan who stayed connected").await;
    wait_for_results(
        &mut reconnects,
        &fixtures,
        "the fan who reconnected and resumed",
    )
    .await;
    wait_for_results(&mut late, &fixtures, "the fan who subscribed afterwards").await;
    assert_api_agrees(&app, &fixtures).await;
    // Nothing had to be replaced under the fans: Redis got each match back as it was.
    assert_eq!(
        stays.shows().await.total_resyncs(),
        0,
        "resyncs for the fan who stayed"
    );
    assert_eq!(
        reconnects.shows().await.total_resyncs(),
        0,
        "resyncs for the fan who resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_history_started_while_the_service_was_down_is_read_from_its_start() {
    let fixture = fixture::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/football/synthetic-seed-8.jsonl"),
    )
    .unwrap();
    let fixtures = vec![fixture];
    let redis = RedisServer::start().unwrap();
    let publisher = replayer(&redis).await;

    // The whole match once, with the service watching.
    let app = TestApp::with_redis(&redis).await.unwrap();
    replay(
        &fixtures,
        Arc::clone(&publisher),
        Pace::new(1_000_000.0, 0).unwrap(),
    )
    .await
    .unwrap();
    let mut fan = Fan::join(&app, DeliveryChecker::default()).await;
    wait_for_results(&mut fan, &fixtures, "the fan of the first round").await;
    drop(fan.leave().await);
    app.shutdown().await.unwrap();

    // The service is down while the match starts over from its 70th minute: a new epoch whose
    // earlier events are published at once.
    let first_epoch = head(&redis, &fixtures[0]).await;
    let second_round = replay(
        &fixtures,
        Arc::clone(&publisher),
        Pace::new(600.0, 70 * 60 * 1000).unwrap(),
    );
    // Until the new history exists in Redis, so the service starts after it began.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while head(&redis, &fixtures[0]).await.epoch == first_epoch.epoch {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second round never started a new history"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut fan = Fan::join(&app, DeliveryChecker::default()).await;
    second_round.await.unwrap();

    wait_for_results(&mut fan, &fixtures, "the fan of the restarted service").await;
    assert_api_agrees(&app, &fixtures).await;
}
