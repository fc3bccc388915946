//! Replay timing on tokio's paused clock: no test here sleeps for real, and every assertion is on
//! exact milliseconds, so any drift or wrong scaling shows.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

use std::time::Duration;

use feed_replayer::fixture::{self, Fixture};
use feed_replayer::plan::{Pace, Plan};
use feed_replayer::publish::Publisher;
use feed_replayer::replay::{ReplayOptions, replay_match};
use indicatif::ProgressBar;
use scoreline_protocol::{EventKind, ScoreEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn world_cup_final() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/football/world-cup-2022-final-arg-fra.jsonl"
    );
    fixture::read(std::path::Path::new(path)).expect("fixture reads")
}

fn options(speed: f64, from_ms: u64) -> ReplayOptions {
    ReplayOptions {
        pace: Pace::new(speed, from_ms).expect("valid pace"),
        ..ReplayOptions::default()
    }
}

fn drain(receiver: &mut mpsc::Receiver<ScoreEvent>) -> Vec<ScoreEvent> {
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    events
}

#[tokio::test(start_paused = true)]
async fn every_event_is_published_at_start_plus_offset_over_speed() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    let (sender, mut receiver) = mpsc::channel(10_000);
    let publisher = Publisher::Channel(sender);
    let start = Instant::now();
    let outcome = replay_match(
        &plan,
        &publisher,
        options(60.0, 0),
        &CancellationToken::new(),
        &bar,
    )
    .await
    .unwrap();
    let events = drain(&mut receiver);
    assert_eq!(events.len(), plan.events.len());
    assert_eq!(outcome.published, plan.events.len() as u64);
    assert!(!outcome.cancelled);

    // The whole match (over two and a half hours with extra time and penalties) took exactly its
    // length divided by 60.
    let expected_ms = (plan.duration_ms() as f64 / 60.0).round() as u64;
    assert_eq!(start.elapsed(), Duration::from_millis(expected_ms));

    // Each event's publishing time is the start plus its own offset / speed: errors cannot add up.
    let first_ts = events[0].ts_ms;
    for (event, planned) in events.iter().zip(&plan.events) {
        assert_eq!(
            event.ts_ms - first_ts,
            (planned.offset_ms as f64 / 60.0).round() as u64,
            "seq {}",
            event.seq
        );
    }
    // Seq is gap-free from 1, the announcement first, in one epoch.
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(index, event)| event.seq == index as u64 + 1)
    );
    assert!(matches!(events[0].kind, EventKind::MatchScheduled { .. }));
    assert!(
        events
            .iter()
            .all(|event| event.epoch == events[0].epoch && event.epoch > 0)
    );
    // The snapshot the display shows is the real result.
    assert_eq!(
        (outcome.snapshot.score.home, outcome.snapshot.score.away),
        (3, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_broker_delays_events_but_the_schedule_does_not_drift() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    // Room for one event only, and a receiver taking 3 s per event: every publish waits for the
    // previous one to be taken, like a broker answering slowly.
    let (sender, mut receiver) = mpsc::channel(1);
    let publisher = Publisher::Channel(sender);
    let slow_receiver = async {
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            events.push(event);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        events
    };
    let replay = async {
        let outcome = replay_match(
            &plan,
            &publisher,
            options(60.0, 0),
            &CancellationToken::new(),
            &bar,
        )
        .await;
        drop(publisher);
        outcome
    };
    let (outcome, events) = tokio::join!(replay, slow_receiver);
    outcome.unwrap();
    assert_eq!(events.len(), plan.events.len());
    let start_ms = events[0].ts_ms;
    let mut caught_up = 0;
    for (index, (event, planned)) in events.iter().zip(&plan.events).enumerate() {
        let due_ms = (planned.offset_ms as f64 / 60.0).round() as u64;
        let published_ms = event.ts_ms - start_ms;
        assert!(published_ms >= due_ms, "seq {} early", event.seq);
        // After a quiet spell long enough to absorb the backlog, an event is exactly on time
        // again: delays were not carried forward, as they would be with sleeps between events.
        if index > 0 {
            let previous_due_ms = (plan.events[index - 1].offset_ms as f64 / 60.0).round() as u64;
            if due_ms - previous_due_ms > 10_000 {
                assert_eq!(
                    published_ms, due_ms,
                    "seq {} after a quiet spell",
                    event.seq
                );
                caught_up += 1;
            }
        }
    }
    assert!(
        caught_up >= 3,
        "the test needs quiet spells to mean anything ({caught_up})"
    );
    // Bursts were really delayed: the shoot-out kicks (75 s apart, 1.25 s at this speed) queue up.
    let delayed = events
        .iter()
        .zip(&plan.events)
        .filter(|(event, planned)| {
            event.ts_ms - start_ms > (planned.offset_ms as f64 / 60.0).round() as u64
        })
        .count();
    assert!(delayed > 0);
}

#[tokio::test(start_paused = true)]
async fn from_publishes_the_past_at_once_then_continues_live() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    // The 70th minute on the game clock: 45 minutes, 7 of first-half stoppage and 15 of
    // half-time, then 25 minutes of the second half, into the recording.
    let from_ms = plan.recording_offset_ms(70 * 60_000);
    assert_eq!(from_ms, (45 + 7 + 15 + 25) * 60_000 + 20_000);
    let (sender, mut receiver) = mpsc::channel(10_000);
    let publisher = Publisher::Channel(sender);
    let replay = async {
        replay_match(
            &plan,
            &publisher,
            options(60.0, 70 * 60_000),
            &CancellationToken::new(),
            &bar,
        )
        .await
    };
    let start = Instant::now();
    tokio::pin!(replay);
    // Let the replay run until just before the first event after `from` is due.
    let first_live = plan
        .events
        .iter()
        .position(|event| event.offset_ms > from_ms)
        .unwrap();
    let first_live_due_ms =
        ((plan.events[first_live].offset_ms - from_ms) as f64 / 60.0).round() as u64;
    tokio::select! {
        _ = &mut replay => panic!("the replay ended early"),
        () = tokio::time::sleep(Duration::from_millis(first_live_due_ms - 1)) => {}
    }
    let caught_up = drain(&mut receiver);
    assert_eq!(
        caught_up.len(),
        first_live,
        "everything before --from, at once"
    );
    assert!(
        caught_up
            .iter()
            .all(|event| event.ts_ms == caught_up[0].ts_ms)
    );
    // Argentina's two first-half goals are in the state already.
    let goals = caught_up
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Goal { .. }))
        .count();
    assert_eq!(goals, 2);
    // The announced kickoff lies --from/speed before the start.
    let EventKind::MatchScheduled { kickoff_ms, .. } = caught_up[0].kind else {
        panic!("announcement first")
    };
    assert_eq!(
        caught_up[0].ts_ms - kickoff_ms,
        (from_ms as f64 / 60.0).round() as u64
    );

    let outcome = replay.await.unwrap();
    let live = drain(&mut receiver);
    assert_eq!(caught_up.len() + live.len(), plan.events.len());
    assert_eq!(live[0].ts_ms - caught_up[0].ts_ms, first_live_due_ms);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(((plan.duration_ms() - from_ms) as f64 / 60.0).round() as u64)
    );
    assert_eq!(
        outcome.snapshot.shootout.map(|s| (s.home, s.away)),
        Some((4, 2))
    );
}

