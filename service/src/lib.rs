//! # scoreline-service
//!
//! Pushes live score events from Redis to WebSocket clients subscribed to their topics.
//!
//! The path of one event: [`broker`] receives it from Redis (one pattern subscription) and hands
//! it to the [`hub`] task, which applies it to the match's snapshot ([`mod@matches`]), serialises it
//! once, finds its recipients ([`routing`]: a look-up per topic prefix) and pushes the shared bytes
//! into each recipient's bounded [`mailbox`]; each connection's [`session`] task drains its mailbox
//! to the socket. Everything up to the mailbox is plain data tested without sockets.
//!
//! - [`delay`]: spoiler delay, each match as it stood a chosen number of seconds ago.
//! - [`audience`]: "N fans watching": counts of a match's own subscribers over every instance.
//! - [`startup`]: [`Application`], the single entry point used by `main` and the tests; it
//!   supervises the long-lived tasks.
//! - [`config`]: flags and environment variables.
//! - [`state`]: what the handlers, the upgrade and the sessions share.
//! - [`routes`]: HTTP endpoints (`/api/...`, `/healthz`, `/readyz`, `/metrics`);
//!   [`api_error`]: every refusal, with its status code.
//! - [`page`]: the fans' web page at `/`, its assets built into the binary from `service/web/`.
//! - [`upgrade`]: `/ws`, the WebSocket upgrade, which takes the socket away from HTTP;
//!   [`websocket`]: the frames on it, with small buffers and batched writes.
//! - [`telemetry`]: logging and metric names.
//! - [`tls`]: optional HTTPS/WSS.
//!
//! `docs/architecture.md` has the full map and the invariants.

pub mod api_error;
pub mod audience;
pub mod broker;
pub mod config;
pub mod delay;
pub mod front_door;
pub mod history;
pub mod hub;
pub mod mailbox;
pub mod matches;
pub mod page;
pub mod routes;
pub mod routing;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod upgrade;
pub mod websocket;
pub mod workers;

pub use config::{BrokerKind, Config};
pub use scoreline_feed::now_ms;
pub use startup::Application;
