//! The hub: the one owner of subscriptions and match state, and the fan-out.
//!
//! A single task owns a [`Hub`] and processes [`Command`]s in order, which is what makes the
//! delivery guarantees simple: a `subscribed` reply (with snapshots at seq N) is queued for a
//! client before any event N+1 of those matches can be routed to it, and no lock is shared with
//! the sockets. Sessions and the broker reach it through a cloneable [`HubHandle`].
//!
//! The hub never writes to a socket; it pushes one shared frame per event into each recipient's
//! [`Mailbox`].
//!
//! It also keeps delivery gap-free. An event that skips `seq` values is held while the missing
//! events are read back from the match's history in Redis ([`BackfillRequest`]); the held events
//! follow once they arrive. When events are lost for good, or a match's history is reset,
//! subscribers get an explicit `resync` with the snapshot instead of a silent jump. Clients that
//! reconnect with resume points get exactly the events they missed, from [`crate::history`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scoreline_feed::Position;
use scoreline_protocol::{
    ApplyError, Delivery, ErrorCode, EventDraft, MatchSnapshot, MatchStatus, MatchSummary,
    MatchTopic, ResumePoint, ResyncReason, ScoreEvent, ServerMessage, SubscribedFrame, Topic,
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

mod delayed;
mod numbering;
mod recovery;
mod resume;
mod task;

pub use recovery::{BackfillError, BackfillRequest, Head, Purpose};
pub use task::{HubGone, HubHandle, start};

use delayed::Delayed;
use recovery::Held;
use resume::{Resume, Resuming, resume_from};

use crate::delay::Change;
use crate::mailbox::{CoalesceId, Mailbox, Outbound, Pushed};
use crate::matches::{MatchStore, Rejected, StatusFilter, StoreLimits};
use crate::routing::{ConnId, Routes};
use crate::telemetry;
use crate::websocket::TextFrame;

/// How often dirty snapshots are handed to the store and finished matches evicted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(250);

/// Commands processed per turn, so one busy source cannot starve the housekeeping tick, nor the
/// sessions sharing the hub's thread: a turn queues at most this many frames for one fan before
/// they can be written, well under `--max-queued-frames`.
const BATCH: usize = 8;

/// Events held per match while its missing events are fetched; beyond this the hub stops waiting.
const MAX_HELD: usize = 1024;

/// How long the hub waits for missing events before giving up on them.
const BACKFILL_PATIENCE: Duration = Duration::from_secs(3);

/// Bounds the hub enforces.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Most topics one connection may subscribe.
    pub max_topics: usize,
    /// Most snapshots in one `subscribed` or `catalogue` reply.
    pub max_snapshots: usize,
    /// Bounds of the match store.
    pub store: StoreLimits,
    /// Longest spoiler delay, in seconds; every match's changes are kept this long (0: none).
    pub max_delay_secs: u32,
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
    /// The snapshot as JSON (shared with the fans who subscribe before it changes again).
    pub json: Arc<RawValue>,
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
        /// Where the client left off in matches it already holds.
        resume: BTreeMap<MatchTopic, ResumePoint>,
        /// The spoiler delay asked for (`None`: keep the connection's).
        delay_secs: Option<u32>,
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
    /// Number an event in its match's history and publish it (the in-process broker's version
    /// of the Redis publish script).
    PublishDraft {
        /// The event without epoch and seq.
        draft: EventDraft,
        /// Start a new history (a new epoch) with it.
        new_history: bool,
        /// The numbered event, or why it was refused.
        reply: oneshot::Sender<Result<ScoreEvent, Rejected>>,
    },
    /// Events read back from a match's history, answering a [`BackfillRequest`] (or the error).
    Backfill {
        /// What was asked.
        request: BackfillRequest,
        /// The events, oldest first.
        events: Result<Vec<ScoreEvent>, BackfillError>,
    },
    /// The broker subscribed (again): fetch whatever the matches missed meanwhile. `heads` is
    /// where every match's numbering stands in Redis, when it could be read.
    Resubscribed {
        /// Redis's position of every match it numbers, or `None` when it could not be read.
        heads: Option<Vec<Head>>,
    },
    /// Checks an event before a feed numbers it: whether it applies to its match as it stands.
    /// Answers the match's current position (the expectation to pass to the publish script).
    Check {
        /// The event, numbered as it would be.
        event: ScoreEvent,
        /// Whether it starts a new history.
        new_history: bool,
        /// The current position, or the reducer's reason to refuse the event.
        reply: oneshot::Sender<Result<Option<Position>, ApplyError>>,
    },
    /// What the service holds of a match's history, to put back into a Redis that forgot it.
    Ledger {
        /// The match.
        topic: MatchTopic,
        /// Its position and the events held (oldest first, at most `--resume-events`).
        reply: oneshot::Sender<Option<(Position, Vec<ScoreEvent>)>>,
    },
    /// Snapshots loaded from the shared store; each replaces the in-memory one if newer.
    Restore(Vec<MatchSnapshot>),
    /// Snapshots for the HTTP API.
    Query {
        /// Only matches under this topic.
        prefix: Option<Topic>,
        /// Only matches with these statuses.
        status: StatusFilter,
        /// At most this many.
        limit: usize,
        /// Where to send the matches and how many more there were.
        reply: oneshot::Sender<(Vec<MatchSnapshot>, usize)>,
    },
    /// Who watches which match, for [`crate::audience`].
    Watchers {
        /// Where to send each watched match with its watchers' mailboxes.
        reply: oneshot::Sender<crate::audience::Watched>,
    },
    /// One snapshot for the HTTP API.
    Get {
        /// The match.
        topic: MatchTopic,
        /// Where to send it.
        reply: oneshot::Sender<Option<MatchSnapshot>>,
    },
    /// Makes the hub panic, as a bug would, so tests can prove the service notices
    /// (`startup::TestHooks`). Compiled only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    Panic,
}

