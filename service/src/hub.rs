//! The hub: the one owner of subscriptions and match state, and the fan-out.
//!
//! A single task owns a [`Hub`] and processes [`Command`]s in order, which is what makes the
//! delivery guarantees simple: a `subscribed` reply (with snapshots at seq N) is queued for a
//! client before any event N+1 of those matches can be routed to it, and no lock is shared with
//! the sockets. Sessions and the broker reach it through a cloneable [`HubHandle`].
//!
//! The hub never writes to a socket; it pushes one shared frame per event into each recipient's
//! [`Mailbox`](crate::mailbox::Mailbox).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scoreline_protocol::{
    Delivery, ErrorCode, MatchSnapshot, MatchStatus, MatchSummary, MatchTopic, ScoreEvent,
    ServerMessage, Topic,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::mailbox::{CoalesceId, Mailbox, Outbound, Pushed};
use crate::matches::{MatchStore, Rejected, StoreLimits};
use crate::routing::{ConnId, Routes};
use crate::telemetry;

/// How often dirty snapshots are handed to the store and finished matches evicted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(250);

/// Commands processed per wake-up, so one busy source cannot starve the housekeeping tick.
const BATCH: usize = 256;

/// Bounds the hub enforces.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Most topics one connection may subscribe.
    pub max_topics: usize,
    /// Most snapshots in one `subscribed` or `catalogue` reply.
    pub max_snapshots: usize,
    /// Bounds of the match store.
    pub store: StoreLimits,
}

/// An event as received from the broker.
#[derive(Debug)]
pub struct InboundEvent {
    /// The parsed, validated event.
    pub event: ScoreEvent,
    /// When it was received, for the publish-to-send histogram.
    pub received_at: Instant,
}

/// A snapshot to persist.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    /// The match.
    pub match_topic: MatchTopic,
    /// Its epoch; with `seq`, lets the store refuse to overwrite a newer snapshot.
    pub epoch: u64,
    /// Its seq.
    pub seq: u64,
    /// The snapshot as JSON.
    pub json: String,
    /// Whether the match is over (the store then lets it expire).
    pub over: bool,
}

/// What the hub can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// A client connected; its frames go to `mailbox`.
    Connect {
        /// The connection.
        conn: ConnId,
        /// Its outbound queue.
        mailbox: Arc<Mailbox>,
    },
    /// A client left.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// Subscribe a client; it gets `subscribed` with snapshots, then events.
    Subscribe {
        /// The connection.
        conn: ConnId,
        /// Validated topics.
        topics: Vec<Topic>,
    },
    /// Unsubscribe a client.
    Unsubscribe {
        /// The connection.
        conn: ConnId,
        /// Validated topics.
        topics: Vec<Topic>,
    },
    /// Send a client the catalogue of matches.
    List {
        /// The connection.
        conn: ConnId,
        /// Only matches under this topic.
        prefix: Option<Topic>,
        /// Only matches with this status.
        status: Option<MatchStatus>,
    },
    /// A live event from the broker.
    Event(InboundEvent),
    /// Snapshots loaded from the shared store; each replaces the in-memory one if newer.
    Restore(Vec<MatchSnapshot>),
    /// Snapshots for the HTTP API.
    Query {
        /// Only matches under this topic.
        prefix: Option<Topic>,
        /// Only matches with this status.
        status: Option<MatchStatus>,
        /// At most this many.
        limit: usize,
        /// Where to send the matches and how many more there were.
        reply: oneshot::Sender<(Vec<MatchSnapshot>, usize)>,
    },
    /// One snapshot for the HTTP API.
    Get {
        /// The match.
        topic: MatchTopic,
        /// Where to send it.
        reply: oneshot::Sender<Option<MatchSnapshot>>,
    },
}

