//! The hub: the one owner of subscriptions and match state, and the fan-out.
//!
//! A single task owns a [`Hub`] and processes [`Command`]s in order, which is what makes the
//! delivery guarantees simple: a `subscribed` reply (with snapshots at seq N) is queued for a
//! client before any event N+1 of those matches can be routed to it, and no lock is shared with
//! the sockets. Sessions and the broker reach it through a cloneable [`HubHandle`].
//!
//! The hub never writes to a socket; it pushes one shared frame per event into each recipient's
//! [`Mailbox`](crate::mailbox::Mailbox).
//!
//! It also keeps delivery gap-free. An event that skips `seq` values is held while the missing
//! events are read back from the match's history in Redis ([`BackfillRequest`]); the held events
//! follow once they arrive. When events are lost for good, or a match's history is reset,
//! subscribers get an explicit `resync` with the snapshot instead of a silent jump. Clients that
//! reconnect with resume points get exactly the events they missed, from [`crate::history`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use scoreline_feed::Position;
use scoreline_protocol::{
    ApplyError, Delivery, ErrorCode, EventDraft, MatchSnapshot, MatchStatus, MatchSummary,
    MatchTopic, ResumePoint, ResyncReason, ScoreEvent, ServerMessage, Topic,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::history::{RecentEvents, Recorded};
use crate::mailbox::{CoalesceId, Mailbox, Outbound, Pushed};
use crate::matches::{MatchStore, Rejected, StoreLimits, fingerprint};
use crate::routing::{ConnId, Routes};
use crate::telemetry;

/// How often dirty snapshots are handed to the store and finished matches evicted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(250);

/// Commands processed per wake-up, so one busy source cannot starve the housekeeping tick.
const BATCH: usize = 256;

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

/// A request to read a match's history after `after_seq` from the broker; the answer comes back
/// as [`Command::Backfill`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The match.
    pub topic: MatchTopic,
    /// Events of this epoch are wanted.
    pub epoch: u64,
    /// Every event after this seq.
    pub after_seq: u64,
    /// What the events are for.
    pub purpose: Purpose,
}

/// Why a match's history is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To fill a gap in what the service applied (events after the match's current seq).
    Gap,
    /// To build the match again from the start of an epoch's history: a newer epoch first seen
    /// mid-way, or a conflict showing the history was rewritten.
    Rebuild,
    /// For one resuming client: the connection, and the last seq it must be sent from the
    /// history (later ones are live).
    Client {
        /// The connection.
        conn: ConnId,
        /// The last seq to send from the history.
        until_seq: u64,
    },
}

/// A history read failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Redis refused, or the history holds something unreadable.
    #[error("reading the match history failed")]
    Feed(#[source] scoreline_feed::FeedError),
    /// Redis did not answer in time.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where one match's numbering stands in Redis (the `seq` hash), as read after (re)subscribing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The match.
    pub topic: MatchTopic,
    /// Redis's epoch and last seq of it.
    pub position: Position,
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
}

/// A client catching up on one match from the Redis history.
#[derive(Debug)]
struct Resuming {
    /// Live frames of the match that arrived meanwhile.
    waiting: Vec<Outbound>,
    since: Instant,
}