/// The hub's state and decisions: plain data, driven by [`Hub::handle`] and tested without I/O.
#[derive(Debug)]
pub struct Hub {
    routes: Routes,
    matches: MatchStore,
    limits: HubLimits,
    /// Where to ask for missing events; `None` without a history to read (in-process broker).
    backfill: Option<mpsc::Sender<BackfillRequest>>,
    /// Matches with a gap being filled: the events that arrived after it, held in seq order.
    held: HashMap<MatchTopic, Held>,
    /// Clients resuming from further back than memory holds, per match: their live frames wait
    /// here until the history read for them arrives, so they get every event once, in order.
    resuming: HashMap<ConnId, HashMap<MatchTopic, Resuming>>,
    /// The time now, as the task that drives the hub last set it ([`Hub::set_now`]): every
    /// patience (events held across a gap, clients catching up) is measured against it, so
    /// tests can move time on instead of sleeping.
    now: Instant,
    /// The wall-clock time now, in milliseconds since the Unix epoch, set with `now`: events
    /// are stamped with it, so spoiler delays are measured against it.
    now_ms: u64,
    /// Fans with a spoiler delay, and every match's recent changes for them.
    delayed: Delayed,
}

impl Hub {
    /// An empty hub. With `backfill`, gaps are filled from the broker's history.
    pub fn new(limits: HubLimits, backfill: Option<mpsc::Sender<BackfillRequest>>) -> Hub {
        Hub {
            routes: Routes::default(),
            matches: MatchStore::new(limits.store),
            limits,
            backfill,
            held: HashMap::new(),
            resuming: HashMap::new(),
            now: Instant::now(),
            now_ms: crate::now_ms(),
            delayed: Delayed::default(),
        }
    }

    /// Sets the time the next commands happen at.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Sets the wall-clock time the next commands happen at (ms since the Unix epoch).
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Processes one command.
    pub fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { conn, mailbox } => self.routes.connect(conn, mailbox),
            Command::Disconnect { conn } => {
                self.routes.disconnect(conn);
                self.resuming.remove(&conn);
                self.forget_delayed(conn);
            }
            Command::Subscribe {
                conn,
                topics,
                resume,
                delay_secs,
            } => self.subscribe(conn, topics, &resume, delay_secs),
            Command::Unsubscribe { conn, topics } => {
                let topics = match self.unsubscribe_delayed(conn, &topics) {
                    Some(topics) => topics,
                    None => self.routes.unsubscribe(conn, &topics),
                };
                self.reply(conn, &ServerMessage::Unsubscribed { topics });
            }
            Command::List {
                conn,
                prefix,
                status,
            } => {
                let (matches, omitted) = if self.is_delayed(conn) {
                    self.delayed_catalogue(conn, prefix, status)
                        .unwrap_or_default()
                } else {
                    let (matches, omitted) = self.select(prefix, status, self.limits.max_snapshots);
                    (
                        matches.into_iter().map(MatchSummary::from).collect(),
                        omitted,
                    )
                };
                self.reply(conn, &ServerMessage::Catalogue { matches, omitted });
            }
            Command::Event(inbound) => {
                let _ = self.publish(inbound);
            }
            Command::PublishDraft {
                draft,
                new_history,
                reply,
            } => {
                let event = self.number(draft, new_history);
                // Refused before it is numbered, so a refusal uses up no seq.
                let outcome = match self.matches.check(&event) {
                    Ok(()) => self
                        .publish(InboundEvent {
                            event: event.clone(),
                            received_at: self.now,
                        })
                        .map(|_| event),
                    Err(error) => Err(Rejected::Invalid(error)),
                };
                // The HTTP request may have gone meanwhile; nobody is left to tell.
                let _ = reply.send(outcome);
            }
            Command::Backfill { request, events } => self.backfilled(request, events),
            Command::Resubscribed { heads } => self.catch_up(heads),
            Command::Check {
                event,
                new_history,
                reply,
            } => {
                let current = self
                    .matches
                    .get(event.match_topic.as_str())
                    .filter(|snapshot| snapshot.seq > 0 && !new_history);
                let position = current.map(|snapshot| Position {
                    epoch: snapshot.epoch,
                    seq: snapshot.seq,
                });
                let mut candidate = event;
                candidate.epoch = position.map_or(u64::MAX, |position| position.epoch);
                let verdict = self.matches.check(&candidate).map(|()| position);
                let _ = reply.send(verdict);
            }
            Command::Ledger { topic, reply } => {
                let _ = reply.send(self.ledger(&topic));
            }
            Command::Restore(snapshots) => {
                for snapshot in snapshots {
                    let topic = snapshot.match_topic.clone();
                    if self.matches.restore(snapshot)
                        && let Some(restored) = self.matches.get(topic.as_str()).cloned()
                    {
                        self.restored_line(&restored);
                    }
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
            Command::Watchers { reply } => {
                // A closed reply means the audience task stopped (shutdown): nothing to tell.
                let routes = std::iter::once(&self.routes).chain(self.delayed.routes());
                let _ = reply.send(crate::audience::watched(routes));
            }
            #[cfg(feature = "test-hooks")]
            Command::Panic => panic!("the hub was told to panic (test hook)"),
            Command::Get { topic, reply } => {
                let _ = reply.send(self.matches.get(topic.as_str()).cloned());
            }
        }
    }