/// The hub's state and decisions: plain data, driven by [`Hub::handle`] and tested without I/O.
#[derive(Debug)]
pub struct Hub {
    routes: Routes,
    matches: MatchStore,
    limits: HubLimits,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: HubLimits) -> Hub {
        Hub {
            routes: Routes::default(),
            matches: MatchStore::new(limits.store),
            limits,
        }
    }

    /// Processes one command.
    pub fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { conn, mailbox } => self.routes.connect(conn, mailbox),
            Command::Disconnect { conn } => {
                self.routes.disconnect(conn);
            }
            Command::Subscribe { conn, topics } => self.subscribe(conn, topics),
            Command::Unsubscribe { conn, topics } => {
                let topics = self.routes.unsubscribe(conn, &topics);
                self.reply(conn, &ServerMessage::Unsubscribed { topics });
            }
            Command::List {
                conn,
                prefix,
                status,
            } => {
                let (matches, omitted) = self.select(prefix, status, self.limits.max_snapshots);
                let matches = matches.into_iter().map(MatchSummary::from).collect();
                self.reply(conn, &ServerMessage::Catalogue { matches, omitted });
            }
            Command::Event(inbound) => {
                let _ = self.publish(inbound);
            }
            Command::Restore(snapshots) => {
                for snapshot in snapshots {
                    self.matches.restore(snapshot);
                }
            }
            Command::Query {
                prefix,
                status,
                limit,
                reply,
            } => {
                let (matches, omitted) = self.select(prefix, status, limit);
                let _ = reply.send((matches.into_iter().cloned().collect(), omitted));
            }
            Command::Get { topic, reply } => {
                let _ = reply.send(self.matches.get(topic.as_str()).cloned());
            }
        }
    }

    fn select(
        &self,
        prefix: Option<Topic>,
        status: Option<MatchStatus>,
        limit: usize,
    ) -> (Vec<&MatchSnapshot>, usize) {
        match prefix {
            Some(prefix) => self
                .matches
                .select(std::slice::from_ref(&prefix), status, limit),
            None => self.matches.all(status, limit),
        }
    }

    fn subscribe(&mut self, conn: ConnId, topics: Vec<Topic>) {
        if let Err(error) = self.routes.subscribe(conn, &topics, self.limits.max_topics) {
            telemetry::bad_input("too_many_topics");
            let message = ServerMessage::Error {
                code: ErrorCode::TooManyTopics,
                message: error.to_string(),
                request: None,
            };
            self.reply(conn, &message);
            return;
        }
        let (snapshots, omitted) = self
            .matches
            .select(&topics, None, self.limits.max_snapshots);
        let snapshots = snapshots.into_iter().cloned().collect();
        self.reply(
            conn,
            &ServerMessage::Subscribed {
                topics,
                snapshots,
                omitted,
                resumed: Vec::new(),
            },
        );
    }

    /// Queues a reply for one connection.
    fn reply(&mut self, conn: ConnId, message: &ServerMessage) {
        let Some(mailbox) = self.routes.mailbox(conn) else {
            return;
        };
        if mailbox.push(Outbound::critical(message.to_json())) == Pushed::Overflowed {
            self.drop_slow(conn);
        }
    }

    /// Applies an event and, if it moved its match forward, sends it to every subscriber once.
    /// Returns the number of recipients.
    pub fn publish(&mut self, inbound: InboundEvent) -> Result<usize, Rejected> {
        let InboundEvent { event, received_at } = inbound;
        metrics::counter!(telemetry::EVENTS_IN).increment(1);
        let accepted = match self.matches.apply(&event) {
            Ok(accepted) => accepted,
            Err(rejected) => {
                tracing::debug!(%rejected, topic = %event.match_topic, seq = event.seq, "event dropped");
                metrics::counter!(telemetry::EVENTS_REJECTED, "reason" => rejected.label())
                    .increment(1);
                return Err(rejected);
            }
        };
        if let Some(missed) = &accepted.missed {
            tracing::debug!(topic = %event.match_topic, ?missed, "feed skipped seq values");
            metrics::counter!(telemetry::EVENT_GAPS).increment(1);
        }
        let coalesce = match event.kind.delivery() {
            Delivery::Critical => None,
            Delivery::Latest(key) => {
                Some(CoalesceId(format!("{}#{key:?}", event.match_topic).into()))
            }
        };
        let match_topic = event.match_topic.clone();
        // Serialised once; every recipient shares these bytes.
        let frame = Outbound {
            text: ServerMessage::Event(event).to_json().into(),
            received_at: Some(received_at),
            coalesce,
        };
        let mut recipients = 0;
        let mut coalesced = 0;
        let mut slow = Vec::new();
        for (conn, mailbox) in self.routes.recipients(match_topic.topic()) {
            recipients += 1;
            match mailbox.push(frame.clone()) {
                Pushed::Queued | Pushed::Closed => {}
                Pushed::Coalesced => coalesced += 1,
                Pushed::Overflowed => slow.push(conn),
            }
        }
        if coalesced > 0 {
            metrics::counter!(telemetry::FRAMES_COALESCED).increment(coalesced);
        }
        for conn in slow {
            self.drop_slow(conn);
        }
        Ok(recipients)
    }

    /// Forgets a client whose queue overflowed; its session sees the overflow and disconnects it.
    fn drop_slow(&mut self, conn: ConnId) {
        tracing::info!(
            conn = conn.0,
            "client too slow: outbound queue overflowed, disconnecting"
        );
        metrics::counter!(telemetry::SLOW_CLIENT_DISCONNECTS).increment(1);
        self.routes.disconnect(conn);
    }

    /// Periodic work: evicts long-finished matches, publishes gauges, and returns the snapshots
    /// changed since the last call, for the store.
    pub fn housekeeping(&mut self, now_ms: u64) -> Vec<StoredSnapshot> {
        self.matches.evict_finished(now_ms);
        metrics::gauge!(telemetry::MATCHES).set(self.matches.len() as f64);
        metrics::gauge!(telemetry::SUBSCRIPTIONS).set(self.routes.subscription_count() as f64);
        self.matches
            .take_dirty()
            .into_iter()
            .map(|snapshot| StoredSnapshot {
                match_topic: snapshot.match_topic.clone(),
                epoch: snapshot.epoch,
                seq: snapshot.seq,
                json: snapshot.to_json(),
                over: snapshot.status.is_over(),
            })
            .collect()
    }

    /// Marks a snapshot to be persisted again at the next housekeeping.
    pub fn retry_store(&mut self, topic: MatchTopic) {
        self.matches.mark_dirty(topic);
    }

    /// The match state, for tests and the HTTP API.
    pub fn matches(&self) -> &MatchStore {
        &self.matches
    }

    /// The subscriptions, for tests.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }
}

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
    pub async fn send(&self, command: Command) -> Result<(), HubGone> {
        self.commands.send(command).await.map_err(|_| HubGone)
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
        status: Option<MatchStatus>,
        limit: usize,
    ) -> Result<(Vec<MatchSnapshot>, usize), HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Query {
            prefix,
            status,
            limit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| HubGone)
    }

    /// One match for the HTTP API.
    pub async fn get(&self, topic: MatchTopic) -> Result<Option<MatchSnapshot>, HubGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Get { topic, reply }).await?;
        answer.await.map_err(|_| HubGone)
    }
}

