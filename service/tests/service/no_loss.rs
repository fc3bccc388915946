//! No lost scores: numbered publishing, gap filling from the Redis history, client resume, and
//! explicit resyncs — checked from the clients' side with `DeliveryChecker`.

use std::time::Duration;

use redis::aio::ConnectionManager;
use scoreline_feed::{Layout, Publisher, read_history};
use scoreline_protocol::{
    ClientMessage, EventDraft, EventKind, MatchTopic, ResyncReason, ScoreEvent, ServerMessage,
    Side, Topic,
};
use scoreline_testkit::{
    DeliveryChecker, RedisServer, TestApp, WsClient, goal, now_ms, roll_back_to,
};

use crate::delivery::wait_for_stored;
use scoreline_service::telemetry::{
    BAD_INPUTS, EVENT_CONFLICTS, FRAMES_COALESCED, HISTORIES_RESTORED, RESUMES,
};

use crate::{metric, series};

const GAME: &str = "football/premier-league/ars-che";
const OTHER: &str = "football/la-liga/rma-fcb";

fn draft(topic: &str, kind: EventKind) -> EventDraft {
    EventDraft {
        ts_ms: now_ms(),
        ..scoreline_testkit::draft(topic, kind)
    }
}

async fn publisher(redis: &RedisServer) -> Publisher<ConnectionManager> {
    // A loaded machine may answer slowly; that is not what these tests are about.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)));
    let manager = ConnectionManager::new_with_config(redis.client(), config)
        .await
        .unwrap();
    Publisher::new(manager, Layout::default())
}

