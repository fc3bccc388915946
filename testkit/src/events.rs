//! Short constructors for events in tests.

use scoreline_protocol::{EventKind, MatchTopic, ScoreEvent, Side, Team};

/// An event of `match_topic` with the given `seq`, timestamped now, epoch 0.
///
/// # Panics
/// When `match_topic` is not a valid match topic: tests pass literals.
pub fn event(match_topic: &str, seq: u64, kind: EventKind) -> ScoreEvent {
    ScoreEvent {
        match_topic: MatchTopic::parse(match_topic).expect("a valid match topic literal"),
        epoch: 0,
        seq,
        ts_ms: now_ms(),
        clock_secs: None,
        prev_critical_seq: None,
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

/// A schedule announcement between two teams named by their codes.
pub fn scheduled(home: &str, away: &str) -> EventKind {
    EventKind::MatchScheduled {
        home: Team::new(home, home),
        away: Team::new(away, away),
        kickoff_ms: now_ms(),
        competition: None,
        venue: None,
        period_secs: None,
        tennis: None,
    }
}

pub use scoreline_service::now_ms;
