//! The hub task and the handle that reaches it: sessions, the broker and the HTTP routes send
//! [`Command`]s through a bounded queue; the task applies them in order and flushes changed
//! snapshots to the store every [`HOUSEKEEPING_INTERVAL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use scoreline_feed::Position;
use scoreline_protocol::{ApplyError, MatchSnapshot, MatchTopic, ScoreEvent, Topic};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::recovery::BackfillRequest;
use super::{BATCH, Command, HOUSEKEEPING_INTERVAL, Hub, HubLimits, InboundEvent, StoredSnapshot};
use crate::matches::StatusFilter;
use crate::routing::ConnId;
use crate::telemetry;

/// The hub task could not be reached: the service is shutting down.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the hub is not running (the service is shutting down)")]
pub struct HubGone;

/// A cloneable way to reach the hub task.
#[derive(Debug, Clone)]
pub struct HubHandle {
    commands: mpsc::Sender<Command>,
    next_conn: Arc<AtomicU64>,
}

impl HubHandle {
    /// A fresh connection id.
    pub fn new_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a command, waiting while the hub's queue is full.
    ///
    /// The command is queued at once when there is room, and only a wait for room is boxed: a
    /// session's future (one per connection, held for its whole life) would otherwise carry the
    /// channel's ~860-byte send state inline.
    pub fn send(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<(), HubGone>> + Send + use<'_> {
        use futures_util::future::{Either, FutureExt, ready};
        match self.commands.try_send(command) {
            Ok(()) => Either::Left(ready(Ok(()))),
            Err(mpsc::error::TrySendError::Closed(_)) => Either::Left(ready(Err(HubGone))),
            Err(mpsc::error::TrySendError::Full(command)) => Either::Right(
                self.commands
                    .send(command)
                    .map(|sent| sent.map_err(|_| HubGone))
                    .boxed(),
            ),
        }
    }

    /// Sends a broker event without waiting: a feed reader must never stall, so when the hub's
    /// queue is full the event is dropped and counted.
    pub fn offer_event(&self, inbound: InboundEvent) -> Result<(), HubGone> {
        match self.commands.try_send(Command::Event(inbound)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(telemetry::EVENTS_DROPPED_OVERLOAD).increment(1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(HubGone),
        }
    }

    /// Matches for the HTTP API.
    pub async fn query(
        &self,
        prefix: Option<Topic>,
        status: impl Into<StatusFilter>,
        limit: usize,
    ) -> Result<(Vec<MatchSnapshot>, usize), HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Query {
            prefix,
            status: status.into(),
            limit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| HubGone)
    }

    /// Checks an event before it is numbered; answers the match's current position.
    pub async fn check(
        &self,
        event: ScoreEvent,
        new_history: bool,
    ) -> Result<Result<Option<Position>, ApplyError>, HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Check {
            event,
            new_history,
            reply,
        })
        .await?;
        answer.await.map_err(|_| HubGone)
    }

    /// What the service holds of a match's history (position and recent events).
    pub async fn ledger(
        &self,
        topic: MatchTopic,
    ) -> Result<Option<(Position, Vec<ScoreEvent>)>, HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Ledger { topic, reply }).await?;
        answer.await.map_err(|_| HubGone)
    }

    /// One match for the HTTP API.
    pub async fn get(&self, topic: MatchTopic) -> Result<Option<MatchSnapshot>, HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Get { topic, reply }).await?;
        answer.await.map_err(|_| HubGone)
    }
}

/// The hub's handle and its task, for the caller to spawn where the hub should run. Changed
/// snapshots go to `store` at every housekeeping tick (250 ms); the task ends when `shutdown`
/// fires (after a last flush) or every handle is dropped.
pub fn start(
    limits: HubLimits,
    queue_capacity: usize,
    store: Option<mpsc::Sender<StoredSnapshot>>,
    backfill: Option<mpsc::Sender<BackfillRequest>>,
    shutdown: CancellationToken,
) -> (HubHandle, impl Future<Output = ()> + Send + 'static) {
    let (commands, inbox) = mpsc::channel(queue_capacity);
    let handle = HubHandle {
        commands,
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let task = run(Hub::new(limits, backfill), inbox, store, shutdown);
    (handle, task)
}

async fn run(
    mut hub: Hub,
    mut inbox: mpsc::Receiver<Command>,
    store: Option<mpsc::Sender<StoredSnapshot>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = inbox.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
                hub.set_now(Instant::now());
                hub.set_now_ms(crate::now_ms());
                for command in batch.drain(..) {
                    hub.handle(command);
                }
                if received == BATCH {
                    // More is waiting. The hub shares its thread with the sessions of one
                    // worker: they write what it queued, as far as their sockets take it (a turn
                    // of the I/O driver), before it takes the next batch, so a backlog of events
                    // cannot fill their mailboxes while they wait for the thread.
                    tokio::task::yield_now().await;
                }
            }
            _ = tick.tick() => flush(&mut hub, store.as_ref()),
            () = shutdown.cancelled() => break,
        }
    }
    flush(&mut hub, store.as_ref());
}

fn flush(hub: &mut Hub, store: Option<&mpsc::Sender<StoredSnapshot>>) {
    hub.set_now(Instant::now());
    let changed = hub.housekeeping(crate::now_ms());
    let Some(store) = store else { return };
    for snapshot in changed {
        if let Err(error) = store.try_send(snapshot) {
            // The writer is behind (Redis slow or down): keep it dirty and try next time.
            let snapshot = match error {
                mpsc::error::TrySendError::Full(snapshot)
                | mpsc::error::TrySendError::Closed(snapshot) => snapshot,
            };
            hub.retry_store(snapshot.match_topic);
        }
    }
}