/// Publishes, retrying while Redis is away (at-least-once, as a real feed would).
async fn publish_retrying(
    publisher: &mut Publisher<ConnectionManager>,
    draft: &EventDraft,
) -> ScoreEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match publisher.publish(draft).await {
            Ok(event) => return event,
            Err(error) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "Redis never came back: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Subscribes (with resume points, if any) and feeds every message to `checker` until each
/// `(topic, seq)` in `until` is reached.
async fn follow_until(client: &mut WsClient, checker: &mut DeliveryChecker, until: &[(&str, u64)]) {
    let reached = |checker: &DeliveryChecker| {
        until
            .iter()
            .all(|(topic, seq)| checker.position(topic).is_some_and(|p| p.seq >= *seq))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !reached(checker) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = client.recv_within(left).await.unwrap_or_else(|error| {
            panic!(
                "stuck at {:?} waiting for {until:?}: {error}",
                checker.resume_points()
            )
        });
        if std::env::var("DEBUG_DELIVERY").is_ok() {
            let text = format!("{message:?}");
            eprintln!("{}", &text[..text.len().min(160)]);
        }
        checker.observe(&message).unwrap();
    }
}

/// Subscribes to football, resuming from where `checker` stands, and waits for the reply (so
/// what the test publishes next is live for this client).
async fn subscribe(client: &mut WsClient, checker: &mut DeliveryChecker) {
    let football = Topic::parse("football").unwrap();
    let request = ClientMessage::resume([&football], checker.resume_points());
    client.send(&request).await.unwrap();
    loop {
        let message = client.recv().await.unwrap();
        checker.observe(&message).unwrap();
        if matches!(message, ServerMessage::Subscribed { .. }) {
            return;
        }
    }
}

/// A service on a Redis of its own, and a client following football on it from before the
/// first event (dropped in the reverse order: the client, the service, then Redis).
async fn following_football() -> (RedisServer, TestApp, WsClient, DeliveryChecker) {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    let mut checker = DeliveryChecker::default();
    subscribe(&mut client, &mut checker).await;
    (redis, app, client, checker)
}

#[tokio::test]
async fn events_published_without_seq_are_numbered_and_recorded() {
    let (redis, app, mut client, mut checker) = following_football().await;

    let post = |query: &'static str, kind: EventKind| {
        let url = app.http_url(&format!("/api/publish{query}"));
        let auth = vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", scoreline_testkit::TEST_TOKEN),
        )];
        let body = draft(GAME, kind).to_json();
        async move {
            scoreline_testkit::http("POST", &url, auth, Some(body))
                .await
                .unwrap()
        }
    };
    let first = post("", EventKind::MatchStarted).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let first = first.json().unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(post("", goal(Side::Home)).await.json().unwrap()["seq"], 2);
    follow_until(&mut client, &mut checker, &[(GAME, 2)]).await;

    let fresh = post("?new_history=true", EventKind::MatchStarted)
        .await
        .json()
        .unwrap();
    assert_eq!(fresh["seq"], 1);
    assert!(fresh["epoch"].as_u64() > first["epoch"].as_u64());
    let message = client.recv().await.unwrap();
    checker.observe(&message).unwrap();
    assert!(matches!(
        message,
        ServerMessage::Resync {
            reason: ResyncReason::EpochChanged,
            ..
        }
    ));

    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let topic = MatchTopic::parse(GAME).unwrap();
    let history = read_history(&mut connection, &Layout::default(), &topic, 0, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "a new history starts empty: {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_replay_every_client_still_gets_every_event() {
    let mut redis = RedisServer::start_persistent().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = app.client().await.unwrap();
        let mut checker = DeliveryChecker::default();
        subscribe(&mut client, &mut checker).await;
        clients.push((client, checker));
    }

    const EVENTS: u64 = 300;
    let (progress, mut published) = tokio::sync::watch::channel(0_u64);
    let mut feed = publisher(&redis).await;
    let replay = tokio::spawn(async move {
        let mut last = Vec::new();
        for index in 0..EVENTS {
            let topic = if index % 2 == 0 { GAME } else { OTHER };
            let event = publish_retrying(&mut feed, &draft(topic, goal(Side::Home))).await;
            last.push(event);
            let _ = progress.send(index + 1);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        last
    });
    published
        .wait_for(|count| *count >= EVENTS / 3)
        .await
        .unwrap();
    redis.stop();
    // Down long enough for the service to notice (and the feed to retry).
    app.wait_until_ready(false).await.unwrap();
    redis.start_again().unwrap();
    // Then cut only the service's subscription while events keep flowing: whatever is published
    // before it re-subscribes must come from the history.
    published
        .wait_for(|count| *count >= 2 * EVENTS / 3)
        .await
        .unwrap();
    let mut admin = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // The service may still be backing off from the restart (a loaded CI machine): retry until
    // its new subscription exists, then cut it.
    let deadline = tokio::time::Instant::now() + scoreline_testkit::PATIENCE;
    loop {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut admin)
            .await
            .unwrap();
        if killed >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never subscribed again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let events = replay.await.unwrap();
    let final_seq = |topic: &str| {
        events
            .iter()
            .filter(|e| e.match_topic.as_str() == topic)
            .map(|e| e.seq)
            .max()
            .unwrap()
    };
    let until = [(GAME, final_seq(GAME)), (OTHER, final_seq(OTHER))];
    for (client, checker) in &mut clients {
        follow_until(client, checker, &until).await;
        assert_eq!(
            checker.resyncs(GAME) + checker.resyncs(OTHER),
            0,
            "nothing was lost for good"
        );
        assert_eq!(checker.events(GAME), final_seq(GAME));
    }
}

#[tokio::test]
async fn clients_resume_across_a_service_restart_and_miss_nothing() {
    let redis = RedisServer::start().unwrap();
    let mut feed = publisher(&redis).await;
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    let mut checker = DeliveryChecker::default();
    subscribe(&mut client, &mut checker).await;
    for _ in 0..20 {
        feed.publish(&draft(GAME, goal(Side::Home))).await.unwrap();
    }
    follow_until(&mut client, &mut checker, &[(GAME, 20)]).await;
    assert!(wait_for_stored(&redis, GAME, 20).await);
    app.shutdown().await.unwrap();

    // Goals scored while no instance is running.
    for _ in 0..20 {
        feed.publish(&draft(GAME, goal(Side::Away))).await.unwrap();
    }
    let restarted = TestApp::with_redis(&redis).await.unwrap();
    let mut client = restarted.client().await.unwrap();
    subscribe(&mut client, &mut checker).await;
    for _ in 0..10 {
        feed.publish(&draft(GAME, goal(Side::Home))).await.unwrap();
    }
    follow_until(&mut client, &mut checker, &[(GAME, 50)]).await;
    assert_eq!((checker.events(GAME), checker.resyncs(GAME)), (50, 0));
}

