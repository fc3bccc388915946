//! Fans with a spoiler delay: the hub's side of [`crate::delay`].
//!
//! Every match has a [`DelayLine`] of what live fans were sent, stamped with when it happened.
//! Delayed fans are grouped by their delay; each group has its own subscription index and a
//! moment up to which it has been sent everything (`released_ms`, that is now minus its delay).
//! At every housekeeping tick a group moves that moment on and sends its fans, per match, the
//! items stamped in between, through the same shared frames live fans got. A fan joining a group
//! gets each match as it stood at the group's moment, so the next items follow it exactly.
//!
//! Why groups by delay: a tick costs, per group, one look at each match line (an O(1) rejection
//! for lines with nothing new) plus the sends that are due, whatever the number of fans; the
//! number of groups is bounded by the distinct delays in use (at most `--max-delay-secs` + 1).
//!
//! A live fan is in `Hub::routes` with its topics; a delayed fan stays there as a connection
//! (replies and `watching` counts reach it the same way) with its topics in its group's index
//! instead, so live fan-out never visits it.
//!
//! After a restart the service knows a match only as the store held it, which may be newer than
//! a delayed fan may see; its history is read back from the start (the catch-up read after
//! subscribing asks for it) to give the line its past, and delayed subscribes wait for those
//! reads, at most [`BACKFILL_PATIENCE`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use scoreline_protocol::{
    ErrorCode, MatchSnapshot, MatchStatus, MatchSummary, MatchTopic, ResumePoint, ResyncReason,
    ScoreEvent, ServerMessage, Topic, wire::listing_order,
};

use super::resume::Resume;
use super::{BACKFILL_PATIENCE, Hub, event_frame, reason_label};
use crate::delay::{Change, DelayLine, Item};
use crate::mailbox::{Outbound, Pushed};
use crate::routing::{ConnId, Routes};
use crate::telemetry;

/// The spoiler-delay state the hub keeps.
#[derive(Debug, Default)]
pub(super) struct Delayed {
    /// Every match's recent changes (only while `--max-delay-secs` is above 0).
    lines: HashMap<MatchTopic, DelayLine>,
    /// Delayed fans, by their delay in seconds.
    groups: BTreeMap<u32, Group>,
    /// The delay of every delayed connection.
    delay_of: HashMap<ConnId, u32>,
    /// Matches restored from the store whose history is being read back, since when.
    rewinding: HashMap<MatchTopic, Instant>,
    /// Delayed subscribes waiting for those reads.
    deferred: Vec<Deferred>,
}

/// The fans of one delay.
#[derive(Debug)]
struct Group {
    routes: Routes,
    /// Every item that happened at or before this moment has been sent to the group's fans.
    released_ms: u64,
}

/// A delayed subscribe that waits for histories being read back.
#[derive(Debug)]
struct Deferred {
    conn: ConnId,
    topics: Vec<Topic>,
    resume: BTreeMap<MatchTopic, ResumePoint>,
    delay_secs: u32,
    since: Instant,
}

impl Delayed {
    /// The delay of a connection (0: live).
    fn delay(&self, conn: ConnId) -> u32 {
        self.delay_of.get(&conn).copied().unwrap_or(0)
    }

    /// The subscription indexes of delayed fans, for the audience count.
    pub(super) fn routes(&self) -> impl Iterator<Item = &Routes> {
        self.groups.values().map(|group| &group.routes)
    }

    /// How many topics delayed fans subscribe to, over all of them.
    pub(super) fn subscription_count(&self) -> usize {
        self.groups
            .values()
            .map(|group| group.routes.subscription_count())
            .sum()
    }

    /// Removes a connection from its group, returning the topics it had there.
    fn leave(&mut self, conn: ConnId) -> Vec<Topic> {
        let Some(delay) = self.delay_of.remove(&conn) else {
            return Vec::new();
        };
        let Some(group) = self.groups.get_mut(&delay) else {
            return Vec::new();
        };
        let topics = group.routes.topics_of(conn).cloned().collect();
        group.routes.disconnect(conn);
        if group.routes.connection_count() == 0 {
            self.groups.remove(&delay);
        }
        topics
    }
}