/// Events held for one match until its gap is filled, by (epoch, seq).
#[derive(Debug)]
struct Held {
    events: BTreeMap<(u64, u64), InboundEvent>,
    since: Instant,
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
        }
    }

    /// Processes one command.
    pub fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { conn, mailbox } => self.routes.connect(conn, mailbox),
            Command::Disconnect { conn } => {
                self.routes.disconnect(conn);
                self.resuming.remove(&conn);
            }
            Command::Subscribe {
                conn,
                topics,
                resume,
            } => self.subscribe(conn, topics, &resume),
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
                            received_at: Instant::now(),
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

    fn subscribe(
        &mut self,
        conn: ConnId,
        topics: Vec<Topic>,
        resume: &BTreeMap<MatchTopic, ResumePoint>,
    ) {
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
        let mut resumed = Vec::new();
        let mut replay: Vec<ByteString> = Vec::new();
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
                            since: Instant::now(),
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
        let mut snapshots: Vec<MatchSnapshot> =
            snapshots.into_iter().filter(handled).cloned().collect();
        let omitted = omitted + snapshots.len().saturating_sub(self.limits.max_snapshots);
        snapshots.truncate(self.limits.max_snapshots);
        if !resumed.is_empty() {
            metrics::counter!(telemetry::RESUMES).increment(resumed.len() as u64);
        }
        self.reply(
            conn,
            &ServerMessage::Subscribed {
                topics,
                snapshots,
                omitted,
                resumed,
            },
        );
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

    /// Gives a draft the next place in its match's history (a new epoch when asked or new).
    fn number(&self, draft: EventDraft, new_history: bool) -> ScoreEvent {
        let current = self.matches.get(draft.match_topic.as_str());
        let (epoch, seq) = match current {
            Some(snapshot) if !new_history && snapshot.seq > 0 => {
                (snapshot.epoch, snapshot.seq + 1)
            }
            Some(snapshot) => (crate::now_ms().max(snapshot.epoch + 1), 1),
            None => (crate::now_ms(), 1),
        };
        draft.numbered(epoch, seq)
    }

    /// Takes an event from the broker. If it follows its match's history it goes out at once; if
    /// it skips `seq` values it is held while the missing ones are fetched, and if it belongs to a
    /// newer history first seen mid-way, while that history is read from its start. Returns the
    /// number of recipients (0 while held).
    pub fn publish(&mut self, inbound: InboundEvent) -> Result<usize, Rejected> {
        metrics::counter!(telemetry::EVENTS_IN).increment(1);
        let topic = inbound.event.match_topic.clone();
        if let Some(held) = self.held.get_mut(&topic) {
            if held.events.len() < MAX_HELD && held.since.elapsed() < BACKFILL_PATIENCE {
                held.events
                    .insert((inbound.event.epoch, inbound.event.seq), inbound);
                return Ok(0);
            }
            // The history is not coming (or too much piled up): go on without it.
            self.release(&topic);
            return self.deliver(inbound);
        }
        if let Some((after_seq, purpose)) = self.missing_before(&inbound.event)
            && let Some(backfill) = &self.backfill
        {
            let request = BackfillRequest {
                topic: topic.clone(),
                epoch: inbound.event.epoch,
                after_seq,
                purpose,
            };
            if backfill.try_send(request).is_ok() {
                let mut events = BTreeMap::new();
                events.insert((inbound.event.epoch, inbound.event.seq), inbound);
                self.held.insert(
                    topic,
                    Held {
                        events,
                        since: Instant::now(),
                    },
                );
                return Ok(0);
            }
        }
        self.deliver(inbound)
    }

    /// What is missing before `event`, if anything: the seq after which events are missing and
    /// how to get them. A numbered history starts at seq 1, so a match first seen at a later seq
    /// is missing its start, and a newer epoch first seen at a later seq is read from its start
    /// and the match rebuilt from it (never shown from the middle, with blank names).
    fn missing_before(&self, event: &ScoreEvent) -> Option<(u64, Purpose)> {
        let Some(entry) = self.matches.entry(event.match_topic.as_str()) else {
            return (event.seq > 1).then_some((0, Purpose::Gap));
        };
        let snapshot = &entry.snapshot;
        if snapshot.seq == 0 {
            return (event.seq > 1).then_some((0, Purpose::Gap));
        }
        if event.epoch == snapshot.epoch {
            return (event.seq > snapshot.seq + 1).then_some((snapshot.seq, Purpose::Gap));
        }
        let readable = entry.unreadable != Some(event.epoch);
        (event.epoch > snapshot.epoch && event.seq > 1 && readable).then_some((0, Purpose::Rebuild))
    }

    /// Answers a history read: fills a gap, rebuilds a match, or catches up a resuming client.
    fn backfilled(
        &mut self,
        request: BackfillRequest,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) {
        match request.purpose {
            Purpose::Client { conn, until_seq } => {
                self.resumed_from_history(conn, &request, until_seq, events);
            }
            Purpose::Rebuild => {
                self.rebuild(&request, events);
                self.release(&request.topic);
            }
            Purpose::Gap => {
                let conflict = self.fill_gap(&request, events);
                self.release(&request.topic);
                if let Some((epoch, seq)) = conflict {
                    self.conflicted(&request.topic, epoch, seq);
                }
            }
        }
    }

    /// Delivers the missing events of a gap. Events at or before the match's current seq only
    /// refill its resume record (after a restart), or reveal a conflict, which is returned.
    fn fill_gap(
        &mut self,
        request: &BackfillRequest,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) -> Option<(u64, u64)> {
        let events = events.unwrap_or_else(|error| {
            tracing::warn!(topic = %request.topic, error = %telemetry::ErrorChain(&error), "could not read the match history");
            Vec::new()
        });
        let current = self
            .matches
            .get(request.topic.as_str())
            .map(|snapshot| (snapshot.epoch, snapshot.seq));
        let mut older = Vec::new();
        let mut filled = 0_u64;
        for event in events {
            match current {
                Some((epoch, seq)) if event.epoch == epoch && event.seq <= seq => {
                    older.push(event);
                }
                _ => {
                    let inbound = InboundEvent {
                        event,
                        received_at: Instant::now(),
                    };
                    if self.deliver(inbound).is_ok() {
                        filled += 1;
                    }
                }
            }
        }
        if filled > 0 {
            tracing::info!(topic = %request.topic, filled, "filled a gap from the match history");
            metrics::counter!(telemetry::EVENTS_BACKFILLED).increment(filled);
        }
        if older.is_empty() {
            None
        } else {
            self.refill_record(&request.topic, older)
        }
    }

    /// Refills a match's resume record with events read back from its history (after a restart),
    /// checking each against what was applied under its seq; returns the first conflict.
    fn refill_record(&mut self, topic: &MatchTopic, older: Vec<ScoreEvent>) -> Option<(u64, u64)> {
        let conflict = self.matches.entry(topic.as_str()).and_then(|entry| {
            older.iter().find(|event| {
                entry
                    .recent
                    .fingerprint(event.seq)
                    .is_some_and(|held| held != fingerprint(event))
            })
        });
        if let Some(event) = conflict {
            return Some((event.epoch, event.seq));
        }
        let recorded = older
            .iter()
            .map(|event| Recorded {
                seq: event.seq,
                frame: Some(event_frame(event)),
                fingerprint: fingerprint(event),
            })
            .collect();
        self.matches.remember_older(topic.as_str(), recorded);
        None
    }

    /// A different event was found under a seq already applied: the history in Redis was
    /// rewritten. Counted, logged, and resolved by rebuilding the match from that history.
    fn conflicted(&mut self, topic: &MatchTopic, epoch: u64, seq: u64) {
        tracing::warn!(%topic, epoch, seq, "a different event under a seq already applied: the match history was rewritten; rebuilding the match from it");
        metrics::counter!(telemetry::EVENT_CONFLICTS).increment(1);
        if self.held.contains_key(topic) {
            // A read of this match is already under way; its answer settles it.
            return;
        }
        let request = BackfillRequest {
            topic: topic.clone(),
            epoch,
            after_seq: 0,
            purpose: Purpose::Rebuild,
        };
        let sent = self
            .backfill
            .as_ref()
            .is_some_and(|backfill| backfill.try_send(request).is_ok());
        if sent {
            let held = Held {
                events: BTreeMap::new(),
                since: Instant::now(),
            };
            self.held.insert(topic.clone(), held);
        } else {
            tracing::warn!(%topic, "cannot read the history now (queue full or no history); keeping the state held");
        }
    }

    /// Builds a match again from the start of an epoch's history and, if that differs from what
    /// subscribers hold, sends them the rebuilt state. Without a history that reaches back to the
    /// start, keeps the last state it can prove, marks it stale and says so.
    fn rebuild(
        &mut self,
        request: &BackfillRequest,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) {
        let topic = &request.topic;
        let events: Vec<ScoreEvent> = match events {
            Ok(events) => events
                .into_iter()
                .filter(|event| event.epoch == request.epoch)
                .collect(),
            Err(error) => {
                tracing::warn!(%topic, error = %telemetry::ErrorChain(&error), "could not read the match history to rebuild it");
                Vec::new()
            }
        };
        let complete = events.first().is_some_and(|first| first.seq == 1)
            && events.windows(2).all(|pair| pair[0].seq + 1 == pair[1].seq);
        if !complete {
            self.history_unreadable(topic, request.epoch);
            return;
        }
        let mut fresh = MatchStore::new(StoreLimits {
            max_matches: 1,
            ..self.limits.store
        });
        for event in events {
            let mut event = event;
            if let Ok(accepted) = fresh.apply(&event) {
                event.prev_critical_seq = Some(accepted.prev_critical_seq);
                fresh.remember(
                    topic.as_str(),
                    event.seq,
                    event_frame(&event),
                    accepted.fingerprint,
                );
            }
        }
        let Some(entry) = fresh.take(topic.as_str()) else {
            self.history_unreadable(topic, request.epoch);
            return;
        };
        let current = self.matches.get(topic.as_str());
        let reason = match current {
            Some(current) if current.epoch != entry.snapshot.epoch => ResyncReason::EpochChanged,
            Some(current) if *current == entry.snapshot => {
                tracing::info!(%topic, "the match history, read again, agrees with the state held");
                metrics::counter!(telemetry::REBUILDS, "outcome" => "unchanged").increment(1);
                return;
            }
            Some(_) => ResyncReason::HistoryRewritten,
            None => ResyncReason::EpochChanged,
        };
        tracing::info!(%topic, epoch = entry.snapshot.epoch, seq = entry.snapshot.seq, ?reason, "rebuilt the match from its history");
        metrics::counter!(telemetry::REBUILDS, "outcome" => "rebuilt").increment(1);
        self.matches.replace(entry);
        self.resync_all(topic, reason);
    }

    /// A newer history of a match (or the current one, rewritten) cannot be read from its start:
    /// keeps the last proven state, marked stale, and tells subscribers so.
    fn history_unreadable(&mut self, topic: &MatchTopic, epoch: u64) {
        tracing::warn!(%topic, epoch, "the match history cannot be read from its start; keeping the last state proven, marked stale");
        metrics::counter!(telemetry::REBUILDS, "outcome" => "unreadable").increment(1);
        if self
            .matches
            .mark_unreadable(topic.as_str(), epoch)
            .is_some()
        {
            self.resync_all(topic, ResyncReason::EventsLost);
        }
    }

    /// Sends every subscriber of a match a resync with its current state.
    fn resync_all(&mut self, topic: &MatchTopic, reason: ResyncReason) {
        let Some(snapshot) = self.matches.get(topic.as_str()).cloned() else {
            return;
        };
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
        let frame = Outbound::critical(ServerMessage::Resync { reason, snapshot }.to_json());
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

    /// What the service holds of a match's history: its position and the events it keeps.
    fn ledger(&self, topic: &MatchTopic) -> Option<(Position, Vec<ScoreEvent>)> {
        let entry = self.matches.entry(topic.as_str())?;
        let position = Position {
            epoch: entry.snapshot.epoch,
            seq: entry.snapshot.seq,
        };
        let events = entry
            .recent
            .iter()
            .filter_map(|recorded| recorded.frame.as_ref())
            .filter_map(|frame| match ServerMessage::from_json(frame) {
                Ok(ServerMessage::Event(event)) => Some(event),
                _ => None,
            })
            .collect();
        Some((position, events))
    }

    /// Sends a resuming client the events read for it, then the live ones that waited; or, when
    /// the history no longer has them all, a resync.
    fn resumed_from_history(
        &mut self,
        conn: ConnId,
        request: &BackfillRequest,
        until_seq: u64,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) {
        let Some(catching_up) = self
            .resuming
            .get_mut(&conn)
            .and_then(|matches| matches.remove(&request.topic))
        else {
            return;
        };
        let wanted: Vec<ScoreEvent> = events
            .unwrap_or_default()
            .into_iter()
            .filter(|event| event.epoch == request.epoch && event.seq <= until_seq)
            .collect();
        let complete = wanted.len() as u64 == until_seq - request.after_seq
            && wanted
                .first()
                .is_some_and(|event| event.seq == request.after_seq + 1);
        if complete {
            for event in &wanted {
                self.push_to(conn, Outbound::critical(event_frame(event)));
            }
            for frame in catching_up.waiting {
                self.push_to(conn, frame);
            }
        } else {
            self.resync_one(conn, &request.topic, ResyncReason::HistoryTrimmed);
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

    /// Delivers a match's held events in order, whatever is still missing.
    fn release(&mut self, topic: &MatchTopic) {
        if let Some(held) = self.held.remove(topic) {
            for inbound in held.events.into_values() {
                // A refused event is counted and logged where it is refused.
                let _ = self.deliver(inbound);
            }
        }
    }

    /// After (re)subscribing: asks for everything each match may have missed meanwhile, and for
    /// the recent events a fresh instance has not seen (so clients can resume). With `heads`,
    /// where Redis's numbering stands, it also finds matches with a newer history (read from its
    /// start) and matches Redis forgot (counted; their feeds put them back). Every snapshot is
    /// written again, in case Redis lost them.
    fn catch_up(&mut self, heads: Option<Vec<Head>>) {
        self.matches.mark_all_dirty();
        if self.backfill.is_none() {
            return;
        }
        let mut wanted: Vec<BackfillRequest> = Vec::new();
        let mut forgotten = 0_u64;
        match heads {
            None => {
                for (topic, epoch, seq) in self.matches.unfinished() {
                    wanted.push(self.gap_request(topic, epoch, seq));
                }
            }
            Some(heads) => {
                let heads: HashMap<MatchTopic, Position> = heads
                    .into_iter()
                    .map(|head| (head.topic, head.position))
                    .collect();
                for (topic, epoch, seq) in self.matches.positions() {
                    match heads.get(&topic) {
                        Some(head) if head.epoch > epoch => wanted.push(BackfillRequest {
                            topic,
                            epoch: head.epoch,
                            after_seq: 0,
                            purpose: Purpose::Rebuild,
                        }),
                        Some(head) if head.epoch == epoch && head.seq >= seq => {
                            wanted.push(self.gap_request(topic, epoch, seq));
                        }
                        Some(_) | None if seq > 0 => forgotten += 1,
                        _ => {}
                    }
                }
            }
        }
        if forgotten > 0 {
            tracing::warn!(
                matches = forgotten,
                "Redis no longer holds (all of) the history of some matches; their feeds re-establish it at their next event"
            );
            metrics::counter!(telemetry::HISTORIES_FORGOTTEN).increment(forgotten);
        }
        let Some(backfill) = &self.backfill else {
            return;
        };
        for request in wanted {
            let rebuild = request.purpose == Purpose::Rebuild;
            let topic = request.topic.clone();
            if backfill.try_send(request).is_err() {
                tracing::warn!(
                    "backfill queue full; some matches will catch up at their next event"
                );
                break;
            }
            if rebuild {
                let held = Held {
                    events: BTreeMap::new(),
                    since: Instant::now(),
                };
                self.held.entry(topic).or_insert(held);
            }
        }
    }

    /// The read that fills whatever a match missed after `seq`, and refills its resume record on
    /// a fresh instance.
    fn gap_request(&self, topic: MatchTopic, epoch: u64, seq: u64) -> BackfillRequest {
        let record_empty = self
            .matches
            .entry(topic.as_str())
            .is_none_or(|entry| entry.recent.is_empty());
        let after_seq = if record_empty {
            seq.saturating_sub(self.limits.store.recent_events as u64)
        } else {
            seq
        };
        BackfillRequest {
            topic,
            epoch,
            after_seq,
            purpose: Purpose::Gap,
        }
    }

    /// Applies an event and, if it moved its match forward, sends it to every subscriber once:
    /// as the event itself, or as a `resync` when subscribers cannot follow from the event alone
    /// (the history was reset, or events before it were lost for good).
    fn deliver(&mut self, inbound: InboundEvent) -> Result<usize, Rejected> {
        let InboundEvent {
            mut event,
            received_at,
        } = inbound;
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
        // Serialised once; every recipient shares these bytes.
        let text = event_frame(&event);
        self.matches.remember(
            match_topic.as_str(),
            seq,
            text.clone(),
            accepted.fingerprint,
        );
        let frame = match resync {
            None => Outbound {
                text,
                received_at: Some(received_at),
                coalesce,
            },
            Some(reason) => {
                metrics::counter!(telemetry::RESYNCS, "reason" => reason_label(reason))
                    .increment(1);
                let snapshot = self.matches.get(match_topic.as_str()).cloned();
                let snapshot = snapshot.unwrap_or_else(|| MatchSnapshot::new(match_topic.clone()));
                Outbound::critical(ServerMessage::Resync { reason, snapshot }.to_json())
            }
        };
        let mut recipients = 0;
        let mut coalesced = 0;
        let mut slow = Vec::new();
        for (conn, mailbox) in self.routes.recipients(match_topic.topic()) {
            recipients += 1;
            // Only clients resuming from the Redis history are looked up, and only while any is.
            if !self.resuming.is_empty()
                && let Some(catching_up) = self
                    .resuming
                    .get_mut(&conn)
                    .and_then(|matches| matches.get_mut(&match_topic))
            {
                catching_up.waiting.push(frame.clone());
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
        let overdue: Vec<MatchTopic> = self
            .held
            .iter()
            .filter(|(_, held)| held.since.elapsed() >= BACKFILL_PATIENCE)
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
                    .filter(|(_, catching_up)| catching_up.since.elapsed() >= BACKFILL_PATIENCE)
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

/// The frame that carries one event to clients.
fn event_frame(event: &ScoreEvent) -> ByteString {
    // `ServerMessage::Event` owns its event; the clone is paid once per event, not per recipient.
    ServerMessage::Event(event.clone()).to_json().into()
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

/// What a client resuming a match from `point` gets.
#[derive(Debug, PartialEq)]
enum Resume {
    /// It has every event already.
    UpToDate,
    /// Exactly these frames, in order.
    Replay(Vec<ByteString>),
    /// A fresh snapshot, because continuity cannot be proven.
    Resync(ResyncReason),
}

fn resume_from(point: ResumePoint, snapshot: &MatchSnapshot, recent: &RecentEvents) -> Resume {
    if point.epoch != snapshot.epoch {
        return Resume::Resync(ResyncReason::EpochChanged);
    }
    if point.seq == snapshot.seq {
        return Resume::UpToDate;
    }
    if point.seq > snapshot.seq {
        return Resume::Resync(ResyncReason::UnknownPosition);
    }
    match recent.after(point.seq) {
        Some(frames) => Resume::Replay(frames.cloned().collect()),
        None => Resume::Resync(ResyncReason::HistoryTrimmed),
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

/// Starts the hub task. Changed snapshots go to `store` every [`HOUSEKEEPING_INTERVAL`]; the task
/// ends when `shutdown` fires (after a last flush) or every handle is dropped.
pub fn spawn(
    limits: HubLimits,
    queue_capacity: usize,
    store: Option<mpsc::Sender<StoredSnapshot>>,
    backfill: Option<mpsc::Sender<BackfillRequest>>,
    shutdown: CancellationToken,
) -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, inbox) = mpsc::channel(queue_capacity);
    let handle = HubHandle {
        commands,
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let task = tokio::spawn(run(Hub::new(limits, backfill), inbox, store, shutdown));
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
}
