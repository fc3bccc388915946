//! The current state of every match the service has seen.
//!
//! Every event passes through [`MatchStore::apply`], which runs the protocol's reducer and decides
//! whether the event goes out: duplicates and events that do not fit the match are dropped here,
//! so clients only ever see events that moved a snapshot forward. Snapshots changed since the last
//! flush are marked dirty and written to the broker's store in batches, off the hot path.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, Range};
use std::sync::Arc;

use serde_json::value::RawValue;

use scoreline_protocol::wire::listing_order;
use scoreline_protocol::{
    ApplyError, MatchSnapshot, MatchStatus, MatchTopic, ScoreEvent, Topic, apply,
};

use crate::history::{RecentEvents, Recorded};
use crate::websocket::TextFrame;

/// Which statuses a listing keeps: any, or a set of them.
///
/// `live` stands for what fans call live: a match in play, at a break (half-time, between
/// quarters) or suspended, the way the scoreboards and the listing order group them. The exact
/// statuses `break` and `suspended` can still be asked for on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFilter {
    /// One bit per [`MatchStatus`] kept; 0 keeps every status.
    bits: u8,
}

/// Why a status list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {0:?}; expected a comma-separated list of scheduled, live, break, suspended, finished, abandoned, postponed"
)]
pub struct UnknownStatus(pub String);

impl StatusFilter {
    /// Keeps every status.
    pub const ANY: StatusFilter = StatusFilter { bits: 0 };

    /// Also keeps `status` (with `live`, also `break` and `suspended`).
    pub fn with(mut self, status: MatchStatus) -> StatusFilter {
        let statuses: &[MatchStatus] = match status {
            MatchStatus::Live => &[
                MatchStatus::Live,
                MatchStatus::Break,
                MatchStatus::Suspended,
            ],
            _ => std::slice::from_ref(&status),
        };
        for status in statuses {
            self.bits |= 1 << Self::index(*status);
        }
        self
    }

    /// Parses a comma-separated list such as `live,scheduled`; empty items are skipped, and an
    /// empty list keeps every status.
    pub fn parse(text: &str) -> Result<StatusFilter, UnknownStatus> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .try_fold(StatusFilter::ANY, |filter, item| {
                serde_json::from_value::<MatchStatus>(serde_json::Value::String(item.to_owned()))
                    .map(|status| filter.with(status))
                    .map_err(|_| UnknownStatus(item.to_owned()))
            })
    }

    /// Whether a match with `status` is kept.
    pub fn admits(self, status: MatchStatus) -> bool {
        self.bits == 0 || self.bits & (1 << Self::index(status)) != 0
    }

    fn index(status: MatchStatus) -> u8 {
        match status {
            MatchStatus::Scheduled => 0,
            MatchStatus::Live => 1,
            MatchStatus::Break => 2,
            MatchStatus::Suspended => 3,
            MatchStatus::Finished => 4,
            MatchStatus::Abandoned => 5,
            MatchStatus::Postponed => 6,
        }
    }
}

impl From<Option<MatchStatus>> for StatusFilter {
    fn from(status: Option<MatchStatus>) -> StatusFilter {
        status.map_or(StatusFilter::ANY, |status| StatusFilter::ANY.with(status))
    }
}

/// Bounds of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Most matches kept; when full, the longest-finished match makes room, and events of new
    /// matches are refused if none has finished.
    pub max_matches: usize,
    /// How long a finished match is kept after its last event, in milliseconds.
    pub finished_retention_ms: u64,
    /// Frames of recent events kept per match for resuming clients.
    pub recent_events: usize,
}

/// The event moved its match forward and goes out to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `seq` values never seen before this event (a gap in the feed).
    pub missed: Option<Range<u64>>,
    /// The event started a new epoch: the match's history was reset.
    pub reset: bool,
    /// The seq of the match's critical event before this one (0 for none), which the event
    /// carries to clients as `prev_critical_seq`.
    pub prev_critical_seq: u64,
    /// The event's [`fingerprint`], to record with its frame.
    pub fingerprint: u64,
}