#[tokio::test]
async fn a_client_whose_connection_is_cut_resumes_where_it_stopped() {
    let redis = RedisServer::start().unwrap();
    let mut feed = publisher(&redis).await;
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    let mut checker = DeliveryChecker::default();
    subscribe(&mut client, &mut checker).await;
    for _ in 0..10 {
        feed.publish(&draft(GAME, goal(Side::Home))).await.unwrap();
    }
    follow_until(&mut client, &mut checker, &[(GAME, 4)]).await;
    drop(client); // no close handshake: the TCP connection just goes away
    for _ in 0..10 {
        feed.publish(&draft(GAME, goal(Side::Away))).await.unwrap();
    }
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &mut checker).await;
    follow_until(&mut client, &mut checker, &[(GAME, 20)]).await;
    assert_eq!((checker.events(GAME), checker.resyncs(GAME)), (20, 0));
    assert_eq!(metric(&app, RESUMES, "").await, 1.0);
    // A client vanishing is not bad input, of any kind.
    assert_eq!(series(&app, BAD_INPUTS).await, []);
}

/// Publishes `count` goals, and waits until the service has them.
async fn goals(app: &TestApp, feed: &mut Publisher<ConnectionManager>, count: u64) -> u64 {
    let mut last = None;
    for _ in 0..count {
        last = Some(feed.publish(&draft(GAME, goal(Side::Home))).await.unwrap());
    }
    let last = last.unwrap();
    crate::wait_for_seq(app, GAME, last.seq).await;
    last.epoch
}

