//! Per-event costs in the protocol crate that the service pays once per event: parsing what a
//! feed published, folding it into the match (the reducer), and serialising the frame every
//! recipient shares. Run with `cargo bench -p scoreline-protocol`.

use scoreline_protocol::snapshot::TIMELINE_CAP;
use scoreline_protocol::test_support::{event, goal_by};
use scoreline_protocol::{MatchSnapshot, ScoreEvent, ServerMessage, Side, apply};

fn main() {
    divan::main();
}

fn goal(seq: u64) -> ScoreEvent {
    ScoreEvent {
        ts_ms: 1_740_841_380_000,
        clock_secs: Some(1380),
        ..event(
            "football/premier-league/ars-che-2025-03-01",
            seq,
            goal_by(Side::Home, "Saka"),
        )
    }
}

/// `ServerMessage::Event(..).to_json()`: done once per event, whatever the number of recipients.
#[divan::bench]
fn serialise_event_frame(bencher: divan::Bencher) {
    bencher
        .with_inputs(|| goal(7))
        .bench_values(|event| ServerMessage::Event(event).to_json());
}

/// Parsing a feed's `PUBLISH` payload, done once per event by the broker task.
#[divan::bench]
fn parse_published_event(bencher: divan::Bencher) {
    let json = serde_json::to_string(&goal(7)).expect("serialisable");
    bencher.bench(|| serde_json::from_str::<ScoreEvent>(divan::black_box(&json)));
}

/// `apply(snapshot, goal)` on a live match whose timeline holds `timeline` entries: a young
/// match (10) and a long one whose timeline is full ([`TIMELINE_CAP`]), where every event also
/// drops the oldest entry.
#[divan::bench(args = [10, TIMELINE_CAP])]
fn reducer_apply_goal(bencher: divan::Bencher, timeline: usize) {
    let mut snapshot = MatchSnapshot::new(goal(1).match_topic);
    for seq in 1..=timeline as u64 {
        apply(&mut snapshot, &goal(seq)).expect("goals apply in order");
    }
    assert_eq!(snapshot.timeline.len(), timeline);
    let next = goal(timeline as u64 + 1);
    // Each iteration gets its own copy of the match, so every one measures the same state; the
    // copy is made and dropped outside the timing.
    bencher
        .with_inputs(|| snapshot.clone())
        .bench_local_refs(|snapshot| apply(snapshot, &next).expect("the next goal applies"));
}