/// Why an event was not applied (and is not sent to anyone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Already applied, or older than the current state.
    #[error("duplicate or out-of-order event: {0}")]
    Stale(ApplyError),
    /// A different event under a seq already applied: the history was rewritten (a failover to
    /// a replica that missed writes, then other events numbered in their place).
    #[error("a different event under seq {seq}, which was already applied")]
    Conflict {
        /// The seq both events claim.
        seq: u64,
    },
    /// Does not fit the match (wrong sport, after the end, unknown correction target...). When
    /// it came next in the match's history its seq is used up anyway, as a no-op, so the next
    /// event does not look like a loss.
    #[error("event does not fit the match: {0}")]
    Invalid(ApplyError),
    /// Of a newer history that could not be read from its start: applying it would show the
    /// match from the middle (blank names, a reset score), so the last proven state is kept.
    #[error("epoch {0} of this match could not be read from its start")]
    Unreadable(u64),
    /// The store is full of matches still in play.
    #[error("the match store is full ({0} matches)")]
    StoreFull(usize),
}

impl Rejected {
    /// The reducer's reason, for an answer to whoever published the event.
    pub fn into_cause(self) -> ApplyError {
        match self {
            Rejected::Stale(error) | Rejected::Invalid(error) => error,
            Rejected::Conflict { seq } => ApplyError::NotNewer {
                current: seq,
                got: seq,
            },
            Rejected::Unreadable(epoch) => ApplyError::StaleEpoch {
                current: epoch,
                got: epoch,
            },
            Rejected::StoreFull(_) => ApplyError::NotNewer { current: 0, got: 0 },
        }
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejected::Stale(_) => "stale",
            Rejected::Conflict { .. } => "conflict",
            Rejected::Invalid(_) => "invalid",
            Rejected::Unreadable(_) => "unreadable",
            Rejected::StoreFull(_) => "store_full",
        }
    }
}

/// What the store keeps per match.
#[derive(Debug)]
pub struct Entry {
    /// The current state.
    pub snapshot: MatchSnapshot,
    /// The frames of its latest events, for clients that resume.
    pub recent: RecentEvents,
    /// A newer epoch whose history could not be read from its start, and since when: its events
    /// are refused until a read succeeds.
    pub unreadable: Option<u64>,
    /// The snapshot as JSON, made for the first fan who subscribes after it changed and shared by
    /// the next ones ([`MatchStore::snapshot_json`]); every change of the snapshot through the
    /// store drops it. A cell, so the store's readers can fill it through a shared borrow while
    /// they hold others (a subscribe's chosen matches, the writer's dirty ones).
    json: OnceCell<Arc<RawValue>>,
}

impl Entry {
    /// The snapshot as JSON, made now if it changed since it was last made.
    fn json(&self) -> Option<Arc<RawValue>> {
        if let Some(json) = self.json.get() {
            return Some(Arc::clone(json));
        }
        // Serialised straight into a `RawValue`: `RawValue::from_string` would parse the text
        // again to check what serde_json has just written.
        let json = serde_json::value::to_raw_value(&self.snapshot).ok()?;
        Some(Arc::clone(self.json.get_or_init(|| Arc::from(json))))
    }

    /// A match nothing is known about yet.
    pub fn new(topic: MatchTopic) -> Entry {
        Entry {
            snapshot: MatchSnapshot::new(topic),
            recent: RecentEvents::default(),
            unreadable: None,
            json: OnceCell::new(),
        }
    }
}