#[tokio::test(start_paused = true)]
async fn loop_restarts_in_a_new_epoch_until_cancelled() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    let (sender, mut receiver) = mpsc::channel(10_000);
    let publisher = Publisher::Channel(sender);
    let cancel = CancellationToken::new();
    let looping = ReplayOptions {
        looping: true,
        loop_pause: Duration::from_secs(10),
        ..options(600.0, 0)
    };
    let round_ms = (plan.duration_ms() as f64 / 600.0).round() as u64;
    let stopper = {
        let cancel = cancel.clone();
        async move {
            // Into the third round: two full rounds and pauses, then a second more.
            tokio::time::sleep(Duration::from_millis(2 * (round_ms + 10_000) + 1_000)).await;
            cancel.cancel();
        }
    };
    let (outcome, ()) = tokio::join!(
        replay_match(&plan, &publisher, looping, &cancel, &bar),
        stopper
    );
    let outcome = outcome.unwrap();
    assert!(outcome.cancelled);
    assert_eq!(outcome.rounds, 3);
    let events = drain(&mut receiver);
    let rounds: Vec<&[ScoreEvent]> = events
        .split_inclusive(|event| matches!(event.kind, EventKind::MatchEnded { .. }))
        .collect();
    assert_eq!(rounds[0].len(), plan.events.len());
    assert_eq!(rounds[1].len(), plan.events.len());
    assert!(!rounds[2].is_empty() && rounds[2].len() < plan.events.len());
    for round in &rounds {
        assert_eq!(round[0].seq, 1, "each round restarts seq");
        assert!(round.iter().all(|event| event.epoch == round[0].epoch));
    }
    assert!(rounds[0][0].epoch < rounds[1][0].epoch && rounds[1][0].epoch < rounds[2][0].epoch);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_at_once_without_publishing_more() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    let (sender, mut receiver) = mpsc::channel(10_000);
    let publisher = Publisher::Channel(sender);
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            // Half-time at speed 60 is about 52 seconds in.
            tokio::time::sleep(Duration::from_secs(60)).await;
            cancel.cancel();
        }
    };
    let start = Instant::now();
    let (outcome, ()) = tokio::join!(
        replay_match(&plan, &publisher, options(60.0, 0), &cancel, &bar),
        canceller
    );
    let outcome = outcome.unwrap();
    assert!(outcome.cancelled);
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    let events = drain(&mut receiver);
    assert_eq!(events.len() as u64, outcome.published);
    let due_by_then = plan
        .events
        .iter()
        .filter(|event| event.offset_ms <= 60 * 60_000)
        .count();
    assert_eq!(events.len(), due_by_then);
}

#[tokio::test(start_paused = true)]
async fn a_closed_channel_is_a_fatal_publish_error() {
    let fixture = world_cup_final();
    let bar = ProgressBar::hidden();
    let plan = Plan::of(&fixture).unwrap();
    let (sender, receiver) = mpsc::channel(10_000);
    drop(receiver);
    let error = replay_match(
        &plan,
        &Publisher::Channel(sender),
        options(60.0, 0),
        &CancellationToken::new(),
        &bar,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("seq 1"), "{error}");
}
