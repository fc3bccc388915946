//! A publisher that remembers: it numbers events through [`PUBLISH_SCRIPT`](crate::PUBLISH_SCRIPT)
//! and keeps, per match, the position Redis last confirmed and the events of that history, so
//! that when Redis forgets (a restart without persistence) or goes back (a failover to a replica
//! that missed writes) it puts the match's numbering and history back before going on.
//!
//! Redis is where events are numbered, but it may lose what it held; the feed is the one party
//! that knows for sure what it published. Without this, the script would start a new history in
//! the middle of a match, and every reader would reset the match to a blank 0-0.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use scoreline_protocol::{EventDraft, MatchTopic, ScoreEvent};

use crate::{FeedError, Layout, Numbered, Position, Restored, number, restore};

/// What one match's publisher remembers.
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// The position of the last event Redis confirmed.
    confirmed: Option<Position>,
    /// The events of the current epoch, oldest first, at most the history length: what is put
    /// back into a Redis that forgot them.
    events: VecDeque<ScoreEvent>,
}

impl Ledger {
    fn record(&mut self, event: &ScoreEvent, history_len: usize) {
        if self
            .confirmed
            .is_some_and(|position| position.epoch != event.epoch)
        {
            self.events.clear();
        }
        self.confirmed = Some(Position {
            epoch: event.epoch,
            seq: event.seq,
        });
        if self.events.len() >= history_len.max(1) {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
    }
}

/// The memory of every match one feed publishes, shared by clones of its [`Publisher`] (and by
/// publishers over other connections made with [`Publisher::with_ledgers`]), with a record of the
/// recoveries it made.
#[derive(Debug, Default, Clone)]
pub struct Ledgers(Arc<Mutex<Memory>>);

#[derive(Debug, Default)]
struct Memory {
    matches: HashMap<MatchTopic, Ledger>,
    /// The last [`RECOVERIES_KEPT`] recoveries, oldest first.
    recoveries: VecDeque<Recovery>,
}

/// Recoveries kept for [`Ledgers::recoveries`].
const RECOVERIES_KEPT: usize = 1_000;

impl Ledgers {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The lock is never held across an await or a call that can panic halfway.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, topic: &MatchTopic) -> Ledger {
        self.memory()
            .matches
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    fn record(&self, event: &ScoreEvent, history_len: usize) {
        self.memory()
            .matches
            .entry(event.match_topic.clone())
            .or_default()
            .record(event, history_len);
    }

    fn expectation(&self, topic: &MatchTopic) -> Option<Position> {
        self.memory()
            .matches
            .get(topic)
            .and_then(|ledger| ledger.confirmed)
    }

    fn remember(&self, recovery: Recovery) {
        let mut memory = self.memory();
        if memory.recoveries.len() >= RECOVERIES_KEPT {
            memory.recoveries.pop_front();
        }
        memory.recoveries.push_back(recovery);
    }

    /// The times a match was found forgotten by Redis and put back, oldest first (the last
    /// 1,000).
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.memory().recoveries.iter().cloned().collect()
    }

    /// Forgets a match (it is over and will not be published again).
    pub fn forget(&self, topic: &MatchTopic) {
        self.memory().matches.remove(topic);
    }
}

/// One time a publisher found that Redis had forgotten a match and put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The match.
    pub topic: MatchTopic,
    /// Where the publisher stood.
    pub position: Position,
    /// What Redis held instead (`None`: nothing at all).
    pub redis_had: Option<Position>,
    /// How it was put back.
    pub how: RecoveryKind,
}

/// How a forgotten match was put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryKind {
    /// The same epoch and seq, with this many history entries written back: readers see no
    /// change at all.
    Restored {
        /// History entries written back.
        entries: usize,
    },
    /// Redis held a newer epoch (someone else started the match again), so every remembered
    /// event was published again as a new history, from its start.
    Republished {
        /// Events published again.
        events: usize,
    },
}

/// Publishes events through the numbering script and re-establishes a match's history when
/// Redis has forgotten it.
#[derive(Clone)]
pub struct Publisher<C> {
    connection: C,
    layout: Layout,
    ledgers: Ledgers,
}

impl<C: redis::aio::ConnectionLike + Send> Publisher<C> {
    /// A publisher over any async Redis connection (a `MultiplexedConnection` or a
    /// `ConnectionManager`, which reconnects by itself), with a memory of its own.
    pub fn new(connection: C, layout: Layout) -> Publisher<C> {
        Publisher::with_ledgers(connection, layout, Ledgers::default())
    }