    fn select(
        &self,
        prefix: Option<Topic>,
        status: impl Into<StatusFilter>,
        limit: usize,
    ) -> (Vec<&MatchSnapshot>, usize) {
        match prefix {
            Some(prefix) => self
                .matches
                .select(std::slice::from_ref(&prefix), status, limit),
            None => self.matches.all(status, limit),
        }
    }

    /// Tells a client its subscribe would exceed the topic limit.
    fn too_many_topics(&mut self, conn: ConnId, would_have: usize) {
        telemetry::bad_input("too_many_topics");
        let error = crate::routing::TooManyTopics {
            would_have,
            max: self.limits.max_topics,
        };
        let message = ServerMessage::Error {
            code: ErrorCode::TooManyTopics,
            message: error.to_string(),
            request: None,
        };
        self.reply(conn, &message);
    }

    fn subscribe_live(
        &mut self,
        conn: ConnId,
        topics: Vec<Topic>,
        resume: &BTreeMap<MatchTopic, ResumePoint>,
    ) {
        if let Err(error) = self.routes.subscribe(conn, &topics, self.limits.max_topics) {
            self.too_many_topics(conn, error.would_have);
            return;
        }
        let mut resumed = Vec::new();
        let mut replay: Vec<TextFrame> = Vec::new();
        let mut resyncs = Vec::new();
        for (topic, point) in resume {
            if !topics.iter().any(|subscribed| subscribed.covers(topic)) {
                continue;
            }
            let Some(entry) = self.matches.entry(topic.as_str()) else {
                continue;
            };
            match resume_from(*point, &entry.snapshot, &entry.recent) {
                Resume::UpToDate => resumed.push(topic.clone()),
                Resume::Replay(frames) => {
                    resumed.push(topic.clone());
                    replay.extend(frames);
                }
                Resume::Resync(ResyncReason::HistoryTrimmed) if self.backfill.is_some() => {
                    // Further back than memory: read it from the match's Redis history.
                    let request = BackfillRequest {
                        topic: topic.clone(),
                        epoch: point.epoch,
                        after_seq: point.seq,
                        purpose: Purpose::Client {
                            conn,
                            until_seq: entry.snapshot.seq,
                        },
                    };
                    let sent = self
                        .backfill
                        .as_ref()
                        .is_some_and(|b| b.try_send(request).is_ok());
                    if sent {
                        resumed.push(topic.clone());
                        let catching_up = Resuming {
                            waiting: Vec::new(),
                            since: self.now,
                        };
                        self.resuming
                            .entry(conn)
                            .or_default()
                            .insert(topic.clone(), catching_up);
                    } else {
                        resyncs.push((topic.clone(), ResyncReason::HistoryTrimmed));
                    }
                }
                Resume::Resync(reason) => resyncs.push((topic.clone(), reason)),
            }
        }
        // Resumed and resynced matches get no snapshot in the reply.
        let handled = |snapshot: &&MatchSnapshot| !resume.contains_key(&snapshot.match_topic);
        let (snapshots, omitted) =
            self.matches
                .select(&topics, None, self.limits.max_snapshots + resume.len());
        let mut chosen: Vec<&MatchSnapshot> = snapshots.into_iter().filter(handled).collect();
        let omitted = omitted + chosen.len().saturating_sub(self.limits.max_snapshots);
        chosen.truncate(self.limits.max_snapshots);
        if !resumed.is_empty() {
            metrics::counter!(telemetry::RESUMES).increment(resumed.len() as u64);
        }
        // Each snapshot serialised once per change, not once per fan: a reconnect storm into a
        // live match costs a copy of its JSON per fan.
        let json: Vec<Arc<RawValue>> = chosen
            .iter()
            .filter_map(|snapshot| self.matches.snapshot_json(snapshot.match_topic.as_str()))
            .collect();
        let snapshots: Vec<&RawValue> = json.iter().map(|json| &**json).collect();
        let frame = SubscribedFrame {
            topics: &topics,
            snapshots: &snapshots,
            omitted,
            resumed: &resumed,
            delay_secs: 0,
        };
        self.push_to(conn, Outbound::critical(frame.to_json()));
        for frame in replay {
            self.push_to(conn, Outbound::critical(frame));
        }
        for (topic, reason) in resyncs {
            self.resync_one(conn, &topic, reason);
        }
    }

