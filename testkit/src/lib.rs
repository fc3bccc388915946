//! # scoreline-testkit
//!
//! Helpers that let every test start real things of its own:
//!
//! - [`RedisServer`]: a private `redis-server` on a free port, which a test may stop and restart
//!   to inject a broker failure, and which dies with the test.
//! - [`WsClient`]: a typed WebSocket client speaking [`scoreline_protocol::wire`] messages.
//!
//! Nothing here is used in production code.

mod redis_server;
mod ws_client;

pub use redis_server::RedisServer;
pub use ws_client::{Closed, WsClient};

/// How long helpers wait for something that should happen promptly before failing the test.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
