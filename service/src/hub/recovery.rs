//! Keeping delivery gap-free and every match true to its history in Redis: events that skip
//! `seq` values are held while the missing ones are read back; a newer history first seen
//! mid-way, or a conflict showing the history was rewritten, makes the match be rebuilt from the
//! start of its history; after (re)subscribing, every match is compared with where Redis's
//! numbering stands. Plain decisions on the hub's data: the reads themselves are the broker's.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use scoreline_feed::Position;
use scoreline_protocol::{MatchTopic, ResyncReason, ScoreEvent, ServerMessage};

use super::{BACKFILL_PATIENCE, Hub, InboundEvent, MAX_HELD, event_frame};
use crate::history::Recorded;
use crate::matches::{MatchStore, Rejected, StoreLimits, fingerprint};
use crate::routing::ConnId;
use crate::telemetry;

/// The last of `seqs` when they run one after another from `first`, without a hole or a repeat;
/// `None` when they do not (or there are none). Whether events read back cover what is wanted.
pub(super) fn last_of_run(seqs: impl IntoIterator<Item = u64>, first: u64) -> Option<u64> {
    let mut next = first;
    for seq in seqs {
        if seq != next {
            return None;
        }
        next += 1;
    }
    (next > first).then(|| next - 1)
}

/// A request to read a match's history after `after_seq` from the broker; the answer comes back
/// as [`Command::Backfill`](super::Command::Backfill).
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

/// Events held for one match until its gap is filled, by (epoch, seq).
#[derive(Debug)]
pub(super) struct Held {
    pub(super) events: BTreeMap<(u64, u64), InboundEvent>,
    pub(super) since: Instant,
}

impl Hub {
    /// Takes an event from the broker. If it follows its match's history it goes out at once; if
    /// it skips `seq` values it is held while the missing ones are fetched, and if it belongs to a
    /// newer history first seen mid-way, while that history is read from its start. Returns the
    /// number of recipients (0 while held).
    pub fn publish(&mut self, inbound: InboundEvent) -> Result<usize, Rejected> {
        metrics::counter!(telemetry::EVENTS_IN).increment(1);
        let topic = inbound.event.match_topic.clone();
        if let Some(held) = self.held.get_mut(&topic) {
            if held.events.len() < MAX_HELD
                && self.now.saturating_duration_since(held.since) < BACKFILL_PATIENCE
            {
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
                        since: self.now,
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
    pub(super) fn missing_before(&self, event: &ScoreEvent) -> Option<(u64, Purpose)> {
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
    pub(super) fn backfilled(
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
    pub(super) fn fill_gap(
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
                        received_at: self.now,
                    };
                    if self.deliver(inbound).is_ok() {
                        filled += 1;
                    }
                }
            }
        }
        self.rewound(&request.topic, &older);
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
    pub(super) fn refill_record(
        &mut self,
        topic: &MatchTopic,
        older: Vec<ScoreEvent>,
    ) -> Option<(u64, u64)> {
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
    pub(super) fn conflicted(&mut self, topic: &MatchTopic, epoch: u64, seq: u64) {
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
                since: self.now,
            };
            self.held.insert(topic.clone(), held);
        } else {
            tracing::warn!(%topic, "cannot read the history now (queue full or no history); keeping the state held");
        }
    }

    /// Builds a match again from the start of an epoch's history and, if that differs from what
    /// subscribers hold, sends them the rebuilt state. Without a history that reaches back to the
    /// start, keeps the last state it can prove, marks it stale and says so.
    pub(super) fn rebuild(
        &mut self,
        request: &BackfillRequest,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) {
        let topic = &request.topic;
        self.not_rewound(topic);
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
        let complete = last_of_run(events.iter().map(|event| event.seq), 1).is_some();
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
    pub(super) fn history_unreadable(&mut self, topic: &MatchTopic, epoch: u64) {
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

    /// Delivers a match's held events in order, whatever is still missing.
    pub(super) fn release(&mut self, topic: &MatchTopic) {
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
    pub(super) fn catch_up(&mut self, heads: Option<Vec<Head>>) {
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
                    since: self.now,
                };
                self.held.entry(topic).or_insert(held);
            }
        }
    }

    /// The read that fills whatever a match missed after `seq`, and refills its resume record on
    /// a fresh instance.
    pub(super) fn gap_request(&self, topic: MatchTopic, epoch: u64, seq: u64) -> BackfillRequest {
        let record_empty = self
            .matches
            .entry(topic.as_str())
            .is_none_or(|entry| entry.recent.is_empty());
        let after_seq = if self.wants_whole_history(&topic) {
            // A restored match whose past delayed fans may need: read all of it.
            0
        } else if record_empty {
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

    /// What the service holds of a match's history: its position and the events it keeps.
    pub(super) fn ledger(&self, topic: &MatchTopic) -> Option<(Position, Vec<ScoreEvent>)> {
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
}

#[cfg(test)]
mod tests {
    use super::last_of_run;

    #[test]
    fn a_run_of_seqs_ends_where_it_ends_only_without_a_hole_or_a_repeat() {
        assert_eq!(last_of_run([1, 2, 3], 1), Some(3));
        assert_eq!(last_of_run([5], 5), Some(5));
        assert_eq!(last_of_run([], 1), None, "nothing read covers nothing");
        assert_eq!(last_of_run([2, 3], 1), None, "the start is missing");
        assert_eq!(last_of_run([1, 3], 1), None, "a hole");
        assert_eq!(last_of_run([1, 1, 2], 1), None, "a repeat");
    }
}