    /// Queues a reply for one connection.
    fn reply(&mut self, conn: ConnId, message: &ServerMessage) {
        self.push_to(conn, Outbound::critical(message.to_json()));
    }

    fn push_to(&mut self, conn: ConnId, frame: Outbound) {
        let Some(mailbox) = self.routes.mailbox(conn) else {
            return;
        };
        if mailbox.push(frame) == Pushed::Overflowed {
            self.drop_slow(conn);
        }
    }

    /// Sends every subscriber of a match a resync with its current state.
    fn resync_all(&mut self, topic: &MatchTopic, reason: ResyncReason) {
        let Some(snapshot) = self.matches.get(topic.as_str()).cloned() else {
            return;
        };
        let frame = Outbound::critical(
            ServerMessage::Resync {
                reason,
                snapshot: snapshot.clone(),
            }
            .to_json(),
        );
        self.record_delayed(topic, None, &frame, Change::Reset(Box::new(snapshot)));
        let recipients: Vec<ConnId> = self
            .routes
            .recipients(topic.topic())
            .map(|(conn, _)| conn)
            .collect();
        if recipients.is_empty() {
            return;
        }
        metrics::counter!(telemetry::RESYNCS, "reason" => reason_label(reason))
            .increment(recipients.len() as u64);
        for conn in recipients {
            if let Some(catching_up) = self
                .resuming
                .get_mut(&conn)
                .and_then(|matches| matches.get_mut(topic))
            {
                // A resync replaces whatever that client was catching up on.
                catching_up.waiting.clear();
                catching_up.waiting.push(frame.clone());
                continue;
            }
            self.push_to(conn, frame.clone());
        }
    }

    /// Sends one client a resync of one match (its current state).
    fn resync_one(&mut self, conn: ConnId, topic: &MatchTopic, reason: ResyncReason) {
        let Some(snapshot) = self.matches.get(topic.as_str()).cloned() else {
            return;
        };
        metrics::counter!(telemetry::RESYNCS, "reason" => reason_label(reason)).increment(1);
        self.reply(conn, &ServerMessage::Resync { reason, snapshot });
    }

