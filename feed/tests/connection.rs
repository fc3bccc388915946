//! `RedisConnection` against real processes: a private `redis-server`, and a Sentinel setup (a
//! primary, its replica, three sentinels) whose master is killed, demoted, or replaced by a
//! replica that missed writes.

// Test helpers fail the test on any error, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use scoreline_feed::{
    ConnectionSettings, Layout, Position, Publisher, RecoveryKind, RedisConnection, read_history,
};
use scoreline_protocol::{EventDraft, Side};
use scoreline_testkit::{RedisServer, SentinelSetup, goal};
use tokio::time::Instant;

const GAME: &str = "football/premier-league/ars-che";

/// Longer than a failover takes on loopback (down after 1 s, then election and promotion).
const FAILOVER_PATIENCE: Duration = Duration::from_secs(20);

fn settings() -> ConnectionSettings {
    ConnectionSettings {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
    }
}

fn draft() -> EventDraft {
    EventDraft {
        ts_ms: 1_740_841_200_000,
        ..scoreline_testkit::draft(GAME, goal(Side::Home))
    }
}

/// Runs `SET key value` until it succeeds (each failure drops the connection, and the next try
/// connects afresh), failing the test after [`FAILOVER_PATIENCE`]. Returns the failures seen.
async fn set_until_it_works(connection: &RedisConnection, key: &str, value: &str) -> u32 {
    let deadline = Instant::now() + FAILOVER_PATIENCE;
    let mut failures = 0;
    loop {
        let set: redis::RedisResult<()> = connection.clone().set(key, value).await;
        match set {
            Ok(()) => return failures,
            Err(error) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "no write succeeded within {FAILOVER_PATIENCE:?}; last error: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn port_of(node: Option<String>) -> u16 {
    let node = node.expect("connected");
    node.rsplit(':').next().unwrap().parse().unwrap()
}

/// Waits until the master has passed everything written so far to its replica.
async fn replicated(setup: &SentinelSetup) {
    let master = setup.master_port().await.unwrap();
    let mut connection = setup
        .node_client(master)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5_000)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        acknowledged, 1,
        "the replica did not acknowledge the writes"
    );
}

#[tokio::test]
async fn a_plain_connection_reconnects_after_redis_restarts() {
    let mut redis = RedisServer::start().unwrap();
    let connection = RedisConnection::open(&redis.url(), settings()).unwrap();
    let mut commands = connection.clone();
    let _: () = commands.set("k", "1").await.unwrap();
    assert_eq!(connection.connects(), 1);
    assert_eq!(port_of(connection.node()), redis.port());

    redis.stop();
    let failed: redis::RedisResult<String> = commands.get("k").await;
    let error = failed.unwrap_err();
    assert!(
        error.is_io_error() || error.is_connection_dropped(),
        "a dead server is a connection failure: {error}"
    );
    assert_eq!(connection.node(), None, "the broken connection was dropped");
    // Down: every command fails at once, as a connection failure the caller may retry.
    let down: redis::RedisResult<String> = commands.get("k").await;
    assert!(down.unwrap_err().is_io_error());

    redis.start_again().unwrap();
    let _: () = commands.set("k", "2").await.unwrap();
    let value: String = commands.get("k").await.unwrap();
    assert_eq!(value, "2");
    assert_eq!(connection.connects(), 2);
}