impl Hub {
    fn window_ms(&self) -> u64 {
        u64::from(self.limits.max_delay_secs) * 1000
    }

    /// Records what live fans of a match were just sent, for delayed fans. `before` is the state
    /// before it, needed only when the match has no line yet.
    pub(super) fn record_delayed(
        &mut self,
        topic: &MatchTopic,
        before: Option<MatchSnapshot>,
        frame: &Outbound,
        change: Change,
    ) {
        if self.limits.max_delay_secs == 0 {
            return;
        }
        let now_ms = self.now_ms;
        let line = self
            .delayed
            .lines
            .entry(topic.clone())
            .or_insert_with(|| DelayLine::new(before.unwrap_or_else(|| MatchSnapshot::new(topic.clone()))));
        // Delayed fans are not measured by the live latency histograms.
        let frame = Outbound {
            received_at: None,
            source_ms: None,
            ..frame.clone()
        };
        match change {
            Change::Event(event) => line.push_event(event, frame, now_ms),
            Change::Reset(snapshot) => line.push_reset(*snapshot, frame, now_ms),
        }
    }

    /// Whether a match needs no line kept before its next change (no delay, or it has one).
    pub(super) fn has_line(&self, topic: &MatchTopic) -> bool {
        self.limits.max_delay_secs == 0 || self.delayed.lines.contains_key(topic)
    }

    /// A match was restored from the store: its line starts from that state, and when delayed
    /// fans may need it as it stood earlier, its history is read back (by the catch-up read).
    pub(super) fn restored_line(&mut self, snapshot: &MatchSnapshot) {
        if self.limits.max_delay_secs == 0 {
            return;
        }
        let topic = snapshot.match_topic.clone();
        self.delayed
            .lines
            .insert(topic.clone(), DelayLine::new(snapshot.clone()));
        let recent = snapshot.updated_ms.saturating_add(self.window_ms()) > self.now_ms;
        if self.backfill.is_some() && recent && snapshot.seq > 0 && !snapshot.status.is_over() {
            self.delayed.rewinding.insert(topic, self.now);
        }
    }

    /// Whether the catch-up read of a match must start at its first event, to give its line its
    /// past.
    pub(super) fn wants_whole_history(&self, topic: &MatchTopic) -> bool {
        self.delayed.rewinding.contains_key(topic)
    }

    /// The history of a restored match, read back: rebuilds its line from it, when it runs
    /// without a hole from the first event to the restored state. `events` are those at or
    /// before the match's current seq.
    pub(super) fn rewound(&mut self, topic: &MatchTopic, events: &[ScoreEvent]) {
        if self.delayed.rewinding.remove(topic).is_none() {
            return;
        }
        let cutoff = self.now_ms.saturating_sub(self.window_ms());
        if let Some(line) = self.delayed.lines.get_mut(topic) {
            let known = line.base().clone();
            let history: Vec<&ScoreEvent> = events
                .iter()
                .filter(|event| event.epoch == known.epoch && event.seq <= known.seq)
                .collect();
            let whole = history.len() as u64 == known.seq
                && history
                    .iter()
                    .enumerate()
                    .all(|(index, event)| event.seq == index as u64 + 1);
            if whole {
                let mut base = MatchSnapshot::new(topic.clone());
                let mut later = Vec::new();
                for event in history {
                    let mut event = event.clone();
                    event.prev_critical_seq = Some(base.critical_seq);
                    if event.ts_ms <= cutoff && later.is_empty() {
                        let _ = scoreline_protocol::apply(&mut base, &event);
                    } else {
                        let frame = Outbound::critical(event_frame(&event));
                        later.push((event, frame));
                    }
                }
                line.rewind(base, later);
            } else {
                tracing::info!(%topic, "the history read back does not reach the restored state; delayed fans get the match as restored");
            }
        }
        self.run_deferred(false);
    }

