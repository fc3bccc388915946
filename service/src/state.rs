//! [`AppState`]: what every HTTP handler, the WebSocket upgrade and the sessions share, built
//! once by [`crate::startup`]. A module of its own so that `routes`, `upgrade` and `startup`
//! depend on it rather than on each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::Config;
use crate::hub::HubHandle;
use crate::session::SessionSettings;
use crate::telemetry;
use crate::websocket::TextFrame;

/// What every HTTP handler and session shares.
pub struct AppState {
    /// The configuration the service started with.
    pub config: Config,
    /// The hub.
    pub hub: HubHandle,
    /// Where HTTP-published events go.
    pub broker: Broker,
    /// Per-session settings.
    pub session: SessionSettings,
    /// The first frame of every connection, encoded once.
    pub welcome: TextFrame,
    /// Open connections, against the limit.
    pub connections: Arc<ConnectionSlots>,
    /// Fired first at shutdown: every session sends close 1001.
    pub sessions_shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for their close frames.
    pub sessions: TaskTracker,
    /// Which supervised task stopped, if one did: `/readyz` is then 503.
    pub supervision: Arc<Supervision>,
}

/// What the supervisor found: the first task the service cannot run without that stopped.
#[derive(Debug, Default)]
pub struct Supervision {
    stopped: OnceLock<&'static str>,
}

impl Supervision {
    /// The name of the supervised task that stopped, if one did.
    pub fn stopped_task(&self) -> Option<&'static str> {
        self.stopped.get().copied()
    }

    /// Records that `task` stopped; only the first one is kept (the service stops at the
    /// first).
    pub(crate) fn record(&self, task: &'static str) {
        // A second record would be a second failure during the same shutdown: the first one
        // is the cause.
        let _ = self.stopped.set(task);
    }
}

/// Counts open WebSocket connections against `max_connections`.
#[derive(Debug)]
pub struct ConnectionSlots {
    /// Connections open now.
    pub open: AtomicUsize,
    max: usize,
}

/// One open connection; frees its slot when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    /// Takes a slot if one is free.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if !taken {
            return None;
        }
        metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
        Some(ConnectionSlot(Arc::clone(self)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

impl ConnectionSlots {
    /// No connection open yet, at most `max`.
    pub fn new(max: usize) -> ConnectionSlots {
        ConnectionSlots {
            open: AtomicUsize::new(0),
            max,
        }
    }
}
