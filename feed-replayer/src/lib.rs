//! # feed-replayer
//!
//! Recorded matches ("fixtures") played back live into Scoreline, and the tools around them.
//!
//! Pure core, tested without I/O:
//! - [`fixture`]: the JSON Lines fixture format: parse with line-numbered problems, write.
//! - [`validate`]: the score story: the reducer's final snapshot must equal the recorded result.
//! - [`plan`]: numbering and scheduling math: which event is due when, at what speed.
//! - [`generate`]: seeded synthetic matches (football, basketball, tennis), and real set or
//!   quarter scores filled in point by point.
//! - [`statsbomb`]: StatsBomb open-data events converted into a fixture.
//!
//! Thin I/O shells:
//! - [`publish`]: where events go: Redis `PUBLISH`, the service's HTTP API, stdout, or a channel.
//! - [`replay`]: one task per match, publishing on schedule until done or cancelled.
//! - [`record`]: a pattern subscription written out as fixtures.
//!
//! `src/main.rs` is the command line; it only parses flags and calls these.

pub mod fixture;
pub mod generate;
pub mod plan;
pub mod publish;
pub mod record;
pub mod replay;
pub mod statsbomb;
pub mod validate;
