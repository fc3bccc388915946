//! # scoreline-testkit
//!
//! Helpers that let every test start real things of its own:
//!
//! - [`RedisServer`]: a private `redis-server` on a free port, which a test may stop and restart
//!   to inject a broker failure, and which dies with the test.
//! - [`SentinelSetup`]: a primary, its replica and three sentinels, with a master to kill, a
//!   replica to make lag, and failovers to wait for.
//! - [`TestApp`]: the real service on port 0, started through `Application::build` like `main`.
//! - [`DeliveryChecker`]: checks a client got every `seq` once, in order, or a `resync`.
//! - [`WsClient`]: a typed WebSocket client speaking [`scoreline_protocol::wire`] messages.
//!
//! Nothing here is used in production code.

mod delivery;
mod events;
mod redis_server;
mod sentinel;
mod test_app;
mod ws_client;

pub use delivery::DeliveryChecker;
pub use events::{arsenal_chelsea, draft, event, goal, goal_by, now_ms, scheduled};
pub use redis_server::{RedisServer, roll_back_to};
pub use sentinel::{DOWN_AFTER_MILLIS, FAILOVER_TIMEOUT_MILLIS, SentinelSetup};
pub use test_app::{HttpReply, TEST_TOKEN, TestApp, http};
pub use ws_client::{Closed, WsClient};

/// How long helpers wait for something that should happen promptly before failing the test.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
