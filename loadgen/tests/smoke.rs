//! The load generator against the real service and a private Redis: a tiny run must deliver
//! every event, in order, to every client. This is the load test CI runs; the real scenarios are
//! in `docs/benchmarks.md`.

use std::time::Duration;

use scoreline_loadgen::{Phase, Plan, PublishMode, RunConfig, Scenario, SharedRun, run};
use scoreline_testkit::{RedisServer, TestApp};

fn config(app: &TestApp, redis: &RedisServer, plan: Plan, run_id: &str) -> RunConfig {
    RunConfig {
        scenario: Scenario::Custom,
        plan,
        ws_url: app.ws_url(),
        redis_url: redis.url(),
        channel_prefix: "scores:".to_owned(),
        key_prefix: "scoreline:".to_owned(),
        publish: PublishMode::Numbered,
        server_pid: Some(std::process::id()),
        connect_timeout: Duration::from_secs(20),
        drain_timeout: Duration::from_secs(5),
        slow_drain: Duration::from_secs(5),
        slow_recv_buffer_bytes: 4096,
        run_id: run_id.to_owned(),
        shared: None,
        log_slower_than: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_delivers_every_event_to_every_client() {
    let redis = RedisServer::start().expect("redis-server");
    let app = TestApp::with_redis(&redis).await.expect("service");
    let plan = Plan {
        readers: 50,
        topics: 5,
        connect_concurrency: 25,
        phases: vec![Phase {
            events_per_sec: 50,
            secs: 2,
        }],
        ..Scenario::Custom.plan()
    };
    let report = run(config(&app, &redis, plan, "smoke"))
        .await
        .expect("the run completes");
    println!("{}", report.human_line());
    assert_eq!(report.subscribed, 50, "{}", report.human_line());
    assert_eq!(report.published, 100);
    assert_eq!(
        report.published_unheard, 0,
        "the service listened to every publish"
    );
    // 100 events over 5 topics, 10 readers per topic: each event reaches 10 readers.
    assert_eq!(report.expected, 1_000);
    assert_eq!(report.delivered, 1_000, "{}", report.human_line());
    assert_eq!(
        (report.lost, report.repeated, report.readers_closed),
        (0, 0, 0)
    );
    assert!(report.is_clean());
    assert_eq!(report.latency.count, 1_000);
    assert!(report.latency.max_ms > 0.0 && report.latency.max_ms < 5_000.0);
    assert!(report.phases[0].deliveries_per_sec > 0.0);
    let server = report.server.expect("figures for the given pid");
    assert!(server.end.rss_bytes > 0 && server.end.cpu_secs > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_into_matches_in_play_goes_on_from_their_events_and_is_owed_only_its_own() {
    let redis = RedisServer::start().expect("redis-server");
    let app = TestApp::with_redis(&redis).await.expect("service");
    let one_second = |readers, events_per_sec| Plan {
        readers,
        topics: 2,
        phases: vec![Phase {
            events_per_sec,
            secs: 1,
        }],
        ..Scenario::Custom.plan()
    };
    // The matches' first ten events each, as an earlier run of the same id publishes them.
    let earlier = run(config(&app, &redis, one_second(1, 20), "in-play"))
        .await
        .expect("the first run completes");
    assert!(earlier.is_clean(), "{}", earlier.human_line());
    let topics = scoreline_loadgen::plan::topic_names("in-play", 2);
    for topic in &topics {
        app.wait_for_seq(topic, 10)
            .await
            .expect("the service has the first run's events");
    }

    let plan = Plan {
        first_seq: 11,
        ..one_second(20, 10)
    };
    let report = run(config(&app, &redis, plan, "in-play"))
        .await
        .expect("the second run completes");
    println!("{}", report.human_line());
    // Seq 11 to 15 on both matches (the publisher stops at any other number Redis gives), each
    // to its 10 readers, with no gap counted for the ten events before the run.
    assert_eq!(report.published, 10);
    assert_eq!((report.expected, report.delivered), (100, 100));
    assert_eq!((report.lost, report.repeated), (0, 0));
    assert!(report.is_clean(), "{}", report.human_line());
    for topic in &topics {
        assert_eq!(app.wait_for_seq(topic, 15).await.unwrap().seq, 15);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_the_service_is_away_are_reported_lost() {
    // Proves the loss accounting is not vacuous: with the service's broker gone, the publishes
    // reach nobody and every expected delivery is missing.
    let redis = RedisServer::start().expect("redis-server");
    let app = TestApp::with_redis(&redis).await.expect("service");
    let other_redis = RedisServer::start().expect("a second redis-server");
    let plan = Plan {
        readers: 4,
        topics: 2,
        phases: vec![Phase {
            events_per_sec: 10,
            secs: 1,
        }],
        ..Scenario::Custom.plan()
    };
    let mut config = config(&app, &redis, plan, "lost");
    config.redis_url = other_redis.url();
    // Bare PUBLISH, whose reply counts the listeners: none here.
    config.publish = PublishMode::Plain;
    config.drain_timeout = Duration::from_millis(500);
    let report = run(config).await.expect("the run completes");
    assert_eq!(report.subscribed, 4);
    assert_eq!(report.published_unheard, 10);
    assert_eq!(
        (report.expected, report.delivered, report.lost),
        (20, 0, 20)
    );
    assert!(!report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_run_follow_one_match_and_measure_from_its_stamp() {
    // Two "processes" (two runs in one test) share the run id: one publishes, the other only
    // reads, and waits at the meeting for what was published. Both must see every event.
    let redis = RedisServer::start().expect("redis-server");
    let app = TestApp::with_redis(&redis).await.expect("service");
    let plan = Plan {
        readers: 6,
        topics: 1,
        phases: vec![Phase {
            events_per_sec: 10,
            secs: 1,
        }],
        ..Scenario::Custom.plan()
    };
    let shared = |publishes| {
        let mut config = config(&app, &redis, plan.clone(), "shared");
        config.shared = Some(SharedRun {
            processes: 2,
            publishes,
        });
        config
    };
    let (publisher, follower) = tokio::join!(run(shared(true)), run(shared(false)));
    let (publisher, follower) = (
        publisher.expect("the publisher's run"),
        follower.expect("the follower's run"),
    );
    println!("{}\n{}", publisher.human_line(), follower.human_line());
    assert_eq!(publisher.processes_ready, Some(2));
    assert_eq!((publisher.published, follower.published), (10, 10));
    for report in [&publisher, &follower] {
        assert_eq!(report.expected, 60, "{}", report.human_line());
        assert_eq!(report.delivered, 60, "{}", report.human_line());
        assert!(report.is_clean(), "{}", report.human_line());
        assert_eq!(report.latency.count, 60, "every delivery measured");
        let buckets = report
            .latency_buckets
            .as_ref()
            .expect("buckets in a shared run");
        assert_eq!(buckets.iter().map(|(_, count)| count).sum::<u64>(), 60);
    }
    // The follower measured from `ts_ms` (milliseconds): a real latency, not zero or absurd.
    assert!(
        follower.latency.max_ms < 5_000.0,
        "{}",
        follower.human_line()
    );
}