/// A digest of what an event says (everything but its place in the history and the service's
/// own stamp), so the same event published twice under one seq is a duplicate, and a different
/// one a conflict.
pub fn fingerprint(event: &ScoreEvent) -> u64 {
    use std::hash::Hasher;
    /// Feeds serialised bytes straight into the hasher, without building a string.
    struct Digest(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Digest {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut digest = Digest(std::collections::hash_map::DefaultHasher::new());
    digest.0.write_u64(event.ts_ms);
    digest.0.write_u32(event.clock_secs.unwrap_or(u32::MAX));
    // Writing into a hasher cannot fail; an event that does not serialise digests to its
    // envelope alone, which is still deterministic.
    if serde_json::to_writer(&mut digest, &event.kind).is_err() {
        digest.0.write_u8(0);
    }
    digest.0.finish()
}

/// Snapshots by match topic, ordered so a prefix selects a contiguous range.
#[derive(Debug)]
pub struct MatchStore {
    matches: BTreeMap<MatchTopic, Entry>,
    dirty: BTreeSet<MatchTopic>,
    limits: StoreLimits,
}

impl MatchStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> MatchStore {
        MatchStore {
            matches: BTreeMap::new(),
            dirty: BTreeSet::new(),
            limits,
        }
    }

    /// Applies an event to its match, creating the match when it is new.
    pub fn apply(&mut self, event: &ScoreEvent) -> Result<Accepted, Rejected> {
        let fingerprint = fingerprint(event);
        if !self.matches.contains_key(&event.match_topic) {
            self.make_room(event.ts_ms)?;
        }
        let entry = self
            .matches
            .entry(event.match_topic.clone())
            .or_insert_with(|| Entry::new(event.match_topic.clone()));
        if entry.unreadable == Some(event.epoch) {
            return Err(Rejected::Unreadable(event.epoch));
        }
        // Whatever follows may change the snapshot.
        entry.json.take();
        let snapshot = &mut entry.snapshot;
        let prev_critical_seq = snapshot.critical_seq;
        let outcome = match apply(snapshot, event) {
            Ok(applied) => Ok(Accepted {
                missed: applied.missed,
                reset: false,
                prev_critical_seq,
                fingerprint,
            }),
            Err(ApplyError::EpochChanged { .. }) => {
                // The feed reset this match's history: start again from the new epoch.
                let mut fresh = MatchSnapshot::new(event.match_topic.clone());
                let applied = apply(&mut fresh, event).map_err(Rejected::Invalid)?;
                *snapshot = fresh;
                entry.recent.clear();
                entry.unreadable = None;
                Ok(Accepted {
                    missed: applied.missed,
                    reset: true,
                    prev_critical_seq: 0,
                    fingerprint,
                })
            }
            Err(error @ ApplyError::NotNewer { .. }) => match entry.recent.fingerprint(event.seq) {
                Some(held) if held != fingerprint => Err(Rejected::Conflict { seq: event.seq }),
                _ => Err(Rejected::Stale(error)),
            },
            Err(error @ ApplyError::StaleEpoch { .. }) => Err(Rejected::Stale(error)),
            Err(error) => {
                if snapshot.seq > 0
                    && event.epoch == snapshot.epoch
                    && event.seq == snapshot.seq + 1
                {
                    // Next in the history but refused: use its seq up as a no-op, so the next
                    // event follows on and nobody mistakes the refusal for a loss.
                    snapshot.seq = event.seq;
                    let skipped = Recorded {
                        seq: event.seq,
                        frame: None,
                        fingerprint,
                    };
                    entry.recent.push(skipped, self.limits.recent_events);
                    self.dirty.insert(event.match_topic.clone());
                }
                Err(Rejected::Invalid(error))
            }
        };
        match &outcome {
            Ok(_) => {
                self.dirty.insert(event.match_topic.clone());
            }
            Err(_)
                if self
                    .get(event.match_topic.as_str())
                    .is_some_and(|s| s.seq == 0) =>
            {
                // Never keep an empty match created by a rejected event.
                self.matches.remove(&event.match_topic);
            }
            Err(_) => {}
        }
        outcome
    }

    /// Whether `event` would apply to its match as it stands, numbered next in the current
    /// history (or as the first of a new one): the check before a feed numbers an event.
    pub fn check(&self, event: &ScoreEvent) -> Result<(), ApplyError> {
        let mut snapshot = match self.get(event.match_topic.as_str()) {
            Some(current) if event.epoch == current.epoch => current.clone(),
            _ => MatchSnapshot::new(event.match_topic.clone()),
        };
        let mut numbered = event.clone();
        if numbered.epoch == snapshot.epoch {
            numbered.seq = snapshot.seq + 1;
        } else {
            numbered.seq = 1;
        }
        apply(&mut snapshot, &numbered).map(drop)
    }

    /// Replaces a match with one rebuilt from its history (see `Hub`), keeping nothing of the old.
    pub fn replace(&mut self, mut entry: Entry) {
        entry.json.take();
        let topic = entry.snapshot.match_topic.clone();
        self.dirty.insert(topic.clone());
        self.matches.insert(topic, entry);
    }

    /// Marks a newer epoch of a match as unreadable (its history does not reach back to its
    /// start), and the state held as stale. Returns the stale snapshot.
    pub fn mark_unreadable(&mut self, topic: &str, epoch: u64) -> Option<&MatchSnapshot> {
        let entry = self.matches.get_mut(topic)?;
        entry.unreadable = Some(epoch);
        entry.snapshot.stale = true;
        entry.json.take();
        self.dirty.insert(entry.snapshot.match_topic.clone());
        Some(&entry.snapshot)
    }

    /// Every match, for the store to write again (Redis lost them).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.matches.keys().cloned());
    }

    fn make_room(&mut self, now_ms: u64) -> Result<(), Rejected> {
        if self.matches.len() < self.limits.max_matches {
            return Ok(());
        }
        self.evict_finished(now_ms);
        if self.matches.len() < self.limits.max_matches {
            return Ok(());
        }
        let oldest_over = self
            .matches
            .values()
            .map(|entry| &entry.snapshot)
            .filter(|snapshot| snapshot.status.is_over())
            .min_by_key(|snapshot| snapshot.updated_ms)
            .map(|snapshot| snapshot.match_topic.clone());
        match oldest_over {
            Some(topic) => {
                self.matches.remove(&topic);
                Ok(())
            }
            None => Err(Rejected::StoreFull(self.matches.len())),
        }
    }

    /// Drops matches that finished more than the retention period before `now_ms`.
    pub fn evict_finished(&mut self, now_ms: u64) -> usize {
        let retention_ms = self.limits.finished_retention_ms;
        let before = self.matches.len();
        self.matches.retain(|_, Entry { snapshot, .. }| {
            !snapshot.status.is_over() || snapshot.updated_ms.saturating_add(retention_ms) > now_ms
        });
        before - self.matches.len()
    }

    /// Takes a snapshot from the shared store (another instance, or before a restart) when it is
    /// newer than what this instance has. Returns whether it was taken.
    pub fn restore(&mut self, snapshot: MatchSnapshot) -> bool {
        let newer = match self.matches.get(&snapshot.match_topic) {
            None => self.matches.len() < self.limits.max_matches,
            Some(current) => {
                (snapshot.epoch, snapshot.seq) > (current.snapshot.epoch, current.snapshot.seq)
            }
        };
        if newer {
            let entry = Entry {
                snapshot,
                recent: RecentEvents::default(),
                unreadable: None,
                json: OnceCell::new(),
            };
            self.matches
                .insert(entry.snapshot.match_topic.clone(), entry);
        }
        newer
    }

    /// One match's snapshot as JSON, serialised once per change of the snapshot however many fans
    /// subscribe meanwhile (and the store writes the same); `None` for a match not kept.
    pub fn snapshot_json(&self, topic: &str) -> Option<Arc<RawValue>> {
        self.matches.get(topic)?.json()
    }

    /// One match.
    pub fn get(&self, topic: &str) -> Option<&MatchSnapshot> {
        self.matches.get(topic).map(|entry| &entry.snapshot)
    }

    /// One match with its recent events.
    pub fn entry(&self, topic: &str) -> Option<&Entry> {
        self.matches.get(topic)
    }

    /// Records the frame of an event just applied, for resuming clients.
    pub fn remember(&mut self, topic: &str, seq: u64, frame: TextFrame, fingerprint: u64) {
        if let Some(entry) = self.matches.get_mut(topic) {
            let recorded = Recorded {
                seq,
                frame: Some(frame),
                fingerprint,
            };
            entry.recent.push(recorded, self.limits.recent_events);
        }
    }

    /// Adds events older than those held (read back after a restart).
    pub fn remember_older(&mut self, topic: &str, older: Vec<Recorded>) {
        if let Some(entry) = self.matches.get_mut(topic) {
            entry.recent.prepend(older, self.limits.recent_events);
        }
    }

    /// Takes a match out of the store.
    pub fn take(&mut self, topic: &str) -> Option<Entry> {
        self.matches.remove(topic)
    }

    /// Every match, with its position.
    pub fn positions(&self) -> Vec<(MatchTopic, u64, u64)> {
        self.matches
            .values()
            .map(|entry| {
                (
                    entry.snapshot.match_topic.clone(),
                    entry.snapshot.epoch,
                    entry.snapshot.seq,
                )
            })
            .collect()
    }

    /// Every match still being played or yet to be played, with its position.
    pub fn unfinished(&self) -> Vec<(MatchTopic, u64, u64)> {
        self.matches
            .values()
            .filter(|entry| !entry.snapshot.status.is_over())
            .map(|entry| {
                (
                    entry.snapshot.match_topic.clone(),
                    entry.snapshot.epoch,
                    entry.snapshot.seq,
                )
            })
            .collect()
    }

    /// The matches a topic covers, in topic order.
    pub fn covered<'a>(
        &'a self,
        topic: &Topic,
    ) -> impl Iterator<Item = &'a MatchSnapshot> + use<'a> {
        // Every match under `a/b` sorts between `a/b/` and `a/b0` ('0' follows '/').
        let (low, high) = if topic.is_match() {
            (
                Bound::Included(topic.to_string()),
                Bound::Included(topic.to_string()),
            )
        } else {
            (
                Bound::Included(format!("{topic}/")),
                Bound::Excluded(format!("{topic}0")),
            )
        };
        let bounds = (
            low.as_ref().map(String::as_str),
            high.as_ref().map(String::as_str),
        );
        self.matches
            .range::<str, _>(bounds)
            .map(|(_, entry)| &entry.snapshot)
    }

    /// Matches under any of `topics` (each once) whose status `status` admits, in listing order
    /// (live first); at most `limit`, plus how many more there were.
    pub fn select<'a>(
        &'a self,
        topics: &[Topic],
        status: impl Into<StatusFilter>,
        limit: usize,
    ) -> (Vec<&'a MatchSnapshot>, usize) {
        let status = status.into();
        let mut found: Vec<&MatchSnapshot> = Vec::new();
        let mut seen = BTreeSet::new();
        for topic in topics {
            for snapshot in self.covered(topic) {
                if status.admits(snapshot.status) && seen.insert(&snapshot.match_topic) {
                    found.push(snapshot);
                }
            }
        }
        found.sort_by(|a, b| listing_order(a, b));
        let omitted = found.len().saturating_sub(limit);
        found.truncate(limit);
        (found, omitted)
    }

    /// Every match, in listing order, filtered by status; at most `limit`, plus how many more.
    pub fn all(
        &self,
        status: impl Into<StatusFilter>,
        limit: usize,
    ) -> (Vec<&MatchSnapshot>, usize) {
        let status = status.into();
        let mut found: Vec<&MatchSnapshot> = self
            .matches
            .values()
            .map(|entry| &entry.snapshot)
            .filter(|snapshot| status.admits(snapshot.status))
            .collect();
        found.sort_by(|a, b| listing_order(a, b));
        let omitted = found.len().saturating_sub(limit);
        found.truncate(limit);
        (found, omitted)
    }

    /// Snapshots changed since the last call, for persisting, each with its JSON: the same bytes
    /// fans who subscribe get until the snapshot changes again, made once for both.
    pub fn take_dirty(&mut self) -> Vec<(&MatchSnapshot, Arc<RawValue>)> {
        let dirty = std::mem::take(&mut self.dirty);
        let matches = &self.matches;
        dirty
            .iter()
            .filter_map(|topic| {
                let entry = matches.get(topic)?;
                Some((&entry.snapshot, entry.json()?))
            })
            .collect()
    }

    /// Marks a match as still needing to be persisted (the writer was busy).
    pub fn mark_dirty(&mut self, topic: MatchTopic) {
        self.dirty.insert(topic);
    }

    /// Matches kept.
    pub fn len(&self) -> usize {
        self.matches.len()
    }

    /// Whether no match is kept.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scoreline_protocol::{EventKind, Side, test_support};

    const LIMITS: StoreLimits = StoreLimits {
        max_matches: 3,
        finished_retention_ms: 1000,
        recent_events: 8,
    };

    fn event(topic: &str, epoch: u64, seq: u64, kind: EventKind) -> ScoreEvent {
        ScoreEvent {
            epoch,
            ts_ms: seq * 10,
            ..test_support::event(topic, seq, kind)
        }
    }

    /// A home goal.
    fn goal() -> EventKind {
        test_support::goal(Side::Home)
    }

    /// The snapshot as a fan subscribing now gets it.
    fn served(store: &mut MatchStore, topic: &str) -> MatchSnapshot {
        let json = store.snapshot_json(topic).expect("the match is kept");
        serde_json::from_str(json.get()).expect("a snapshot")
    }

    #[test]
    fn the_json_served_to_subscribers_is_made_once_per_change_and_follows_every_change() {
        const GAME: &str = "football/pl/ars-che";
        let mut store = MatchStore::new(LIMITS);
        assert!(store.snapshot_json(GAME).is_none());
        store.apply(&event(GAME, 1, 1, goal())).unwrap();
        let first = store.snapshot_json(GAME).unwrap();
        assert!(
            Arc::ptr_eq(&first, &store.snapshot_json(GAME).unwrap()),
            "made once, shared by the next fans"
        );
        assert_eq!(&served(&mut store, GAME), store.get(GAME).unwrap());

        // An event, a duplicate, the next event.
        store.apply(&event(GAME, 1, 2, goal())).unwrap();
        assert_eq!(served(&mut store, GAME).score.home, 2);
        assert!(store.apply(&event(GAME, 1, 2, goal())).is_err());
        assert_eq!(served(&mut store, GAME).score.home, 2);
        // A new history (epoch) of the match.
        store.apply(&event(GAME, 2, 1, goal())).unwrap();
        let now = served(&mut store, GAME);
        assert_eq!((now.epoch, now.seq, now.score.home), (2, 1, 1));
        // Marked stale.
        store.mark_unreadable(GAME, 3);
        assert!(served(&mut store, GAME).stale);
        // Restored from a newer stored snapshot.
        let mut newer = store.get(GAME).unwrap().clone();
        newer.seq = 9;
        newer.score.home = 5;
        newer.stale = false;
        assert!(store.restore(newer.clone()));
        assert_eq!(served(&mut store, GAME), newer);
        // Rebuilt from history and put back.
        let mut rebuilt = store.take(GAME).unwrap();
        rebuilt.snapshot.score.home = 4;
        store.replace(rebuilt);
        assert_eq!(served(&mut store, GAME).score.home, 4);
        assert_eq!(&served(&mut store, GAME), store.get(GAME).unwrap());

        // The store writes the same JSON, made once for both.
        store.apply(&event(GAME, 2, 10, goal())).unwrap();
        let dirty = store.take_dirty();
        assert_eq!(dirty.len(), 1);
        let stored = Arc::clone(&dirty[0].1);
        assert_eq!(dirty[0].0.seq, 10);
        assert!(Arc::ptr_eq(&stored, &store.snapshot_json(GAME).unwrap()));
        assert_eq!(served(&mut store, GAME).score.home, 5);
    }

    #[test]
    fn applies_in_order_and_rejects_duplicates() {
        let mut store = MatchStore::new(LIMITS);
        let topic = "football/pl/a-b";
        let first = event(topic, 0, 1, EventKind::MatchStarted);
        assert_eq!(
            store.apply(&first),
            Ok(Accepted {
                missed: None,
                reset: false,
                prev_critical_seq: 0,
                fingerprint: fingerprint(&first),
            })
        );
        assert!(matches!(
            store.apply(&event(topic, 0, 1, EventKind::MatchStarted)),
            Err(Rejected::Stale(_))
        ));
        let accepted = store.apply(&event(topic, 0, 4, goal())).unwrap();
        assert_eq!(accepted.missed, Some(2..4));
        assert_eq!(store.get(topic).unwrap().score.home, 1);
    }

    #[test]
    fn new_epoch_resets_the_match() {
        let mut store = MatchStore::new(LIMITS);
        let topic = "football/pl/a-b";
        store.apply(&event(topic, 0, 1, goal())).unwrap();
        store.apply(&event(topic, 0, 2, goal())).unwrap();
        let accepted = store
            .apply(&event(topic, 1, 1, EventKind::MatchStarted))
            .unwrap();
        assert!(accepted.reset);
        let snapshot = store.get(topic).unwrap();
        assert_eq!(
            (snapshot.epoch, snapshot.seq, snapshot.score.home),
            (1, 1, 0)
        );
        assert!(matches!(
            store.apply(&event(topic, 0, 3, goal())),
            Err(Rejected::Stale(_))
        ));
    }

    #[test]
    fn invalid_first_event_leaves_no_empty_match() {
        let mut store = MatchStore::new(LIMITS);
        let bad = event("tennis/w/a-b", 0, 1, goal());
        assert!(matches!(store.apply(&bad), Err(Rejected::Invalid(_))));
        assert!(store.is_empty());
    }

    #[test]
    fn full_store_evicts_finished_matches_then_refuses() {
        let mut store = MatchStore::new(LIMITS);
        store
            .apply(&event("football/pl/a-b", 0, 1, EventKind::MatchStarted))
            .unwrap();
        store
            .apply(&event(
                "football/pl/a-b",
                0,
                2,
                EventKind::MatchEnded { winner: None },
            ))
            .unwrap();
        store
            .apply(&event("football/pl/c-d", 0, 1, EventKind::MatchStarted))
            .unwrap();
        store
            .apply(&event("football/pl/e-f", 0, 1, EventKind::MatchStarted))
            .unwrap();
        store
            .apply(&event("football/pl/g-h", 0, 1, EventKind::MatchStarted))
            .unwrap();
        assert!(
            store.get("football/pl/a-b").is_none(),
            "the finished match made room"
        );
        assert_eq!(
            store.apply(&event("football/pl/i-j", 0, 1, EventKind::MatchStarted)),
            Err(Rejected::StoreFull(3))
        );
    }

    #[test]
    fn a_fans_live_includes_breaks_and_lists_combine() {
        let live = StatusFilter::parse("live").unwrap();
        for status in [
            MatchStatus::Live,
            MatchStatus::Break,
            MatchStatus::Suspended,
        ] {
            assert!(live.admits(status), "{status:?}");
        }
        assert!(!live.admits(MatchStatus::Finished));
        let breaks = StatusFilter::parse("break").unwrap();
        assert!(breaks.admits(MatchStatus::Break) && !breaks.admits(MatchStatus::Live));
        let both = StatusFilter::parse(" scheduled , finished,").unwrap();
        assert!(both.admits(MatchStatus::Scheduled) && both.admits(MatchStatus::Finished));
        assert!(!both.admits(MatchStatus::Live));
        assert_eq!(StatusFilter::parse(""), Ok(StatusFilter::ANY));
        assert!(StatusFilter::ANY.admits(MatchStatus::Postponed));
        assert_eq!(
            StatusFilter::parse("live,sleeping"),
            Err(UnknownStatus("sleeping".into()))
        );
        assert_eq!(StatusFilter::from(Some(MatchStatus::Live)), live);
        assert_eq!(StatusFilter::from(None), StatusFilter::ANY);
    }

    #[test]
    fn covered_selects_by_whole_segment_prefix() {
        let mut store = MatchStore::new(StoreLimits {
            max_matches: 10,
            ..LIMITS
        });
        for topic in [
            "football/pl/a-b",
            "football/pl/c-d",
            "football/pla/x-y",
            "tennis/w/a-b",
        ] {
            store
                .apply(&event(topic, 0, 1, EventKind::MatchStarted))
                .unwrap();
        }
        let names = |text: &str| {
            let topic = Topic::parse(text).unwrap();
            store
                .covered(&topic)
                .map(|s| s.match_topic.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("football/pl"), ["football/pl/a-b", "football/pl/c-d"]);
        assert_eq!(names("football").len(), 3);
        assert_eq!(names("football/pl/c-d"), ["football/pl/c-d"]);
        assert!(names("basketball").is_empty());
    }

    #[test]
    fn restore_keeps_the_newest() {
        let mut store = MatchStore::new(LIMITS);
        let topic = "football/pl/a-b";
        store.apply(&event(topic, 0, 1, goal())).unwrap();
        store.apply(&event(topic, 0, 2, goal())).unwrap();
        let older = {
            let mut older = MatchSnapshot::new(MatchTopic::parse(topic).unwrap());
            apply(&mut older, &event(topic, 0, 1, goal())).unwrap();
            older
        };
        assert!(!store.restore(older));
        let mut newer = store.get(topic).unwrap().clone();
        apply(&mut newer, &event(topic, 0, 3, goal())).unwrap();
        assert!(store.restore(newer));
        assert_eq!(store.get(topic).unwrap().score.home, 3);
    }
}
