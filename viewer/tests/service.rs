//! The viewer against the real service on a private Redis: the same session and socket driver
//! the app runs, without a window. Covers the first subscribe (snapshot, then live events), a
//! seq gap repaired by a fresh snapshot, and a service restart during which a goal is scored:
//! the viewer marks the match stale, reconnects with backoff, re-subscribes and shows the goal.
//! With events numbered by the service (as the feed script does), the reconnect resumes the
//! match and the missed goals arrive as events rather than as a fresh snapshot. A viewer synced
//! with a stream gets every goal the delay later than a live one, a live viewer that chooses the
//! delay goes back to the older state and on again, and fans with the match open are counted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use scoreline_protocol::{EventKind, MatchTopic, Side, Topic};
use scoreline_testkit::{
    RedisServer, TEST_TOKEN, TestApp, event, goal_by, http, now_ms, scheduled,
};
use scoreline_viewer::connection::{Backoff, Jitter, Link, LinkState};
use scoreline_viewer::follow::FollowList;
use scoreline_viewer::scoreboard::TrackedMatch;
use scoreline_viewer::session::{CatchUp, Command, DelayStatus, Session};
use scoreline_viewer::socket::Driver;

const MATCH: &str = "football/premier-league/ars-che";

/// Pumps the driver until `done` holds for the session, or fails naming `what` it waited for.
async fn pump_until(
    session: &mut Session,
    driver: &mut Driver,
    what: &str,
    done: impl Fn(&Session) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        driver.pump(session, now_ms());
        if done(session) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {what}; link {:?}, match {:?}, {:?}",
            session.link_state(),
            tracked(session).map(|t| (t.snapshot.seq, t.snapshot.score, t.repairing)),
            session.catch_up()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tracked(session: &Session) -> Option<&TrackedMatch> {
    session
        .scoreboard()
        .get(&MatchTopic::parse(MATCH).expect("valid topic"))
}

fn score_is(session: &Session, home: u32, away: u32) -> bool {
    tracked(session).is_some_and(|t| {
        session.is_fresh(t) && t.snapshot.score.home == home && t.snapshot.score.away == away
    })
}

/// A session following football, connected through a driver to `url`.
fn viewer(url: String) -> anyhow::Result<(Session, Driver)> {
    delayed_viewer(url, 0)
}

/// A session following football with a spoiler delay of `delay_secs` (as saved from an earlier
/// run), connected through a driver to `url`.
fn delayed_viewer(url: String, delay_secs: u32) -> anyhow::Result<(Session, Driver)> {
    let mut session = Session::new(
        url,
        FollowList::new([Topic::parse("football")?]),
        Link::new(Backoff::default(), Jitter::new(9)),
    )
    .with_delay_secs(delay_secs);
    session.start(now_ms());
    Ok((session, Driver::new(|| {})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_match_live_and_repairs_a_gap() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let app = TestApp::with_redis(&redis).await?;

    // The match is under way before the viewer starts: it must arrive as a snapshot (whose
    // timeline holds a period start, which protocol v1 encodes with a duplicate key).
    redis
        .publish(&event(MATCH, 1, scheduled("ARS", "CHE")))
        .await?;
    redis
        .publish(&event(MATCH, 2, EventKind::PeriodStarted { period: 1 }))
        .await?;
    redis
        .publish(&event(MATCH, 3, goal_by(Side::Home, "Saka")))
        .await?;
    app.wait_for_seq(MATCH, 3).await?;

    let (mut session, mut driver) = viewer(app.ws_url())?;
    pump_until(&mut session, &mut driver, "the snapshot at 1-0", |s| {
        score_is(s, 1, 0)
    })
    .await?;
    assert_eq!(
        tracked(&session).map(|t| t.snapshot.timeline.len()),
        Some(2)
    );

    // A live goal.
    redis
        .publish(&event(MATCH, 4, goal_by(Side::Away, "Palmer")))
        .await?;
    pump_until(&mut session, &mut driver, "the live goal, 1-1", |s| {
        score_is(s, 1, 1)
    })
    .await?;

    // The feed skips seq 5: the viewer sees 6 after 4, asks for a snapshot of the match, and
    // ends confirmed at the server's state with its temporary subscription dropped again.
    redis
        .publish(&event(MATCH, 6, goal_by(Side::Home, "Rice")))
        .await?;
    pump_until(
        &mut session,
        &mut driver,
        "the gap repaired at seq 6",
        |s| tracked(s).is_some_and(|t| s.is_fresh(t) && t.snapshot.seq == 6),
    )
    .await?;
    assert!(score_is(&session, 2, 1));

    // Dropping the repair's own subscription must leave the `football` one working, and the
    // server must have accepted every request the repair made.
    redis
        .publish(&event(MATCH, 7, goal_by(Side::Away, "Jackson")))
        .await?;
    pump_until(
        &mut session,
        &mut driver,
        "a live goal after the repair, 2-2",
        |s| score_is(s, 2, 2),
    )
    .await?;
    assert_eq!(session.last_problem(), None);
    assert_eq!(session.ignored_frames(), 0);
    app.shutdown().await?;
    Ok(())
}

/// Plays the restart scenario: three events (with a period start among them when asked), the
/// service stops, the viewer marks the match stale, a new instance on the same port and Redis
/// takes a goal before the viewer is back, and the viewer must end at 1-1 confirmed.
async fn restart_scenario(with_period_event: bool) -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let app = TestApp::with_redis(&redis).await?;
    let port = app.port();
    let (mut session, mut driver) = viewer(app.ws_url())?;
    pump_until(&mut session, &mut driver, "the connection", |s| {
        s.is_connected()
    })
    .await?;

    redis
        .publish(&event(MATCH, 1, scheduled("ARS", "CHE")))
        .await?;
    let second = if with_period_event {
        EventKind::PeriodStarted { period: 1 }
    } else {
        EventKind::MatchStarted
    };
    redis.publish(&event(MATCH, 2, second)).await?;
    redis
        .publish(&event(MATCH, 3, goal_by(Side::Home, "Saka")))
        .await?;
    pump_until(&mut session, &mut driver, "1-0 live", |s| score_is(s, 1, 0)).await?;

    // The service goes away. The viewer keeps the last score but marks it stale.
    app.shutdown().await?;
    pump_until(&mut session, &mut driver, "the connection to drop", |s| {
        matches!(s.link_state(), LinkState::Waiting { .. })
    })
    .await?;
    let stale = tracked(&session).expect("still shown");
    assert!(!session.is_fresh(stale));
    assert_eq!(stale.snapshot.score.home, 1);
    let flashed_before = stale.score_changed_ms;

    // A new instance on the same port and Redis; a goal is scored before the viewer is back.
    let mut config = TestApp::config(Some(&redis));
    config.listen = ([127, 0, 0, 1], port).into();
    let app = TestApp::spawn(config).await?;
    // This goal is a plain, best-effort publish: the new instance must be subscribed to hear it.
    app.wait_until_ready(true).await?;
    app.publish_http(&event(MATCH, 4, goal_by(Side::Away, "Palmer")))
        .await?;
    pump_until(&mut session, &mut driver, "1-1 after reconnecting", |s| {
        score_is(s, 1, 1)
    })
    .await?;
    let caught_up = tracked(&session).expect("shown");
    assert_eq!(caught_up.snapshot.seq, 4);
    assert_eq!(caught_up.confirmed_generation, 2);
    assert_ne!(
        caught_up.score_changed_ms, flashed_before,
        "the missed goal flashes"
    );
    app.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_after_a_service_restart() -> anyhow::Result<()> {
    restart_scenario(false).await
}

/// The same with a period start in the timeline: the restarted service must read back the
/// snapshot it stored, period events included, and serve the score from before the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_after_a_service_restart_mid_period() -> anyhow::Result<()> {
    restart_scenario(true).await
}

/// Publishes `kind` for the match through `POST /api/publish` without `epoch` or `seq`, so the
/// service numbers it with the feed's script and records it in the match's Redis history, as a
/// real feed's publish does. Returns the `(epoch, seq)` it was given.
async fn publish_numbered(app: &TestApp, kind: EventKind) -> anyhow::Result<(u64, u64)> {
    let mut body = serde_json::to_value(event(MATCH, 0, kind))?;
    let fields = body.as_object_mut().context("an event is a JSON object")?;
    fields.remove("epoch");
    fields.remove("seq");
    let headers = vec![("Authorization".to_owned(), format!("Bearer {TEST_TOKEN}"))];
    let reply = http(
        "POST",
        &app.http_url("/api/publish"),
        headers,
        Some(body.to_string()),
    )
    .await?;
    anyhow::ensure!(
        reply.status == 202,
        "publish refused: {} {}",
        reply.status,
        reply.body
    );
    let reply = reply.json()?;
    let number = |field: &str| {
        reply[field]
            .as_u64()
            .with_context(|| format!("no {field} in {reply}"))
    };
    Ok((number("epoch")?, number("seq")?))
}

/// The service restarts while the viewer is away and two goals are scored before it is back. The
/// viewer resumes the match from the last event it applied, and the goals arrive as events
/// (the new instance's record of the match, read back from Redis and kept live), not as a
/// fresh snapshot; live events then follow on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_service_restart_and_gets_the_missed_goals_as_events() -> anyhow::Result<()>
{
    let redis = RedisServer::start()?;
    let app = TestApp::with_redis(&redis).await?;
    let port = app.port();
    let (mut session, mut driver) = viewer(app.ws_url())?;
    pump_until(&mut session, &mut driver, "the connection", |s| {
        s.is_connected()
    })
    .await?;

    let (epoch, _) = publish_numbered(&app, scheduled("ARS", "CHE")).await?;
    publish_numbered(&app, EventKind::MatchStarted).await?;
    let (_, seq) = publish_numbered(&app, goal_by(Side::Home, "Saka")).await?;
    assert_eq!(seq, 3);
    pump_until(&mut session, &mut driver, "1-0 live", |s| score_is(s, 1, 0)).await?;
    let held = tracked(&session).expect("shown");
    assert_eq!((held.snapshot.epoch, held.snapshot.seq), (epoch, 3));

    app.shutdown().await?;
    pump_until(&mut session, &mut driver, "the connection to drop", |s| {
        matches!(s.link_state(), LinkState::Waiting { .. })
    })
    .await?;

    // A new instance on the same port and Redis; two goals before the viewer is back.
    let mut config = TestApp::config(Some(&redis));
    config.listen = ([127, 0, 0, 1], port).into();
    let app = TestApp::spawn(config).await?;
    assert_eq!(
        publish_numbered(&app, goal_by(Side::Away, "Palmer")).await?,
        (epoch, 4)
    );
    assert_eq!(
        publish_numbered(&app, goal_by(Side::Home, "Rice")).await?,
        (epoch, 5)
    );
    pump_until(&mut session, &mut driver, "2-1 after resuming", |s| {
        score_is(s, 2, 1) && tracked(s).is_some_and(|t| t.snapshot.seq == 5)
    })
    .await?;
    assert_eq!(
        session.catch_up(),
        CatchUp {
            resume_points_sent: 1,
            resumed: 1,
            resynced: 0,
            snapshots: 0,
        },
        "the missed goals came as events, not as a snapshot or a resync"
    );
    let caught_up = tracked(&session).expect("shown");
    assert_eq!(caught_up.confirmed_generation, 2);
    let goals: Vec<u64> = caught_up
        .snapshot
        .timeline
        .iter()
        .filter(|entry| matches!(entry.kind, EventKind::Goal { .. }))
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(goals, vec![3, 4, 5]);

    // Live events carry on from there.
    publish_numbered(&app, goal_by(Side::Away, "Jackson")).await?;
    pump_until(&mut session, &mut driver, "a live goal, 2-2", |s| {
        score_is(s, 2, 2)
    })
    .await?;
    assert_eq!(session.last_problem(), None);
    assert_eq!(session.ignored_frames(), 0);
    app.shutdown().await?;
    Ok(())
}

/// How long after `since` each of two viewers reached a condition: both are pumped together so
/// that neither waits for the other.
async fn pump_both_until(
    (first, first_driver): (&mut Session, &mut Driver),
    (second, second_driver): (&mut Session, &mut Driver),
    since: Instant,
    what: &str,
    done: impl Fn(&Session) -> bool,
) -> anyhow::Result<(Duration, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut first_at, mut second_at) = (None, None);
    loop {
        first_driver.pump(first, now_ms());
        second_driver.pump(second, now_ms());
        if first_at.is_none() && done(first) {
            first_at = Some(since.elapsed());
        }
        if second_at.is_none() && done(second) {
            second_at = Some(since.elapsed());
        }
        if let (Some(first_at), Some(second_at)) = (first_at, second_at) {
            return Ok((first_at, second_at));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for {what}: first {first_at:?} {:?}, second {second_at:?} {:?}",
            tracked(first).map(|t| (t.snapshot.seq, t.snapshot.score, t.delay_secs)),
            tracked(second).map(|t| (t.snapshot.seq, t.snapshot.score, t.delay_secs)),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A fan whose stream runs 4 s behind the stadium, beside a live fan: each goal reaches the
/// delayed viewer 4 s after it happened and the live one at once; a live fan who then chooses
/// the delay goes back to the older score (a lower seq, replacing what it showed without a
/// repair) and on to the goal 4 s after it; both end at the real score. Both have the match
/// open and are counted watching it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_synced_with_a_stream_gets_each_goal_the_delay_later() -> anyhow::Result<()> {
    // Long enough that the rewind below is seen on a busy machine (the delay must outlast the
    // control settling and a round trip), short enough for a test.
    const DELAY_SECS: u32 = 4;
    let delay = Duration::from_secs(u64::from(DELAY_SECS));
    let redis = RedisServer::start()?;
    let mut config = TestApp::config(Some(&redis));
    config.audience_interval_millis = 200;
    let app = TestApp::spawn(config).await?;
    app.wait_until_ready(true).await?;
    let match_topic = MatchTopic::parse(MATCH)?;

    redis
        .publish(&event(MATCH, 1, scheduled("ARS", "CHE")))
        .await?;
    redis
        .publish(&event(MATCH, 2, EventKind::PeriodStarted { period: 1 }))
        .await?;
    let kickoff = Instant::now();
    redis
        .publish(&event(MATCH, 3, goal_by(Side::Home, "Saka")))
        .await?;
    app.wait_for_seq(MATCH, 3).await?;

    let (mut live, mut live_driver) = viewer(app.ws_url())?;
    let (mut delayed, mut delayed_driver) = delayed_viewer(app.ws_url(), DELAY_SECS)?;
    let (_, delayed_at) = pump_both_until(
        (&mut live, &mut live_driver),
        (&mut delayed, &mut delayed_driver),
        kickoff,
        "1-0 on both",
        |s| score_is(s, 1, 0),
    )
    .await?;
    assert!(
        delayed_at >= delay,
        "the first goal came early: {delayed_at:?}"
    );
    assert_eq!(
        delayed.delay_status(),
        DelayStatus::Delayed { secs: DELAY_SECS }
    );
    assert_eq!(live.delay_status(), DelayStatus::Live);

    // Both fans open the match: each is counted, and told they are two.
    for session in [&mut live, &mut delayed] {
        session.command(Command::OpenMatch(match_topic.clone()), now_ms());
    }
    pump_both_until(
        (&mut live, &mut live_driver),
        (&mut delayed, &mut delayed_driver),
        Instant::now(),
        "two fans watching",
        |s| s.watching(&match_topic) == Some(2),
    )
    .await?;

    // A goal: at once for the live fan, the delay later for the other.
    let scored = Instant::now();
    redis
        .publish(&event(MATCH, 4, goal_by(Side::Away, "Palmer")))
        .await?;
    let (live_at, delayed_at) = pump_both_until(
        (&mut live, &mut live_driver),
        (&mut delayed, &mut delayed_driver),
        scored,
        "1-1 on both",
        |s| score_is(s, 1, 1),
    )
    .await?;
    // The upper bounds leave room for a loaded machine; the point is the order and the delay.
    assert!(live_at < delay, "live: {live_at:?}");
    assert!(
        delayed_at >= delay && delayed_at < 2 * delay,
        "delayed: {delayed_at:?}"
    );

    // Another goal; the live fan sees it, then chooses the delay: the server's state 4 s ago
    // (before the goal, seq 4) replaces the board, and the goal comes again on time.
    let scored = Instant::now();
    redis
        .publish(&event(MATCH, 5, goal_by(Side::Home, "Rice")))
        .await?;
    pump_until(&mut live, &mut live_driver, "2-1 live", |s| {
        score_is(s, 2, 1)
    })
    .await?;
    live.command(Command::SetDelay(DELAY_SECS), now_ms());
    pump_until(&mut live, &mut live_driver, "the rewind to 1-1", |s| {
        score_is(s, 1, 1) && tracked(s).is_some_and(|t| t.delay_secs == DELAY_SECS)
    })
    .await?;
    assert_eq!(
        live.delay_status(),
        DelayStatus::Delayed { secs: DELAY_SECS }
    );
    let rewound = tracked(&live).expect("shown");
    assert_eq!(rewound.snapshot.seq, 4);
    assert!(
        !rewound.repairing,
        "an older snapshot of a new delay is no gap"
    );
    assert_eq!(
        rewound.highlight(now_ms()),
        None,
        "going back is not announced"
    );
    let (live_at, delayed_at) = pump_both_until(
        (&mut live, &mut live_driver),
        (&mut delayed, &mut delayed_driver),
        scored,
        "2-1 on both, delayed",
        |s| score_is(s, 2, 1),
    )
    .await?;
    for (who, at) in [
        ("the fan who chose the delay", live_at),
        ("delayed", delayed_at),
    ] {
        assert!(
            at >= delay && at < delay + Duration::from_secs(2),
            "{who}: {at:?}"
        );
    }
    for session in [&live, &delayed] {
        let shown = tracked(session).expect("shown");
        assert_eq!(shown.snapshot.seq, 5);
        assert!(session.is_fresh(shown));
        assert_eq!(session.last_problem(), None);
        assert_eq!(session.ignored_frames(), 0);
    }
    app.shutdown().await?;
    Ok(())
}