#[tokio::test]
async fn a_replica_answering_readonly_gets_its_connection_dropped() {
    let setup = SentinelSetup::start().await.unwrap();
    let master = setup.master_port().await.unwrap();
    let master_client = setup.node_client(master).unwrap();
    // Find the replica's port through the master's own view of its replication.
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(
            &mut master_client
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let replica_port: u16 = info
        .lines()
        .find_map(|line| line.strip_prefix("slave0:"))
        .and_then(|fields| fields.split(',').find_map(|f| f.strip_prefix("port=")))
        .unwrap()
        .parse()
        .unwrap();
    // A plain URL pointing at a replica: writes answer READONLY, and each one makes the
    // connection start over (under Sentinel, that is what finds the new master).
    let connection =
        RedisConnection::open(&format!("redis://127.0.0.1:{replica_port}/"), settings()).unwrap();
    let mut commands = connection.clone();
    let read: Option<String> = commands.get("nothing").await.unwrap();
    assert_eq!(read, None);
    assert_eq!(connection.connects(), 1);
    let write: redis::RedisResult<()> = commands.set("k", "v").await;
    let error = write.unwrap_err();
    assert_eq!(error.code(), Some("READONLY"), "{error}");
    assert_eq!(connection.node(), None);
    let _: Option<String> = commands.get("nothing").await.unwrap();
    assert_eq!(connection.connects(), 2);
    // Inside a script, too (the numbering script is how feeds write).
    let mut publisher = Publisher::new(connection.clone(), Layout::default());
    let error = publisher.publish(&draft()).await.unwrap_err();
    let scoreline_feed::FeedError::Redis(error) = error else {
        panic!("not a Redis error: {error}")
    };
    assert_eq!(error.code(), Some("READONLY"), "{error}");
    assert_eq!(connection.node(), None);
}

#[tokio::test]
async fn a_sentinel_connection_follows_the_master_when_it_is_killed() {
    let mut setup = SentinelSetup::start().await.unwrap();
    let connection = RedisConnection::open(&setup.url(), settings()).unwrap();
    assert!(connection.target().is_sentinel());
    set_until_it_works(&connection, "before", "1").await;
    let first_master = setup.master_port().await.unwrap();
    assert_eq!(port_of(connection.node()), first_master);
    replicated(&setup).await;

    let killed = setup.kill_master().await.unwrap();
    assert_eq!(killed, first_master);
    let failures = set_until_it_works(&connection, "after", "2").await;
    assert!(
        failures > 0,
        "a write cannot succeed while there is no master"
    );
    let new_master = setup.wait_for_new_master(killed).await.unwrap();
    assert_eq!(port_of(connection.node()), new_master);
    let mut commands = connection.clone();
    let before: String = commands.get("before").await.unwrap();
    let after: String = commands.get("after").await.unwrap();
    assert_eq!((before.as_str(), after.as_str()), ("1", "2"));
}

#[tokio::test]
async fn a_demoted_master_is_left_for_the_new_one() {
    let setup = SentinelSetup::start().await.unwrap();
    let connection = RedisConnection::open(&setup.url(), settings()).unwrap();
    set_until_it_works(&connection, "k", "1").await;
    let old_master = port_of(connection.node());
    replicated(&setup).await;

    // The old master stays up as a replica of the new one: a connection still on it would read
    // fine and answer READONLY to writes. (Between the promotion and the demotion, the old master
    // still takes writes, which are then lost: that is what the publisher's ledger is for.)
    setup.failover().await.unwrap();
    let new_master = setup.wait_for_new_master(old_master).await.unwrap();
    set_until_it_works(&connection, "k", "2").await;
    assert_eq!(port_of(connection.node()), new_master);
    let value: String = connection.clone().get("k").await.unwrap();
    assert_eq!(value, "2");
}

#[tokio::test]
async fn a_subscriber_opened_after_a_failover_hears_the_new_master() {
    let mut setup = SentinelSetup::start().await.unwrap();
    let connection = RedisConnection::open(&setup.url(), settings()).unwrap();
    let mut pubsub = connection.open_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    let _: i64 = connection.clone().publish("news", "one").await.unwrap();
    let message = pubsub.on_message().next().await.unwrap();
    assert_eq!(message.get_payload::<String>().unwrap(), "one");

    let old = setup.kill_master().await.unwrap();
    assert!(
        pubsub.on_message().next().await.is_none(),
        "the subscription on the killed master ends"
    );
    let new_master = setup.wait_for_new_master(old).await.unwrap();
    let deadline = Instant::now() + FAILOVER_PATIENCE;
    let mut pubsub = loop {
        match connection.open_pubsub().await {
            Ok(pubsub) => break pubsub,
            Err(error) => {
                assert!(Instant::now() < deadline, "no subscriber: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    pubsub.subscribe("news").await.unwrap();
    set_until_it_works(&connection, "k", "v").await;
    assert_eq!(port_of(connection.node()), new_master);
    let heard: i64 = connection.clone().publish("news", "two").await.unwrap();
    assert_eq!(
        heard, 1,
        "the new subscriber is on the master the publisher uses"
    );
    let message = pubsub.on_message().next().await.unwrap();
    assert_eq!(message.get_payload::<String>().unwrap(), "two");
}

#[tokio::test]
async fn the_publisher_puts_back_what_a_lagging_replica_missed() {
    let mut setup = SentinelSetup::start().await.unwrap();
    let connection = RedisConnection::open(&setup.url(), settings()).unwrap();
    let layout = Layout::default();
    let mut feed = Publisher::new(connection.clone(), layout.clone());
    for expected in 1..=5 {
        assert_eq!(feed.publish(&draft()).await.unwrap().seq, expected);
    }
    replicated(&setup).await;
    setup.lag_replica().await.unwrap();
    for expected in 6..=10 {
        assert_eq!(feed.publish(&draft()).await.unwrap().seq, expected);
    }
    let epoch = read_history(
        &mut connection.clone(),
        &layout,
        &draft().match_topic,
        0,
        100,
    )
    .await
    .unwrap()[0]
        .epoch;
    let old = setup.kill_master().await.unwrap();
    setup.resume_replica().unwrap();
    let new_master = setup.wait_for_new_master(old).await.unwrap();

    // The promoted replica holds the match only up to seq 5: proof that it lagged.
    let mut promoted = setup
        .node_client(new_master)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let held: Option<u64> = promoted
        .hget(layout.sequence_key(&draft().match_topic), "seq")
        .await
        .unwrap();
    assert_eq!(held, Some(5));

    // The next publish (after connection failures) finds the match rolled back, writes seqs 6..10
    // back, and numbers itself 11: no seq a reader already holds is reused.
    let deadline = Instant::now() + FAILOVER_PATIENCE;
    let published = loop {
        match feed.publish(&draft()).await {
            Ok(event) => break event,
            Err(error) => {
                assert!(Instant::now() < deadline, "never published: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!((published.epoch, published.seq), (epoch, 11));
    let recoveries = feed.recoveries();
    assert_eq!(recoveries.len(), 1, "{recoveries:?}");
    assert_eq!(recoveries[0].position, Position { epoch, seq: 10 });
    assert_eq!(recoveries[0].redis_had, Some(Position { epoch, seq: 5 }));
    assert_eq!(recoveries[0].how, RecoveryKind::Restored { entries: 5 });
    let history = read_history(
        &mut connection.clone(),
        &layout,
        &draft().match_topic,
        0,
        100,
    )
    .await
    .unwrap();
    let seqs: Vec<u64> = history.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
}

#[tokio::test]
async fn without_a_reachable_sentinel_connecting_fails_fast_as_a_connection_failure() {
    // Ports nothing listens on (bound, then released).
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/nobody",
        ports[0], ports[1]
    );
    let connection = RedisConnection::open(&url, settings()).unwrap();
    let started = Instant::now();
    let error = connection.connect().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_io_error(), "transient, worth retrying: {error}");
    assert!(error.to_string().contains("nobody"), "{error}");
    let pubsub = connection.open_pubsub().await;
    assert!(pubsub.is_err());
}

#[tokio::test]
async fn an_unknown_master_name_is_reported() {
    let setup = SentinelSetup::start().await.unwrap();
    let url = setup.url().replace(setup.master_name(), "not-monitored");
    let connection = RedisConnection::open(&url, settings()).unwrap();
    let error = connection.connect().await.unwrap_err();
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(chain.contains("not-monitored"), "{chain}");
}
