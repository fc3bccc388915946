//! Events for tests: the constructors of `scoreline_protocol::test_support`, with the real time
//! where a running service needs it (latency figures, kickoffs that are not in 1970).

use scoreline_protocol::test_support;
pub use scoreline_protocol::test_support::{arsenal_chelsea, draft, goal, goal_by};
use scoreline_protocol::{EventKind, ScoreEvent};

/// An event of `match_topic` with the given `seq`, timestamped now, epoch 0.
///
/// # Panics
/// When `match_topic` is not a valid match topic: tests pass literals.
pub fn event(match_topic: &str, seq: u64, kind: EventKind) -> ScoreEvent {
    ScoreEvent {
        ts_ms: now_ms(),
        ..test_support::event(match_topic, seq, kind)
    }
}

/// A schedule announcement between two teams named by their codes, kicking off now.
pub fn scheduled(home: &str, away: &str) -> EventKind {
    let mut kind = test_support::scheduled(home, away);
    if let EventKind::MatchScheduled { kickoff_ms, .. } = &mut kind {
        *kickoff_ms = now_ms();
    }
    kind
}

pub use scoreline_service::now_ms;
