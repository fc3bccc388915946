//! Redis Sentinel: the replayer and the service both given a `redis+sentinel://` URL, the master
//! killed mid-replay of every fixture, with the replica in sync or lagging behind. Without a
//! restart of anything, a fan who stayed subscribed gets every critical event in order, and every
//! match ends at its recorded result, names included.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fixtures, wrong};
use feed_replayer::fixture::{self, Fixture};
use feed_replayer::plan::{Pace, Plan};
use feed_replayer::publish::{Publisher, RedisMode, RedisPublisher};
use feed_replayer::replay::{MatchOutcome, ReplayOptions, replay_all};
use indicatif::{MultiProgress, ProgressDrawTarget};
use scoreline_feed::{Layout, RecoveryKind};
use scoreline_protocol::{ClientMessage, MatchSnapshot, ServerMessage, Topic};
use scoreline_testkit::{DeliveryChecker, SentinelSetup, TestApp, WsClient};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a condition the test waits for may take (failovers included) before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// The plans as replayed: the fixture's events plus a clock reading every game minute, so that
/// coalescable events are mixed in as in production.
fn plans(fixtures: &[Fixture]) -> Vec<Plan> {
    fixtures
        .iter()
        .map(|fixture| Plan::of(fixture).unwrap().with_clock_ticks(60))
        .collect()
}

/// What a fan sees: the delivery checker (no silent gap, duplicate or reordering; the match as
/// built by the reducer) and every event received, per match.
#[derive(Default)]
struct Seen {
    checker: DeliveryChecker,
    events: BTreeMap<String, Vec<scoreline_protocol::ScoreEvent>>,
}

/// A fan subscribed to every sport before anything is published, reading in the background.
struct Fan {
    seen: Arc<Mutex<Seen>>,
    reader: JoinHandle<anyhow::Result<()>>,
}

impl Fan {
    async fn join(app: &TestApp) -> Fan {
        let mut client = app.client().await.unwrap();
        let sports: Vec<Topic> = ["football", "basketball", "tennis"]
            .iter()
            .map(|topic| Topic::parse(topic).unwrap())
            .collect();
        client
            .send(&ClientMessage::resume(&sports, BTreeMap::new()))
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        let reader = tokio::spawn(async move { read_forever(&mut client, &shared).await });
        Fan { seen, reader }
    }

    /// Fails with the reason if the connection ended or a guarantee broke.
    fn check(&mut self) {
        if self.reader.is_finished() {
            let reader = std::mem::replace(&mut self.reader, tokio::spawn(async { Ok(()) }));
            let ended = futures_util::FutureExt::now_or_never(reader);
            panic!("the fan's connection ended: {ended:?}");
        }
    }

    fn events(&mut self) -> u64 {
        self.check();
        let seen = self.seen.lock().unwrap();
        seen.events.values().map(|events| events.len() as u64).sum()
    }