/// Starts the hub task. Changed snapshots go to `store` every [`HOUSEKEEPING_INTERVAL`]; the task
/// ends when `shutdown` fires (after a last flush) or every handle is dropped.
pub fn spawn(
    limits: HubLimits,
    queue_capacity: usize,
    store: Option<mpsc::Sender<StoredSnapshot>>,
    shutdown: CancellationToken,
) -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, inbox) = mpsc::channel(queue_capacity);
    let handle = HubHandle {
        commands,
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let task = tokio::spawn(run(Hub::new(limits), inbox, store, shutdown));
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
                for command in batch.drain(..) {
                    hub.handle(command);
                }
            }
            _ = tick.tick() => flush(&mut hub, store.as_ref()),
            () = shutdown.cancelled() => break,
        }
    }
    flush(&mut hub, store.as_ref());
}

fn flush(hub: &mut Hub, store: Option<&mpsc::Sender<StoredSnapshot>>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{MailboxLimits, QueueState};
    use scoreline_protocol::{EventKind, Side};

    const LIMITS: HubLimits = HubLimits {
        max_topics: 4,
        max_snapshots: 10,
        store: StoreLimits {
            max_matches: 100,
            finished_retention_ms: 60_000,
        },
    };

    fn connect(hub: &mut Hub, id: u64, max_critical: usize) -> Arc<Mailbox> {
        let mailbox = Arc::new(Mailbox::new(MailboxLimits {
            max_critical,
            max_frames: max_critical * 2,
        }));
        hub.handle(Command::Connect {
            conn: ConnId(id),
            mailbox: Arc::clone(&mailbox),
        });
        mailbox
    }

    fn subscribe(hub: &mut Hub, id: u64, topics: &[&str]) {
        let topics = topics.iter().map(|t| Topic::parse(t).unwrap()).collect();
        hub.handle(Command::Subscribe {
            conn: ConnId(id),
            topics,
        });
    }

    fn event(topic: &str, seq: u64, kind: EventKind) -> InboundEvent {
        let event = ScoreEvent {
            match_topic: MatchTopic::parse(topic).unwrap(),
            epoch: 0,
            seq,
            ts_ms: 1_000 + seq,
            clock_secs: None,
            kind,
        };
        InboundEvent {
            event,
            received_at: Instant::now(),
        }
    }

    fn goal(side: Side) -> EventKind {
        EventKind::Goal {
            side,
            player: None,
            own_goal: false,
            penalty: false,
        }
    }

    fn received(mailbox: &Mailbox) -> Vec<ServerMessage> {
        let mut frames = Vec::new();
        mailbox.drain_into(&mut frames);
        frames
            .iter()
            .map(|frame| ServerMessage::from_json(&frame.text).unwrap())
            .collect()
    }

    #[test]
    fn subscriber_gets_snapshot_then_following_events() {
        let mut hub = Hub::new(LIMITS);
        hub.publish(event("football/pl/a-b", 1, EventKind::MatchStarted))
            .unwrap();
        hub.publish(event("football/pl/a-b", 2, goal(Side::Home)))
            .unwrap();
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football/pl"]);
        hub.publish(event("football/pl/a-b", 3, goal(Side::Away)))
            .unwrap();
        let messages = received(&mailbox);
        let ServerMessage::Subscribed {
            snapshots,
            omitted: 0,
            ..
        } = &messages[0]
        else {
            panic!("expected subscribed first, got {messages:?}")
        };
        assert_eq!((snapshots[0].seq, snapshots[0].score.home), (2, 1));
        let ServerMessage::Event(next) = &messages[1] else {
            panic!("expected an event")
        };
        assert_eq!(next.seq, 3);
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn duplicates_and_invalid_events_reach_nobody() {
        let mut hub = Hub::new(LIMITS);
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        assert_eq!(
            hub.publish(event("football/pl/a-b", 1, goal(Side::Home))),
            Ok(1)
        );
        assert!(
            hub.publish(event("football/pl/a-b", 1, goal(Side::Home)))
                .is_err()
        );
        assert!(
            hub.publish(event(
                "football/pl/a-b",
                2,
                EventKind::Point { side: Side::Home }
            ))
            .is_err()
        );
        assert_eq!(received(&mailbox).len(), 1);
    }

    #[test]
    fn too_many_topics_is_an_error_reply() {
        let mut hub = Hub::new(LIMITS);
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["a", "b", "c", "d", "e"]);
        let messages = received(&mailbox);
        assert!(matches!(
            messages[0],
            ServerMessage::Error {
                code: ErrorCode::TooManyTopics,
                ..
            }
        ));
        assert_eq!(hub.routes().subscription_count(), 0);
    }

    #[test]
    fn a_client_that_never_drains_is_dropped_without_affecting_others() {
        let mut hub = Hub::new(LIMITS);
        let stuck = connect(&mut hub, 1, 4);
        let reader = connect(&mut hub, 2, 4);
        subscribe(&mut hub, 1, &["football"]);
        subscribe(&mut hub, 2, &["football"]);
        let mut delivered = 0;
        for seq in 1..=20 {
            hub.publish(event("football/pl/a-b", seq, goal(Side::Home)))
                .unwrap();
            delivered += received(&reader).len();
        }
        assert_eq!(delivered, 21, "subscribed + 20 events for the reader");
        assert!(stuck.overflowed());
        let mut left = Vec::new();
        assert_eq!(stuck.drain_into(&mut left), QueueState::Overflowed);
        assert_eq!(hub.routes().connection_count(), 1);
    }

    #[test]
    fn catalogue_lists_live_matches_first() {
        let mut hub = Hub::new(LIMITS);
        hub.publish(event("football/pl/a-b", 1, EventKind::MatchStarted))
            .unwrap();
        hub.publish(event(
            "football/pl/c-d",
            1,
            EventKind::MatchEnded { winner: None },
        ))
        .unwrap();
        let mailbox = connect(&mut hub, 1, 16);
        hub.handle(Command::List {
            conn: ConnId(1),
            prefix: None,
            status: None,
        });
        let messages = received(&mailbox);
        let ServerMessage::Catalogue { matches, .. } = &messages[0] else {
            panic!()
        };
        let order: Vec<_> = matches.iter().map(|m| m.match_topic.to_string()).collect();
        assert_eq!(order, ["football/pl/a-b", "football/pl/c-d"]);
    }

    #[test]
    fn housekeeping_returns_each_changed_snapshot_once() {
        let mut hub = Hub::new(LIMITS);
        hub.publish(event("football/pl/a-b", 1, EventKind::MatchStarted))
            .unwrap();
        hub.publish(event("football/pl/a-b", 2, goal(Side::Home)))
            .unwrap();
        let changed = hub.housekeeping(0);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].seq, 2);
        assert!(hub.housekeeping(0).is_empty());
    }
}