/// Subscribes to football resuming `GAME` at `seq` of `epoch`.
async fn resume_at(client: &mut WsClient, epoch: u64, seq: u64) {
    let football = Topic::parse("football").unwrap();
    let mut points = std::collections::BTreeMap::new();
    points.insert(
        GAME.to_owned(),
        scoreline_protocol::ResumePoint { epoch, seq },
    );
    client
        .send(&ClientMessage::resume([&football], points))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_further_back_than_memory_resumes_from_the_redis_history() {
    let redis = RedisServer::start().unwrap();
    let mut config = TestApp::config(Some(&redis));
    config.resume_events = 4;
    let app = TestApp::spawn(config).await.unwrap();
    app.wait_until_ready(true).await.unwrap();
    let mut feed = publisher(&redis).await;
    let epoch = goals(&app, &mut feed, 10).await;

    let mut client = app.client().await.unwrap();
    resume_at(&mut client, epoch, 2).await;
    let mut checker = DeliveryChecker::default();
    let game = MatchTopic::parse(GAME).unwrap();
    checker.start_at(&game, scoreline_protocol::ResumePoint { epoch, seq: 2 });
    goals(&app, &mut feed, 2).await;
    follow_until(&mut client, &mut checker, &[(GAME, 12)]).await;
    assert_eq!(
        checker.events(GAME),
        10,
        "3..=10 from the history, then 11 and 12 live"
    );
    assert_eq!(checker.resyncs(GAME), 0);
}

#[tokio::test]
async fn history_trimmed_or_reset_is_an_explicit_resync() {
    let redis = RedisServer::start().unwrap();
    let mut config = TestApp::config(Some(&redis));
    config.resume_events = 4;
    let app = TestApp::spawn(config).await.unwrap();
    app.wait_until_ready(true).await.unwrap();
    let manager = ConnectionManager::new(redis.client()).await.unwrap();
    let mut feed = Publisher::new(
        manager,
        Layout {
            history_len: 5,
            ..Layout::default()
        },
    );
    let epoch = goals(&app, &mut feed, 10).await;

    let mut client = app.client().await.unwrap();
    resume_at(&mut client, epoch, 2).await;
    let next_resync = |message| match message {
        ServerMessage::Resync { reason, snapshot } => Some((reason, snapshot.seq)),
        _ => None,
    };
    let resync = client.recv_until(next_resync).await.unwrap();
    assert_eq!(resync, (ResyncReason::HistoryTrimmed, 10));

    feed.publish_new_history(&draft(GAME, EventKind::MatchStarted))
        .await
        .unwrap();
    let reset = client.recv_until(next_resync).await.unwrap();
    assert_eq!(reset, (ResyncReason::EpochChanged, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_under_a_burst_keeps_every_score_event_in_order() {
    let redis = RedisServer::start().unwrap();
    let mut config = TestApp::config(Some(&redis));
    config.max_queued_frames = 2_000;
    config.idle_timeout_secs = 120;
    let app = TestApp::spawn(config).await.unwrap();
    app.wait_until_ready(true).await.unwrap();
    let mut slow = app.client().await.unwrap();
    subscribe(&mut slow, &mut DeliveryChecker::default()).await;
    let mut feed = publisher(&redis).await;

    // Big goal frames fill the socket buffers, so the clock readings between them pile up in the
    // client's queue, where newer ones replace older ones.
    let name = "x".repeat(16 * 1024);
    let mut goals = Vec::new();
    for minute in 0..600_u32 {
        let mut clock = draft(GAME, EventKind::Clock { running: true });
        clock.clock_secs = Some(minute * 60);
        feed.publish(&clock).await.unwrap();
        let scorer = EventKind::Goal {
            side: Side::Home,
            player: Some(name.clone()),
            own_goal: false,
            penalty: false,
        };
        goals.push(feed.publish(&draft(GAME, scorer)).await.unwrap().seq);
    }
    crate::wait_for_seq(&app, GAME, 1200).await;

    // Now read everything: every goal, in order; clocks only as needed.
    let mut received_goals = Vec::new();
    let mut clocks = 0;
    let mut last_seq = 0;
    while received_goals.len() < goals.len() {
        if let ServerMessage::Event(event) = slow.recv().await.unwrap() {
            assert!(
                event.seq > last_seq,
                "out of order: {} after {last_seq}",
                event.seq
            );
            last_seq = event.seq;
            match event.kind {
                EventKind::Goal { .. } => received_goals.push(event.seq),
                EventKind::Clock { .. } => clocks += 1,
                _ => {}
            }
        }
    }
    assert_eq!(received_goals, goals, "every score event, in order");
    assert!(
        clocks < 600,
        "stale clock readings were coalesced ({clocks} of 600 delivered)"
    );
    assert!(metric(&app, FRAMES_COALESCED, "").await >= 1.0);
}

/// `POST /api/publish` with a draft for `topic`; returns the status and the JSON answer.
async fn post_draft(app: &TestApp, topic: &str, kind: EventKind) -> (u16, serde_json::Value) {
    let url = app.http_url("/api/publish");
    let auth = vec![(
        "Authorization".to_owned(),
        format!("Bearer {}", scoreline_testkit::TEST_TOKEN),
    )];
    let reply = scoreline_testkit::http("POST", &url, auth, Some(draft(topic, kind).to_json()))
        .await
        .unwrap();
    (reply.status, reply.json().unwrap())
}

#[tokio::test]
async fn http_publish_refuses_an_event_that_cannot_apply_and_numbers_nothing() {
    let (_redis, app, mut client, mut checker) = following_football().await;

    let (status, first) = post_draft(&app, GAME, EventKind::MatchStarted).await;
    assert_eq!((status, first["seq"].as_u64()), (202, Some(1)), "{first}");
    let (status, refused) = post_draft(&app, GAME, EventKind::Point { side: Side::Home }).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"], "unprocessable");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|message| message.contains("point")),
        "the reducer's reason: {refused}"
    );
    let (status, next) = post_draft(&app, GAME, goal(Side::Home)).await;
    assert_eq!(
        (status, next["seq"].as_u64()),
        (202, Some(2)),
        "no seq used up"
    );
    follow_until(&mut client, &mut checker, &[(GAME, 2)]).await;
    assert_eq!(checker.resyncs(GAME), 0);
    assert_eq!(checker.snapshot(GAME).unwrap().score.home, 1);
}

#[tokio::test]
async fn a_history_entry_that_cannot_apply_is_skipped_without_a_resync() {
    let (redis, _app, mut client, mut checker) = following_football().await;

    // A feed that does not check numbers a tennis point into a football match's history.
    let mut feed = publisher(&redis).await;
    feed.publish(&draft(GAME, EventKind::MatchStarted))
        .await
        .unwrap();
    feed.publish(&draft(GAME, EventKind::Point { side: Side::Home }))
        .await
        .unwrap();
    feed.publish(&draft(GAME, goal(Side::Away))).await.unwrap();
    follow_until(&mut client, &mut checker, &[(GAME, 3)]).await;
    assert_eq!(checker.resyncs(GAME), 0, "a refusal is not a loss");
    assert_eq!(checker.skipped(GAME), 1, "seq 2 skipped, proven harmless");
    assert_eq!(checker.snapshot(GAME).unwrap().score.away, 1);
}

#[tokio::test]
async fn every_event_names_the_previous_critical_event_of_its_match() {
    let (redis, _app, mut client, _checker) = following_football().await;
    let mut feed = publisher(&redis).await;
    let kinds = [
        EventKind::MatchStarted,
        EventKind::Clock { running: true },
        goal(Side::Home),
        EventKind::Stat {
            name: "shots".into(),
            home: 3,
            away: 1,
        },
        goal(Side::Away),
    ];
    for kind in kinds {
        feed.publish(&draft(GAME, kind)).await.unwrap();
    }
    let mut previous = Vec::new();
    while previous.len() < 5 {
        if let ServerMessage::Event(event) = client.recv().await.unwrap() {
            previous.push(event.prev_critical_seq);
        }
    }
    assert_eq!(previous, [Some(0), Some(1), Some(1), Some(3), Some(3)]);
}

#[tokio::test]
async fn a_rewritten_history_is_taken_from_redis_not_dropped_as_duplicates() {
    let (redis, app, mut client, mut checker) = following_football().await;
    let mut feed = publisher(&redis).await;
    let mut published = Vec::new();
    for kind in [EventKind::MatchStarted, goal(Side::Home), goal(Side::Home)] {
        published.push(feed.publish(&draft(GAME, kind)).await.unwrap());
    }
    follow_until(&mut client, &mut checker, &[(GAME, 3)]).await;
    assert_eq!(checker.snapshot(GAME).unwrap().score.home, 2);

    // A failover to a replica that missed seq 3, then a feed without memory of it numbers another
    // event as seq 3: Redis's history is now the truth, and it differs from what fans saw.
    let layout = Layout::default();
    let mut admin = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    roll_back_to(&mut admin, &layout, &published[..2])
        .await
        .unwrap();
    let rewritten = scoreline_feed::number(
        &mut admin,
        &layout,
        &draft(GAME, goal(Side::Away)),
        false,
        None,
    )
    .await
    .unwrap();
    assert!(matches!(rewritten, scoreline_feed::Numbered::Published(ref event) if event.seq == 3));

    let resync = loop {
        let message = client.recv().await.unwrap();
        checker.observe(&message).unwrap();
        if let ServerMessage::Resync { reason, snapshot } = message {
            break (reason, snapshot);
        }
    };
    assert_eq!(resync.0, ResyncReason::HistoryRewritten);
    assert_eq!(
        (resync.1.seq, resync.1.score.home, resync.1.score.away),
        (3, 1, 1)
    );
    assert!(metric(&app, EVENT_CONFLICTS, "").await >= 1.0);
    let api = app
        .get(&format!("/api/matches/{GAME}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["score"], serde_json::json!({"home": 1, "away": 1}));
}

#[tokio::test]
async fn http_publishing_puts_a_match_back_into_a_redis_that_lost_its_data() {
    let mut redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    let mut checker = DeliveryChecker::default();
    subscribe(&mut client, &mut checker).await;
    let mut epoch = None;
    for kind in [EventKind::MatchStarted, goal(Side::Home), goal(Side::Home)] {
        let (status, answer) = post_draft(&app, GAME, kind).await;
        assert_eq!(status, 202, "{answer}");
        epoch = answer["epoch"].as_u64();
    }
    follow_until(&mut client, &mut checker, &[(GAME, 3)]).await;

    redis.start_again().unwrap();
    app.wait_until_ready(true).await.unwrap();
    let (status, answer) = post_draft(&app, GAME, goal(Side::Away)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["epoch"].as_u64(), answer["seq"].as_u64()),
        (epoch, Some(4)),
        "the same history goes on"
    );
    follow_until(&mut client, &mut checker, &[(GAME, 4)]).await;
    assert_eq!(checker.resyncs(GAME), 0);
    let score = checker.snapshot(GAME).unwrap().score;
    assert_eq!((score.home, score.away), (2, 1));
    let mut connection = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let topic = MatchTopic::parse(GAME).unwrap();
    let history = read_history(&mut connection, &Layout::default(), &topic, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|event| event.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "the history is whole again"
    );
    assert!(metric(&app, HISTORIES_RESTORED, "").await >= 1.0);
}