    /// Waits until the fan has received `count` events in all.
    async fn wait_for_events(&mut self, count: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.events() < count {
            assert!(
                Instant::now() < deadline,
                "the fan got {} events, not {count}, within {PATIENCE:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read_forever(client: &mut WsClient, seen: &Mutex<Seen>) -> anyhow::Result<()> {
    loop {
        // The replay may go quiet for a while (a failover): only the test's deadlines end this.
        let message = client.recv_within(Duration::from_secs(3600)).await?;
        if let ServerMessage::Error { message, .. } = &message {
            anyhow::bail!("the service refused a request: {message}");
        }
        let mut seen = seen.lock().unwrap();
        seen.checker.observe(&message)?;
        if let ServerMessage::Event(event) = message {
            let topic = event.match_topic.to_string();
            seen.events.entry(topic).or_default().push(event);
        }
    }
}

/// Waits until the fan shows every fixture's recorded result, then checks that it got every
/// critical event of every match once, in the plan's order, and no resync.
async fn assert_fan_saw_everything(fan: &mut Fan, fixtures: &[Fixture], plans: &[Plan]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        fan.check();
        let wrong: Vec<String> = {
            let seen = fan.seen.lock().unwrap();
            fixtures
                .iter()
                .filter_map(|fixture| {
                    let topic = fixture.header.match_topic.as_str();
                    wrong(seen.checker.snapshot(topic), fixture)
                        .map(|what| format!("{topic}: {what}"))
                })
                .collect()
        };
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fan ends with wrong scores:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = fan.seen.lock().unwrap();
    assert_eq!(seen.checker.total_resyncs(), 0, "no resync was needed");
    for plan in plans {
        let topic = plan.match_topic.to_string();
        let planned: Vec<&str> = plan
            .events
            .iter()
            .filter(|event| event.kind.is_critical())
            .map(|event| event.kind.name())
            .collect();
        let received = seen
            .events
            .get(&topic)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let critical: Vec<&str> = received
            .iter()
            .filter(|event| event.kind.is_critical())
            .map(|event| event.kind.name())
            .collect();
        assert_eq!(
            critical, planned,
            "{topic}: the critical events received are not the plan's, once each, in order"
        );
        let epochs: std::collections::BTreeSet<u64> =
            received.iter().map(|event| event.epoch).collect();
        assert_eq!(
            epochs.len(),
            1,
            "{topic}: one history throughout: {epochs:?}"
        );
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

/// The replayer as `feed-replayer replay --redis-url redis+sentinel://…` runs it.
async fn replayer(setup: &SentinelSetup) -> Arc<Publisher> {
    let publisher = RedisPublisher::connect(&setup.url(), RedisMode::Numbered(Layout::default()))
        .await
        .unwrap();
    Arc::new(Publisher::Redis(Box::new(publisher)))
}

fn replay(
    plans: Vec<Plan>,
    publisher: Arc<Publisher>,
    speed: f64,
) -> JoinHandle<Vec<MatchOutcome>> {
    let options = ReplayOptions {
        pace: Pace::new(speed, 0).unwrap(),
        // Longer than any failover here; a replay that gives up fails the test.
        retry_for: Duration::from_secs(30),
        ..ReplayOptions::default()
    };
    tokio::spawn(async move {
        let hidden = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        replay_all(plans, publisher, options, CancellationToken::new(), &hidden)
            .await
            .unwrap()
    })
}

fn recoveries(publisher: &Publisher) -> Vec<scoreline_feed::Recovery> {
    match publisher {
        Publisher::Redis(redis) => redis.recoveries(),
        _ => unreachable!("the replayer publishes into Redis"),
    }
}

/// Every match's events published so far, counted by the fan: the replay is under way.
fn total_planned(plans: &[Plan]) -> u64 {
    plans.iter().map(|plan| plan.events.len() as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_a_failover_mid_replay_without_a_restart() {
    let fixtures = fixtures();
    let plans = plans(&fixtures);
    let mut setup = SentinelSetup::start().await.unwrap();
    let app = TestApp::with_sentinel(&setup).await.unwrap();
    let mut fan = Fan::join(&app).await;
    let publisher = replayer(&setup).await;
    // About 12 s for the longest match (a five-set final).
    let replay = replay(plans.clone(), Arc::clone(&publisher), 1_000.0);

    // A quarter in, the master dies.
    fan.wait_for_events(total_planned(&plans) / 4).await;
    let old = setup.kill_master().await.unwrap();
    app.wait_until_ready(false).await.unwrap();
    let new = setup.wait_for_new_master(old).await.unwrap();
    assert_ne!(new, old);
    app.wait_until_ready(true).await.unwrap();

    let outcomes = replay.await.unwrap();
    assert_eq!(outcomes.len(), fixtures.len());
    assert_fan_saw_everything(&mut fan, &fixtures, &plans).await;
    assert_api_agrees(&app, &fixtures).await;
    // The replica had everything: nothing had to be put back in a new epoch.
    assert!(
        recoveries(&publisher)
            .iter()
            .all(|recovery| matches!(recovery.how, RecoveryKind::Restored { .. })),
        "{:?}",
        recoveries(&publisher)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_replica_that_missed_writes_loses_no_critical_event() {
    let fixtures = fixtures();
    let plans = plans(&fixtures);
    let mut setup = SentinelSetup::start().await.unwrap();
    let app = TestApp::with_sentinel(&setup).await.unwrap();
    let mut fan = Fan::join(&app).await;
    let publisher = replayer(&setup).await;
    let replay = replay(plans.clone(), Arc::clone(&publisher), 1_000.0);

    // A fifth in, the replica stops receiving; the fan gets a good number of events more from
    // the master, which the replica will never have; then the master dies and the lagging
    // replica is promoted.
    let total = total_planned(&plans);
    fan.wait_for_events(total / 5).await;
    setup.lag_replica().await.unwrap();
    let seen_before_lag = fan.events();
    fan.wait_for_events(seen_before_lag + total / 10).await;
    let old = setup.kill_master().await.unwrap();
    setup.resume_replica().unwrap();
    let new = setup.wait_for_new_master(old).await.unwrap();
    assert_ne!(new, old);
    app.wait_until_ready(true).await.unwrap();

    let outcomes = replay.await.unwrap();
    assert_eq!(outcomes.len(), fixtures.len());
    // The replayer found matches rolled back on the promoted replica and wrote the missing
    // events back in the same history (that is also the proof that the replica did lag).
    let recoveries = recoveries(&publisher);
    assert!(
        recoveries.iter().any(|recovery| {
            recovery.redis_had.is_some_and(|had| {
                had.epoch == recovery.position.epoch && had.seq < recovery.position.seq
            }) && matches!(recovery.how, RecoveryKind::Restored { entries } if entries > 0)
        }),
        "no match was found rolled back and restored: {recoveries:?}"
    );
    assert!(
        recoveries
            .iter()
            .all(|recovery| matches!(recovery.how, RecoveryKind::Restored { .. })),
        "{recoveries:?}"
    );
    assert_fan_saw_everything(&mut fan, &fixtures, &plans).await;
    assert_api_agrees(&app, &fixtures).await;
}

/// `feed-replayer replay --redis-url redis+sentinel://…`, as an operator types it.
async fn run_binary(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("SCORELINE_PUBLISH_TOKEN")
        .output()
        .await
        .expect("the binary runs")
}

#[tokio::test]
async fn the_binary_publishes_through_sentinel() {
    let setup = SentinelSetup::start().await.unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/football/champions-league-1999-final-mun-bay.jsonl");
    let fixture = fixture::read(&path).unwrap();
    let output = run_binary(&[
        "replay",
        "--redis-url",
        &setup.url(),
        "--speed",
        "1000000",
        "--clock-every-secs",
        "0",
        path.to_str().unwrap(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Everything is in the master's history, numbered 1..n.
    let master = setup.master_port().await.unwrap();
    let mut connection = setup
        .node_client(master)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let history = scoreline_feed::read_history(
        &mut connection,
        &Layout::default(),
        &fixture.header.match_topic,
        0,
        1_000,
    )
    .await
    .unwrap();
    let seqs: Vec<u64> = history.iter().map(|event| event.seq).collect();
    let planned = Plan::of(&fixture).unwrap().events.len() as u64;
    assert_eq!(seqs, (1..=planned).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_redis_url_that_cannot_work_is_refused_before_anything_starts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/football/champions-league-1999-final-mun-bay.jsonl");
    let cases = [
        ("redis+sentinel://127.0.0.1:26379", "names the master"),
        (
            "redis+sentinel://127.0.0.1:0/m",
            "sentinel address `127.0.0.1:0`",
        ),
        ("rediss://127.0.0.1:6380/", "TLS"),
        ("http://127.0.0.1/", "unknown Redis URL scheme"),
    ];
    for (url, expected) in cases {
        let output = run_binary(&["replay", "--redis-url", url, path.to_str().unwrap()]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains("--redis-url"), "{url}: {stderr}");
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{url}: {stderr}");
    }
}