    /// A publisher sharing `ledgers` with others, e.g. one made again over a new connection
    /// after the old one broke: the memory of what was published must outlive connections.
    pub fn with_ledgers(connection: C, layout: Layout, ledgers: Ledgers) -> Publisher<C> {
        Publisher {
            connection,
            layout,
            ledgers,
        }
    }

    /// This publisher's memory, to share with a publisher over another connection.
    pub fn ledgers(&self) -> &Ledgers {
        &self.ledgers
    }

    /// Numbers, records and publishes one event; returns it as subscribers receive it.
    pub async fn publish(&mut self, draft: &EventDraft) -> Result<ScoreEvent, FeedError> {
        self.run(draft, false).await
    }

    /// Starts a new history (a new epoch, `seq` from 1) for the event's match with this event:
    /// for a replay that starts a match again, or a feed that lost its own count.
    pub async fn publish_new_history(
        &mut self,
        draft: &EventDraft,
    ) -> Result<ScoreEvent, FeedError> {
        self.run(draft, true).await
    }

    /// The times this publisher (or one sharing its ledgers) found a match forgotten by Redis
    /// and put it back, oldest first (the last 1,000).
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.ledgers.recoveries()
    }

    async fn run(
        &mut self,
        draft: &EventDraft,
        new_history: bool,
    ) -> Result<ScoreEvent, FeedError> {
        let topic = &draft.match_topic;
        let expect = if new_history {
            None
        } else {
            self.ledgers.expectation(topic)
        };
        // Twice at most: once as usual, once more after putting a forgotten match back.
        for _ in 0..2 {
            match number(
                &mut self.connection,
                &self.layout,
                draft,
                new_history,
                expect,
            )
            .await?
            {
                Numbered::Published(event) => {
                    self.ledgers.record(&event, self.layout.history_len);
                    return Ok(event);
                }
                Numbered::Forgotten { redis } => {
                    if let Some(event) = self.recover(topic, redis, draft).await? {
                        return Ok(event);
                    }
                }
            }
        }
        Err(FeedError::KeepsForgetting(topic.clone()))
    }

    /// Puts a forgotten match back. Returns the draft's event when putting back meant publishing
    /// it too (a new history); `None` when the draft is still to be numbered.
    async fn recover(
        &mut self,
        topic: &MatchTopic,
        redis_had: Option<Position>,
        draft: &EventDraft,
    ) -> Result<Option<ScoreEvent>, FeedError> {
        let ledger = self.ledgers.get(topic);
        let Some(position) = ledger.confirmed else {
            return Ok(None);
        };
        let events: Vec<ScoreEvent> = ledger.events.iter().cloned().collect();
        let how =
            match restore(&mut self.connection, &self.layout, topic, position, &events).await? {
                Restored::Restored { entries } => RecoveryKind::Restored { entries },
                Restored::Intact => return Ok(None),
                Restored::Newer { .. } => {
                    // Someone started the match again meanwhile: continuing our history is no longer
                    // possible, so publish it whole as the newest history, then the draft.
                    let mut republished = 0;
                    for (index, event) in events.iter().enumerate() {
                        let event = self.publish_fresh(&event.draft(), index == 0).await?;
                        self.ledgers.record(&event, self.layout.history_len);
                        republished += 1;
                    }
                    let event = self.publish_fresh(draft, republished == 0).await?;
                    self.ledgers.record(&event, self.layout.history_len);
                    self.remember(Recovery {
                        topic: topic.clone(),
                        position,
                        redis_had,
                        how: RecoveryKind::Republished {
                            events: republished,
                        },
                    });
                    return Ok(Some(event));
                }
            };
        self.remember(Recovery {
            topic: topic.clone(),
            position,
            redis_had,
            how,
        });
        Ok(None)
    }

    /// Publishes without an expectation (the start of a history, or its continuation right after
    /// it); a `Forgotten` answer cannot come back without one.
    async fn publish_fresh(
        &mut self,
        draft: &EventDraft,
        new_history: bool,
    ) -> Result<ScoreEvent, FeedError> {
        match number(&mut self.connection, &self.layout, draft, new_history, None).await? {
            Numbered::Published(event) => Ok(event),
            Numbered::Forgotten { .. } => {
                Err(FeedError::KeepsForgetting(draft.match_topic.clone()))
            }
        }
    }

    fn remember(&self, recovery: Recovery) {
        self.ledgers.remember(recovery);
    }
}
