//! # scoreline-protocol
//!
//! The types every Scoreline process speaks, and nothing else: this crate does no I/O and depends
//! on no runtime, so the viewer and the replayer stay light and every rule here is tested with
//! plain values.
//!
//! - [`topic`]: `sport/competition/match` topics and the prefix rule for subscriptions.
//! - [`sport`]: per-sport rules the displays and the reducer need (periods, clocks, tennis format).
//! - [`event`]: score events, the facts feeds publish, each with its match, `epoch` and `seq`.
//! - [`snapshot`]: the state of one match at one `seq`.
//! - [`reducer`]: `apply(snapshot, event)`, the one definition of how events change a match.
//! - [`wire`]: the JSON frames clients and the server exchange over the WebSocket.
//! - `test_support` (feature `test-support`): short constructors of events for tests.
//!
//! `docs/protocol.md` at the repository root shows every message with an example.

pub mod event;
pub mod reducer;
pub mod snapshot;
pub mod sport;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod topic;
pub mod wire;

pub use event::{
    CardColour, CoalesceKey, Delivery, EventDraft, EventKind, MatchStatus, ScoreEvent, Side, Team,
};
pub use reducer::{Applied, ApplyError, apply};
pub use snapshot::{
    CardTally, Cards, Clock, MatchSnapshot, PeriodScore, Score, TennisGame, TimelineEntry,
};
pub use sport::{FinalSet, Sport, TennisFormat};
pub use topic::{MatchTopic, Topic, TopicError};
pub use wire::{
    ClientMessage, ErrorCode, Limits, MatchSummary, PROTOCOL_VERSION, ResumePoint, ResyncReason,
    ServerMessage, SubscribedFrame,
};
