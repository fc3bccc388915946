//! Short constructors of events for tests: the one set every crate's tests build events with
//! (the `test-support` feature; other crates enable it as a dev-dependency, the viewer too).
//!
//! Each fills in the least a test should not have to care about; a test that cares about more
//! changes the fields it needs: `ScoreEvent { epoch: 3, ..event(TOPIC, 1, goal(Side::Home)) }`.
//! No clock is read here (this crate does no I/O): times are derived from `seq`, and a test that
//! needs the real time sets `ts_ms` itself (`scoreline_testkit::event` does).

use crate::{EventDraft, EventKind, MatchTopic, ScoreEvent, Side, Team};

/// An event of `match_topic` (a literal: panics when invalid) with this `seq`, in epoch 0, a
/// second after the previous one (`ts_ms` = 1,000 × `seq`), without a match clock.
pub fn event(match_topic: &str, seq: u64, kind: EventKind) -> ScoreEvent {
    ScoreEvent {
        match_topic: topic(match_topic),
        epoch: 0,
        seq,
        ts_ms: 1_000 * seq,
        clock_secs: None,
        prev_critical_seq: None,
        kind,
    }
}

/// An event of `match_topic` (a literal: panics when invalid) as a feed hands it to be numbered:
/// at `ts_ms` 0, without a match clock.
pub fn draft(match_topic: &str, kind: EventKind) -> EventDraft {
    EventDraft {
        match_topic: topic(match_topic),
        ts_ms: 0,
        clock_secs: None,
        kind,
    }
}

/// A goal for `side`, scorer unnamed.
pub fn goal(side: Side) -> EventKind {
    EventKind::Goal {
        side,
        player: None,
        own_goal: false,
        penalty: false,
    }
}

/// A goal for `side` by `player`.
pub fn goal_by(side: Side, player: &str) -> EventKind {
    EventKind::Goal {
        side,
        player: Some(player.to_owned()),
        own_goal: false,
        penalty: false,
    }
}

/// The schedule of a match between two teams given by their codes (which are also their
/// names), kicking off at `ts_ms` 0, with nothing else announced.
pub fn scheduled(home: &str, away: &str) -> EventKind {
    EventKind::MatchScheduled {
        home: Team::new(home, home),
        away: Team::new(away, away),
        kickoff_ms: 0,
        competition: None,
        venue: None,
        period_secs: None,
        tennis: None,
    }
}

/// The schedule of the match most tests follow: Arsenal (ARS) against Chelsea (CHE) in the
/// Premier League, kicking off at `ts_ms` 0.
pub fn arsenal_chelsea() -> EventKind {
    EventKind::MatchScheduled {
        home: Team::new("Arsenal", "ARS"),
        away: Team::new("Chelsea", "CHE"),
        kickoff_ms: 0,
        competition: Some("Premier League".to_owned()),
        venue: None,
        period_secs: None,
        tennis: None,
    }
}

fn topic(text: &str) -> MatchTopic {
    MatchTopic::parse(text).unwrap_or_else(|error| panic!("{text:?} is not a match topic: {error}"))
}
