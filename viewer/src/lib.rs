//! # scoreline-viewer
//!
//! The desktop viewer fans use to follow live scores. A map of the crate, from the pure core out:
//!
//! - [`follow`]: what the fan follows (topics), persisted between runs.
//! - [`scoreboard`]: the followed matches, kept exact with snapshots and `seq`; finds gaps.
//! - [`connection`]: the connection state machine: backoff with jitter, timeouts, pings.
//! - [`session`]: the whole model: joins the above, decides what to send, takes the fan's
//!   [`session::Command`]s. Driven by plain values; everything above is tested without a socket.
//! - [`present`]: how facts read on screen (status labels, timeline lines, score progression).
//! - [`settings`]: what is saved between runs (server URL, follow list, spoiler delay), apart
//!   from runtime state.
//! - [`ui`]: `*_ui` functions that draw the session and return commands; they never change it.
//! - [`socket`]: the thin adapter between the session and an `ewebsock` WebSocket.
//! - [`app`]: the eframe application: persistence, the frame loop, repaint scheduling.
//!
//! Invariant: the socket wakes the UI (`connect_with_wakeup`), and the UI otherwise sleeps until
//! the session's next deadline or the next clock second it shows; nothing polls.

pub mod app;
pub mod connection;
pub mod follow;
pub mod present;
pub mod scoreboard;
pub mod session;
pub mod settings;
pub mod socket;
pub mod ui;