    /// Applies an event and, if it moved its match forward, sends it to every subscriber once:
    /// as the event itself, or as a `resync` when subscribers cannot follow from the event alone
    /// (the history was reset, or events before it were lost for good).
    fn deliver(&mut self, inbound: InboundEvent) -> Result<usize, Rejected> {
        let InboundEvent {
            mut event,
            received_at,
        } = inbound;
        // The state before the event starts the match's delay line, if it has none yet.
        let before = if self.has_line(&event.match_topic) {
            None
        } else {
            self.matches.get(event.match_topic.as_str()).cloned()
        };
        let accepted = match self.matches.apply(&event) {
            Ok(accepted) => accepted,
            Err(rejected) => {
                tracing::debug!(%rejected, topic = %event.match_topic, seq = event.seq, "event dropped");
                metrics::counter!(telemetry::EVENTS_REJECTED, "reason" => rejected.label())
                    .increment(1);
                if let Rejected::Conflict { seq } = rejected {
                    self.conflicted(&event.match_topic, event.epoch, seq);
                }
                return Err(rejected);
            }
        };
        let resync = if accepted.reset {
            Some(ResyncReason::EpochChanged)
        } else if let Some(missed) = &accepted.missed {
            tracing::info!(topic = %event.match_topic, ?missed, "events lost before the broker; resyncing subscribers");
            metrics::counter!(telemetry::EVENT_GAPS).increment(1);
            Some(ResyncReason::EventsLost)
        } else {
            None
        };
        let coalesce = match event.kind.delivery() {
            Delivery::Critical => None,
            Delivery::Latest(key) => {
                Some(CoalesceId(format!("{}#{key:?}", event.match_topic).into()))
            }
        };
        // Lets every client prove that a seq it skipped held only coalesced readings.
        event.prev_critical_seq = Some(accepted.prev_critical_seq);
        let match_topic = event.match_topic.clone();
        let seq = event.seq;
        // Serialised and framed once; every recipient shares these bytes.
        let text = event_frame(&event);
        self.matches.remember(
            match_topic.as_str(),
            seq,
            text.clone(),
            accepted.fingerprint,
        );
        let (frame, change) = match resync {
            None => {
                let frame = Outbound {
                    text,
                    received_at: Some(received_at),
                    source_ms: Some(event.ts_ms),
                    coalesce,
                };
                (frame, Change::Event(event))
            }
            Some(reason) => {
                metrics::counter!(telemetry::RESYNCS, "reason" => reason_label(reason))
                    .increment(1);
                let snapshot = self.matches.get(match_topic.as_str()).cloned();
                let snapshot = snapshot.unwrap_or_else(|| MatchSnapshot::new(match_topic.clone()));
                let frame = Outbound::critical(
                    ServerMessage::Resync {
                        reason,
                        snapshot: snapshot.clone(),
                    }
                    .to_json(),
                );
                (frame, Change::Reset(Box::new(snapshot)))
            }
        };
        self.record_delayed(&match_topic, before, &frame, change);
        let mut recipients = 0;
        let mut coalesced = 0;
        let mut slow = Vec::new();
        let mut gave_up = Vec::new();
        for (conn, mailbox) in self.routes.recipients(match_topic.topic()) {
            recipients += 1;
            // Only clients resuming from the Redis history are looked up, and only while any is.
            if !self.resuming.is_empty()
                && let Some(catching_up) = self
                    .resuming
                    .get_mut(&conn)
                    .and_then(|matches| matches.get_mut(&match_topic))
            {
                if catching_up.waiting.len() < MAX_HELD {
                    catching_up.waiting.push(frame.clone());
                } else {
                    // The history read is too slow for how busy the match is: stop waiting and
                    // send this client the state instead (the event is in it).
                    gave_up.push(conn);
                }
                continue;
            }
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
        for conn in gave_up {
            if let Some(matches) = self.resuming.get_mut(&conn) {
                matches.remove(&match_topic);
            }
            self.resync_one(conn, &match_topic, ResyncReason::HistoryTrimmed);
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
        self.forget_delayed(conn);
    }

    /// Periodic work: evicts long-finished matches, publishes gauges, and returns the snapshots
    /// changed since the last call, for the store.
    pub fn housekeeping(&mut self, now_ms: u64) -> Vec<StoredSnapshot> {
        self.now_ms = now_ms;
        let overdue: Vec<MatchTopic> = self
            .held
            .iter()
            .filter(|(_, held)| self.now.saturating_duration_since(held.since) >= BACKFILL_PATIENCE)
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in overdue {
            tracing::warn!(%topic, "missing events did not arrive in time; going on without them");
            self.release(&topic);
        }
        let stuck: Vec<(ConnId, MatchTopic)> = self
            .resuming
            .iter()
            .flat_map(|(conn, matches)| {
                matches
                    .iter()
                    .filter(|(_, catching_up)| {
                        self.now.saturating_duration_since(catching_up.since) >= BACKFILL_PATIENCE
                    })
                    .map(|(topic, _)| (*conn, topic.clone()))
            })
            .collect();
        for (conn, topic) in stuck {
            if let Some(matches) = self.resuming.get_mut(&conn) {
                matches.remove(&topic);
            }
            self.resync_one(conn, &topic, ResyncReason::HistoryTrimmed);
        }
        self.resuming.retain(|_, matches| !matches.is_empty());
        self.matches.evict_finished(now_ms);
        self.release_delayed();
        metrics::gauge!(telemetry::MATCHES).set(self.matches.len() as f64);
        let subscriptions = self.routes.subscription_count() + self.delayed.subscription_count();
        metrics::gauge!(telemetry::SUBSCRIPTIONS).set(subscriptions as f64);
        self.matches
            .take_dirty()
            .into_iter()
            .map(|(snapshot, json)| StoredSnapshot {
                match_topic: snapshot.match_topic.clone(),
                epoch: snapshot.epoch,
                seq: snapshot.seq,
                json,
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

/// The frame that carries one event to clients, encoded once for all of them.
fn event_frame(event: &ScoreEvent) -> TextFrame {
    // `ServerMessage::Event` owns its event; the clone is paid once per event, not per recipient.
    TextFrame::new(&ServerMessage::Event(event.clone()).to_json())
}

fn reason_label(reason: ResyncReason) -> &'static str {
    match reason {
        ResyncReason::EpochChanged => "epoch_changed",
        ResyncReason::HistoryTrimmed => "history_trimmed",
        ResyncReason::EventsLost => "events_lost",
        ResyncReason::UnknownPosition => "unknown_position",
        ResyncReason::HistoryRewritten => "history_rewritten",
        ResyncReason::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{MailboxLimits, QueueState};
    use scoreline_protocol::test_support::{arsenal_chelsea as scheduled, goal};
    use scoreline_protocol::{EventKind, Side};

    const LIMITS: HubLimits = HubLimits {
        max_topics: 4,
        max_snapshots: 10,
        store: StoreLimits {
            max_matches: 100,
            finished_retention_ms: 60_000,
            recent_events: 4,
        },
        max_delay_secs: 300,
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
            resume: BTreeMap::new(),
            delay_secs: None,
        });
    }

    fn event(topic: &str, seq: u64, kind: EventKind) -> InboundEvent {
        let event = ScoreEvent {
            ts_ms: 1_000 + seq,
            ..scoreline_protocol::test_support::event(topic, seq, kind)
        };
        InboundEvent {
            event,
            received_at: Instant::now(),
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
        let mut hub = Hub::new(LIMITS, None);
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
        let mut hub = Hub::new(LIMITS, None);
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
        let mut hub = Hub::new(LIMITS, None);
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
        let mut hub = Hub::new(LIMITS, None);
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
        let mut hub = Hub::new(LIMITS, None);
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
        let mut hub = Hub::new(LIMITS, None);
        hub.publish(event("football/pl/a-b", 1, EventKind::MatchStarted))
            .unwrap();
        hub.publish(event("football/pl/a-b", 2, goal(Side::Home)))
            .unwrap();
        let changed = hub.housekeeping(0);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].seq, 2);
        assert!(hub.housekeeping(0).is_empty());
    }

    fn seqs(messages: &[ServerMessage]) -> Vec<String> {
        messages
            .iter()
            .map(|message| match message {
                ServerMessage::Event(event) => event.seq.to_string(),
                ServerMessage::Resync { reason, snapshot } => {
                    format!("resync {reason:?} at {}", snapshot.seq)
                }
                ServerMessage::Subscribed {
                    resumed, snapshots, ..
                } => {
                    format!(
                        "subscribed resumed={} snapshots={}",
                        resumed.len(),
                        snapshots.len()
                    )
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn numbered(seq: u64) -> InboundEvent {
        let mut inbound = event("football/pl/a-b", seq, goal(Side::Home));
        inbound.event.epoch = 7;
        inbound
    }

    #[test]
    fn a_gap_is_held_until_the_history_fills_it() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        hub.publish(numbered(1)).unwrap();
        assert_eq!(hub.publish(numbered(4)), Ok(0), "held, not delivered");
        hub.publish(numbered(5)).unwrap();
        let request = requests.try_recv().unwrap();
        assert_eq!((request.epoch, request.after_seq), (7, 1));
        let history = vec![numbered(2).event, numbered(3).event, numbered(4).event];
        hub.handle(Command::Backfill {
            request,
            events: Ok(history),
        });
        assert_eq!(seqs(&received(&mailbox)), ["1", "2", "3", "4", "5"]);
        assert_eq!(hub.matches().get("football/pl/a-b").unwrap().score.home, 5);
    }

    #[test]
    fn events_lost_for_good_become_an_explicit_resync() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        hub.publish(numbered(1)).unwrap();
        hub.publish(numbered(4)).unwrap();
        let request = requests.try_recv().unwrap();
        hub.handle(Command::Backfill {
            request,
            events: Err(BackfillError::Timeout(Duration::from_secs(2))),
        });
        hub.publish(numbered(5)).unwrap();
        assert_eq!(
            seqs(&received(&mailbox)),
            ["1", "resync EventsLost at 4", "5"]
        );
    }

    #[test]
    fn a_new_epoch_reaches_subscribers_as_a_resync() {
        let mut hub = Hub::new(LIMITS, None);
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        hub.publish(numbered(1)).unwrap();
        let mut reset = numbered(1);
        reset.event.epoch = 8;
        hub.publish(reset).unwrap();
        assert_eq!(seqs(&received(&mailbox)), ["1", "resync EpochChanged at 1"]);
    }

    fn resume(hub: &mut Hub, id: u64, epoch: u64, seq: u64) {
        let mut points = BTreeMap::new();
        points.insert(
            MatchTopic::parse("football/pl/a-b").unwrap(),
            ResumePoint { epoch, seq },
        );
        let topics = vec![Topic::parse("football").unwrap()];
        hub.handle(Command::Subscribe {
            conn: ConnId(id),
            topics,
            resume: points,
            delay_secs: None,
        });
    }

    #[test]
    fn a_resuming_client_gets_exactly_what_it_missed_or_a_resync() {
        let mut hub = Hub::new(LIMITS, None);
        for seq in 1..=6 {
            hub.publish(numbered(seq)).unwrap();
        }
        let cases: [(u64, u64, &[&str]); 5] = [
            (7, 4, &["subscribed resumed=1 snapshots=0", "5", "6"]),
            (7, 6, &["subscribed resumed=1 snapshots=0"]),
            (
                7,
                1,
                &[
                    "subscribed resumed=0 snapshots=0",
                    "resync HistoryTrimmed at 6",
                ],
            ),
            (
                6,
                4,
                &[
                    "subscribed resumed=0 snapshots=0",
                    "resync EpochChanged at 6",
                ],
            ),
            (
                7,
                9,
                &[
                    "subscribed resumed=0 snapshots=0",
                    "resync UnknownPosition at 6",
                ],
            ),
        ];
        for (id, (epoch, seq, expected)) in (1..).zip(cases) {
            let mailbox = connect(&mut hub, id, 16);
            resume(&mut hub, id, epoch, seq);
            assert_eq!(
                seqs(&received(&mailbox)),
                expected,
                "resuming at epoch {epoch} seq {seq}"
            );
        }
    }

    #[test]
    fn drafts_are_numbered_in_their_match_history() {
        let mut hub = Hub::new(LIMITS, None);
        let draft = numbered(1).event.draft();
        let mut publish = |new_history| {
            let (reply, mut answer) = oneshot::channel();
            hub.handle(Command::PublishDraft {
                draft: draft.clone(),
                new_history,
                reply,
            });
            answer.try_recv().unwrap().unwrap()
        };
        let first = publish(false);
        let second = publish(false);
        assert_eq!((second.epoch, second.seq), (first.epoch, 2));
        let fresh = publish(true);
        assert!(fresh.epoch > first.epoch);
        assert_eq!(fresh.seq, 1);
    }

    #[test]
    fn a_client_further_back_than_memory_is_caught_up_from_the_history_before_live_events() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        for seq in 1..=6 {
            hub.publish(numbered(seq)).unwrap();
        }
        let mailbox = connect(&mut hub, 1, 32);
        resume(&mut hub, 1, 7, 1);
        let request = requests.try_recv().unwrap();
        assert_eq!(
            (request.after_seq, request.purpose),
            (
                1,
                Purpose::Client {
                    conn: ConnId(1),
                    until_seq: 6
                }
            )
        );
        hub.publish(numbered(7)).unwrap();
        assert_eq!(
            seqs(&received(&mailbox)),
            ["subscribed resumed=1 snapshots=0"]
        );
        let history = (2..=6).map(|seq| numbered(seq).event).collect();
        hub.handle(Command::Backfill {
            request,
            events: Ok(history),
        });
        assert_eq!(seqs(&received(&mailbox)), ["2", "3", "4", "5", "6", "7"]);
        hub.publish(numbered(8)).unwrap();
        assert_eq!(seqs(&received(&mailbox)), ["8"]);
    }

    #[test]
    fn a_history_that_cannot_cover_the_resume_gives_a_resync() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        for seq in 1..=6 {
            hub.publish(numbered(seq)).unwrap();
        }
        let mailbox = connect(&mut hub, 1, 32);
        resume(&mut hub, 1, 7, 1);
        let request = requests.try_recv().unwrap();
        let trimmed = (4..=6).map(|seq| numbered(seq).event).collect();
        hub.handle(Command::Backfill {
            request,
            events: Ok(trimmed),
        });
        assert_eq!(
            seqs(&received(&mailbox)),
            [
                "subscribed resumed=1 snapshots=0",
                "resync HistoryTrimmed at 6"
            ]
        );
    }

    fn in_epoch(epoch: u64, seq: u64, kind: EventKind) -> InboundEvent {
        let mut inbound = event("football/pl/a-b", seq, kind);
        inbound.event.epoch = epoch;
        inbound
    }

    /// A hub holding a finished match of epoch 7 (Arsenal 1-0), with one subscriber.
    fn finished_match() -> (Hub, mpsc::Receiver<BackfillRequest>, Arc<Mailbox>) {
        let (backfill, requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        hub.publish(in_epoch(7, 1, scheduled())).unwrap();
        hub.publish(in_epoch(7, 2, goal(Side::Home))).unwrap();
        hub.publish(in_epoch(7, 3, EventKind::MatchEnded { winner: None }))
            .unwrap();
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        (hub, requests, mailbox)
    }

    #[test]
    fn a_newer_epoch_first_seen_mid_way_is_rebuilt_from_its_start() {
        let (mut hub, mut requests, mailbox) = finished_match();
        // The match started over (epoch 9) while this instance was away; seq 4 arrives first.
        assert_eq!(hub.publish(in_epoch(9, 4, goal(Side::Away))), Ok(0), "held");
        hub.publish(in_epoch(9, 5, goal(Side::Away))).unwrap();
        let request = requests.try_recv().unwrap();
        assert_eq!(
            (request.epoch, request.after_seq, request.purpose),
            (9, 0, Purpose::Rebuild)
        );
        let history = vec![
            in_epoch(9, 1, scheduled()).event,
            in_epoch(9, 2, EventKind::MatchStarted).event,
            in_epoch(9, 3, goal(Side::Home)).event,
            in_epoch(9, 4, goal(Side::Away)).event,
        ];
        hub.handle(Command::Backfill {
            request,
            events: Ok(history),
        });
        assert_eq!(
            seqs(&received(&mailbox)),
            ["resync EpochChanged at 4", "5"],
            "one resync with the rebuilt state, then the live event"
        );
        let snapshot = hub.matches().get("football/pl/a-b").unwrap();
        assert_eq!(
            (
                snapshot.home.name.as_str(),
                snapshot.score.home,
                snapshot.score.away
            ),
            ("Arsenal", 1, 2)
        );
    }

    #[test]
    fn a_newer_epoch_without_its_start_keeps_the_last_proven_state_marked_stale() {
        let (mut hub, mut requests, mailbox) = finished_match();
        hub.publish(in_epoch(9, 4, goal(Side::Away))).unwrap();
        let request = requests.try_recv().unwrap();
        let trimmed = vec![
            in_epoch(9, 3, goal(Side::Home)).event,
            in_epoch(9, 4, goal(Side::Away)).event,
        ];
        hub.handle(Command::Backfill {
            request,
            events: Ok(trimmed),
        });
        assert_eq!(seqs(&received(&mailbox)), ["resync EventsLost at 3"]);
        let snapshot = hub.matches().get("football/pl/a-b").unwrap();
        assert!(snapshot.stale);
        assert_eq!((snapshot.epoch, snapshot.score.home), (7, 1));
        assert_eq!(
            hub.publish(in_epoch(9, 5, goal(Side::Away))),
            Err(Rejected::Unreadable(9)),
            "never applied from the middle"
        );
        assert!(received(&mailbox).is_empty());
    }

    #[test]
    fn after_resubscribing_newer_histories_are_rebuilt_and_forgotten_ones_left_to_their_feeds() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        for topic in ["football/pl/a-b", "football/pl/c-d", "football/pl/e-f"] {
            let mut inbound = event(topic, 1, EventKind::MatchStarted);
            inbound.event.epoch = 7;
            hub.publish(inbound).unwrap();
        }
        let head = |topic: &str, epoch, seq| Head {
            topic: MatchTopic::parse(topic).unwrap(),
            position: Position { epoch, seq },
        };
        hub.handle(Command::Resubscribed {
            heads: Some(vec![
                head("football/pl/a-b", 8, 30),
                head("football/pl/c-d", 7, 5),
            ]),
        });
        let mut asked = Vec::new();
        while let Ok(request) = requests.try_recv() {
            asked.push((request.topic.to_string(), request.epoch, request.purpose));
        }
        asked.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            asked,
            [
                ("football/pl/a-b".to_owned(), 8, Purpose::Rebuild),
                ("football/pl/c-d".to_owned(), 7, Purpose::Gap),
            ],
            "e-f is gone from Redis: nothing to read, its feed puts it back"
        );
        assert_eq!(hub.housekeeping(0).len(), 3, "every snapshot written again");
    }

    #[test]
    fn events_held_across_a_gap_go_out_when_the_history_does_not_come_in_time() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        let start = Instant::now();
        hub.set_now(start);
        let mailbox = connect(&mut hub, 1, 16);
        subscribe(&mut hub, 1, &["football"]);
        received(&mailbox);
        hub.publish(numbered(1)).unwrap();
        assert_eq!(hub.publish(numbered(4)), Ok(0), "held");
        assert!(requests.try_recv().is_ok());
        hub.set_now(start + BACKFILL_PATIENCE / 2);
        hub.housekeeping(0);
        assert_eq!(
            seqs(&received(&mailbox)),
            ["1"],
            "still waiting for the history"
        );
        hub.set_now(start + BACKFILL_PATIENCE);
        hub.housekeeping(0);
        assert_eq!(
            seqs(&received(&mailbox)),
            ["resync EventsLost at 4"],
            "given up: the fan gets the state, not a silent jump"
        );
    }

    #[test]
    fn a_client_catching_up_from_the_history_gets_the_state_when_it_does_not_come_in_time() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut hub = Hub::new(LIMITS, Some(backfill));
        let start = Instant::now();
        hub.set_now(start);
        for seq in 1..=6 {
            hub.publish(numbered(seq)).unwrap();
        }
        let mailbox = connect(&mut hub, 1, 32);
        resume(&mut hub, 1, 7, 1);
        assert!(requests.try_recv().is_ok(), "the history is asked for");
        hub.publish(numbered(7)).unwrap();
        hub.set_now(start + BACKFILL_PATIENCE);
        hub.housekeeping(0);
        assert_eq!(
            seqs(&received(&mailbox)),
            [
                "subscribed resumed=1 snapshots=0",
                "resync HistoryTrimmed at 7"
            ]
        );
    }

    #[test]
    fn live_frames_waiting_for_a_catching_up_client_are_bounded() {
        let (backfill, mut requests) = mpsc::channel(8);
        let limits = HubLimits {
            store: StoreLimits {
                recent_events: 4,
                ..LIMITS.store
            },
            ..LIMITS
        };
        let mut hub = Hub::new(limits, Some(backfill));
        for seq in 1..=6 {
            hub.publish(numbered(seq)).unwrap();
        }
        let mailbox = connect(&mut hub, 1, 4 * MAX_HELD);
        resume(&mut hub, 1, 7, 1);
        assert!(requests.try_recv().is_ok());
        for seq in 7..7 + MAX_HELD as u64 + 1 {
            hub.publish(numbered(seq)).unwrap();
        }
        let messages = seqs(&received(&mailbox));
        assert_eq!(
            messages,
            [
                "subscribed resumed=1 snapshots=0".to_owned(),
                format!("resync HistoryTrimmed at {}", 6 + MAX_HELD as u64 + 1)
            ],
            "no more than MAX_HELD frames wait; then the state replaces them"
        );
    }
}