    /// Sends the delayed subscribes that waited, once no history is being read back, or all of
    /// them when `force`.
    fn run_deferred(&mut self, force: bool) {
        if !force && !self.delayed.rewinding.is_empty() {
            return;
        }
        for deferred in std::mem::take(&mut self.delayed.deferred) {
            self.subscribe_at(
                deferred.conn,
                deferred.topics,
                &deferred.resume,
                deferred.delay_secs,
            );
        }
    }

    /// Subscribes a connection at its delay: `delay_secs` when named (moving all its topics when
    /// it differs from the connection's), else the one it has.
    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        topics: Vec<Topic>,
        resume: &BTreeMap<MatchTopic, ResumePoint>,
        delay_secs: Option<u32>,
    ) {
        let delay = delay_secs.unwrap_or_else(|| self.delayed.delay(conn));
        if delay > self.limits.max_delay_secs {
            telemetry::bad_input("delay_too_long");
            let message = ServerMessage::Error {
                code: ErrorCode::BadRequest,
                message: format!(
                    "delay_secs {delay} is longer than this server keeps: at most {}",
                    self.limits.max_delay_secs
                ),
                request: None,
            };
            self.reply(conn, &message);
            return;
        }
        if delay > 0 && !self.delayed.rewinding.is_empty() {
            self.delayed.deferred.push(Deferred {
                conn,
                topics,
                resume: resume.clone(),
                delay_secs: delay,
                since: self.now,
            });
            return;
        }
        self.subscribe_at(conn, topics, resume, delay);
    }

    fn subscribe_at(
        &mut self,
        conn: ConnId,
        topics: Vec<Topic>,
        resume: &BTreeMap<MatchTopic, ResumePoint>,
        delay: u32,
    ) {
        let current = self.delayed.delay(conn);
        let topics = if delay == current {
            topics
        } else {
            match self.move_to(conn, current, delay, topics) {
                Some(topics) => topics,
                None => return,
            }
        };
        if delay == 0 {
            self.subscribe_live(conn, topics, resume);
        } else {
            self.subscribe_delayed(conn, delay, topics, resume);
        }
    }

    /// Moves a connection's topics from one delay to another; returns them all, with the new
    /// ones, or `None` (after telling the client) when they would be too many.
    fn move_to(
        &mut self,
        conn: ConnId,
        from: u32,
        to: u32,
        requested: Vec<Topic>,
    ) -> Option<Vec<Topic>> {
        let mailbox = Arc::clone(self.routes.mailbox(conn)?);
        let mut topics: Vec<Topic> = if from == 0 {
            self.routes.topics_of(conn).cloned().collect()
        } else {
            self.delayed
                .groups
                .get(&from)
                .map(|group| group.routes.topics_of(conn).cloned().collect())
                .unwrap_or_default()
        };
        for topic in requested {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        if topics.len() > self.limits.max_topics {
            self.too_many_topics(conn, topics.len());
            return None;
        }
        if from == 0 {
            self.routes.unsubscribe(conn, &topics);
        } else {
            self.delayed.leave(conn);
        }
        // Catching up on the live stream from the history no longer applies.
        self.resuming.remove(&conn);
        if to > 0 {
            let released_ms = self.now_ms.saturating_sub(u64::from(to) * 1000);
            let group = self.delayed.groups.entry(to).or_insert_with(|| Group {
                routes: Routes::default(),
                released_ms,
            });
            group.routes.connect(conn, mailbox);
            self.delayed.delay_of.insert(conn, to);
        }
        Some(topics)
    }

    fn subscribe_delayed(
        &mut self,
        conn: ConnId,
        delay: u32,
        topics: Vec<Topic>,
        resume: &BTreeMap<MatchTopic, ResumePoint>,
    ) {
        let Some(group) = self.delayed.groups.get_mut(&delay) else {
            return;
        };
        if let Err(error) = group
            .routes
            .subscribe(conn, &topics, self.limits.max_topics)
        {
            self.too_many_topics(conn, error.would_have);
            return;
        }
        let at_ms = group.released_ms;
        let limit = self.limits.max_snapshots + resume.len();
        let (covered, mut omitted) = self.matches.select(&topics, None, limit);
        let covered: Vec<MatchTopic> = covered
            .into_iter()
            .map(|snapshot| snapshot.match_topic.clone())
            .collect();
        let mut snapshots = Vec::new();
        let mut resumed = Vec::new();
        let mut replay = Vec::new();
        let mut resyncs = Vec::new();
        for topic in covered {
            let Some(state) = self.state_at(&topic, at_ms) else {
                continue;
            };
            let Some(point) = resume.get(&topic) else {
                snapshots.push(state);
                continue;
            };
            match self.delayed_resume(*point, &state) {
                Resume::UpToDate => resumed.push(topic),
                Resume::Replay(frames) => {
                    resumed.push(topic);
                    replay.extend(frames);
                }
                Resume::Resync(reason) => resyncs.push((reason, state)),
            }
        }
        snapshots.sort_by(listing_order);
        omitted += snapshots.len().saturating_sub(self.limits.max_snapshots);
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
                delay_secs: delay,
            },
        );
        for frame in replay {
            self.push_to(conn, Outbound::critical(frame));
        }
        for (reason, snapshot) in resyncs {
            metrics::counter!(telemetry::RESYNCS, "reason" => reason_label(reason)).increment(1);
            self.reply(conn, &ServerMessage::Resync { reason, snapshot });
        }
    }

    /// A match as it stood at `at_ms`; `None` when nothing was known of it by then.
    fn state_at(&mut self, topic: &MatchTopic, at_ms: u64) -> Option<MatchSnapshot> {
        let state = match self.delayed.lines.get_mut(topic) {
            Some(line) => line.state_at(at_ms),
            // Unchanged since it was restored or created without a line: as it is.
            None => self.matches.get(topic.as_str())?.clone(),
        };
        (state.seq > 0).then_some(state)
    }

    /// What a delayed fan resuming a match from `point` gets, the match standing at `state` for
    /// it: the events in between from memory, when held, else a resync with `state`.
    fn delayed_resume(&self, point: ResumePoint, state: &MatchSnapshot) -> Resume {
        if point.epoch != state.epoch {
            return Resume::Resync(ResyncReason::EpochChanged);
        }
        if point.seq == state.seq {
            return Resume::UpToDate;
        }
        if point.seq > state.seq {
            return Resume::Resync(ResyncReason::UnknownPosition);
        }
        let Some(entry) = self.matches.entry(state.match_topic.as_str()) else {
            return Resume::Resync(ResyncReason::HistoryTrimmed);
        };
        if entry.snapshot.epoch != state.epoch {
            return Resume::Resync(ResyncReason::HistoryTrimmed);
        }
        let wanted = point.seq + 1..=state.seq;
        let held: Vec<_> = entry
            .recent
            .iter()
            .filter(|recorded| wanted.contains(&recorded.seq))
            .collect();
        let whole = held.len() as u64 == state.seq - point.seq
            && held.first().is_some_and(|first| first.seq == point.seq + 1);
        if !whole {
            return Resume::Resync(ResyncReason::HistoryTrimmed);
        }
        Resume::Replay(
            held.into_iter()
                .filter_map(|recorded| recorded.frame.clone())
                .collect(),
        )
    }

    /// The matches a delayed fan asks to list, as they stood for it.
    pub(super) fn delayed_catalogue(
        &mut self,
        conn: ConnId,
        prefix: Option<Topic>,
        status: Option<MatchStatus>,
    ) -> Option<(Vec<MatchSummary>, usize)> {
        let delay = self.delayed.delay(conn);
        let at_ms = self.delayed.groups.get(&delay)?.released_ms;
        let limit = self.limits.max_snapshots;
        let (covered, _) = self.select(prefix, None, usize::MAX);
        let covered: Vec<MatchTopic> = covered
            .into_iter()
            .map(|snapshot| snapshot.match_topic.clone())
            .collect();
        let mut states: Vec<MatchSnapshot> = covered
            .iter()
            .filter_map(|topic| self.state_at(topic, at_ms))
            .filter(|state| status.is_none_or(|status| state.status == status))
            .collect();
        states.sort_by(listing_order);
        let omitted = states.len().saturating_sub(limit);
        states.truncate(limit);
        Some((states.iter().map(MatchSummary::from).collect(), omitted))
    }

    /// Unsubscribes a delayed fan; `None` when the connection is live.
    pub(super) fn unsubscribe_delayed(
        &mut self,
        conn: ConnId,
        topics: &[Topic],
    ) -> Option<Vec<Topic>> {
        let delay = *self.delayed.delay_of.get(&conn)?;
        let group = self.delayed.groups.get_mut(&delay)?;
        Some(group.routes.unsubscribe(conn, topics))
    }

    /// Forgets a delayed fan (it left, or was too slow).
    pub(super) fn forget_delayed(&mut self, conn: ConnId) {
        self.delayed.leave(conn);
        self.delayed.deferred.retain(|deferred| deferred.conn != conn);
    }

    /// Whether a connection is delayed.
    pub(super) fn is_delayed(&self, conn: ConnId) -> bool {
        self.delayed.delay_of.contains_key(&conn)
    }

    /// The housekeeping of delayed fans: sends each group what became due, folds what no delay
    /// can still need into the lines' bases, drops lines of matches gone, and stops waiting for
    /// histories that did not come.
    pub(super) fn release_delayed(&mut self) {
        let stale: Vec<MatchTopic> = self
            .delayed
            .rewinding
            .iter()
            .filter(|(_, since)| self.now.saturating_duration_since(**since) >= BACKFILL_PATIENCE)
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in &stale {
            tracing::info!(%topic, "the match history was not read back in time; delayed fans get the match as restored");
            self.delayed.rewinding.remove(topic);
        }
        let overdue = self
            .delayed
            .deferred
            .iter()
            .any(|deferred| self.now.saturating_duration_since(deferred.since) >= BACKFILL_PATIENCE);
        self.run_deferred(overdue);
        if self.limits.max_delay_secs == 0 {
            return;
        }
        let mut slow = Vec::new();
        for (delay, group) in &mut self.delayed.groups {
            let until_ms = self.now_ms.saturating_sub(u64::from(*delay) * 1000);
            if until_ms <= group.released_ms {
                continue;
            }
            for (topic, line) in &self.delayed.lines {
                if line.last_ms().is_none_or(|last| last <= group.released_ms) {
                    continue;
                }
                for item in line.between(group.released_ms, until_ms) {
                    send(&group.routes, topic, item, &mut slow);
                }
            }
            group.released_ms = until_ms;
        }
        let cutoff = self.now_ms.saturating_sub(self.window_ms());
        for (topic, line) in &mut self.delayed.lines {
            for item in line.fold(cutoff) {
                // Folded for room before its time: the fans not yet sent it get it now.
                for group in self.delayed.groups.values() {
                    if item.at_ms > group.released_ms {
                        send(&group.routes, topic, &item, &mut slow);
                    }
                }
            }
        }
        let matches = &self.matches;
        self.delayed
            .lines
            .retain(|topic, line| !line.is_empty() || matches.get(topic.as_str()).is_some());
        for conn in slow {
            self.drop_slow(conn);
        }
    }
}

/// Sends an item to a group's fans of its match.
fn send(routes: &Routes, topic: &MatchTopic, item: &Item, slow: &mut Vec<ConnId>) {
    for (conn, mailbox) in routes.recipients(topic.topic()) {
        if mailbox.push(item.frame.clone()) == Pushed::Overflowed {
            slow.push(conn);
        }
    }
}
