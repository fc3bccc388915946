//! Fans with a spoiler delay: the hub's side of [`crate::delay`].
//!
//! Every match has a [`DelayLine`] of what live fans were sent, stamped with when it happened.
//! Delayed fans are grouped by their delay; each group has its own subscription index and a
//! moment up to which it has been sent everything (`released_ms`, that is now minus its delay).
//! At every housekeeping tick a group moves that moment on and sends its fans, per match, the
//! items stamped in between, through the same shared frames live fans got. A fan joining a group
//! gets each match as it stood at the group's moment, so the next items follow it exactly.
//!
//! Why groups by delay: a tick costs, per group, a look at the matches with items in its last
//! quarter second ([`Activity`]) plus the sends that are due, whatever the number of fans or of
//! quiet matches; the number of groups is bounded by the distinct delays in use (at most
//! `--max-delay-secs`).
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

use super::recovery::last_of_run;
use super::resume::Resume;
use super::{BACKFILL_PATIENCE, Hub, event_frame, reason_label};
use crate::delay::{Activity, Change, DelayLine, Item};
use crate::mailbox::{Outbound, Pushed};
use crate::routing::{ConnId, Routes};
use crate::telemetry;

/// The spoiler-delay state the hub keeps.
#[derive(Debug, Default)]
pub(super) struct Delayed {
    /// Every match's recent changes (only while `--max-delay-secs` is above 0).
    lines: HashMap<MatchTopic, DelayLine>,
    /// Which lines have items when, so a tick visits only the lines with something due.
    activity: Activity,
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
        let line = self.delayed.lines.entry(topic.clone()).or_insert_with(|| {
            DelayLine::new(before.unwrap_or_else(|| MatchSnapshot::new(topic.clone())))
        });
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
        if let Some(at_ms) = line.last_ms() {
            self.delayed.activity.note(at_ms, topic);
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
            let (epoch, seq) = (line.base().epoch, line.base().seq);
            let history: Vec<&ScoreEvent> = events
                .iter()
                .filter(|event| event.epoch == epoch && event.seq <= seq)
                .collect();
            let whole = last_of_run(history.iter().map(|event| event.seq), 1) == Some(seq);
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
                for at_ms in line.times() {
                    self.delayed.activity.note(at_ms, topic);
                }
            } else {
                tracing::info!(%topic, "the history read back does not reach the restored state; delayed fans get the match as restored");
            }
        }
        self.run_deferred(false);
    }

    /// A restored match's history will not be read back for its line (it was rebuilt from a
    /// newer history instead): delayed subscribes stop waiting for it.
    pub(super) fn not_rewound(&mut self, topic: &MatchTopic) {
        if self.delayed.rewinding.remove(topic).is_some() {
            self.run_deferred(false);
        }
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
        let seqs = held.iter().map(|recorded| recorded.seq);
        let whole = last_of_run(seqs, point.seq + 1) == Some(state.seq);
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
        self.delayed
            .deferred
            .retain(|deferred| deferred.conn != conn);
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
        let overdue = self.delayed.deferred.iter().any(|deferred| {
            self.now.saturating_duration_since(deferred.since) >= BACKFILL_PATIENCE
        });
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
            for topic in self.delayed.activity.between(group.released_ms, until_ms) {
                let Some(line) = self.delayed.lines.get(topic) else {
                    continue;
                };
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
        self.delayed.activity.forget_until(cutoff);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use scoreline_feed::Position;
    use scoreline_protocol::test_support::{arsenal_chelsea, goal};
    use scoreline_protocol::{EventKind, Side};
    use tokio::sync::mpsc;

    use super::*;
    use crate::hub::{Command, Head, HubLimits, InboundEvent, Purpose};
    use crate::mailbox::{Mailbox, MailboxLimits};
    use crate::matches::StoreLimits;

    const LIMITS: HubLimits = HubLimits {
        max_topics: 4,
        max_snapshots: 10,
        store: StoreLimits {
            max_matches: 100,
            finished_retention_ms: 60_000,
            recent_events: 16,
        },
        max_delay_secs: 120,
    };
    const MATCH: &str = "football/pl/ars-che";
    /// The wall clock at the start of every test: kick-off is at `T`.
    const T: u64 = 1_800_000_000_000;
    const SEC: u64 = 1_000;

    struct Fixture {
        hub: Hub,
        mailboxes: HashMap<u64, Arc<Mailbox>>,
    }

    impl Fixture {
        fn new(backfill: Option<mpsc::Sender<crate::hub::BackfillRequest>>) -> Fixture {
            let mut hub = Hub::new(LIMITS, backfill);
            hub.set_now_ms(T);
            Fixture {
                hub,
                mailboxes: HashMap::new(),
            }
        }

        fn at(&mut self, ms: u64) {
            self.hub.set_now_ms(ms);
        }

        /// Lets the housekeeping tick run at `ms`.
        fn tick(&mut self, ms: u64) {
            self.hub.housekeeping(ms);
        }

        fn connect(&mut self, id: u64) {
            self.connect_with_room(id, 64);
        }

        fn connect_with_room(&mut self, id: u64, max_critical: usize) {
            let mailbox = Arc::new(Mailbox::new(MailboxLimits {
                max_critical,
                max_frames: max_critical * 2,
            }));
            self.hub.handle(Command::Connect {
                conn: ConnId(id),
                mailbox: Arc::clone(&mailbox),
            });
            self.mailboxes.insert(id, mailbox);
        }

        fn subscribe(&mut self, id: u64, topics: &[&str], delay_secs: Option<u32>) {
            self.resume(id, topics, BTreeMap::new(), delay_secs);
        }

        fn resume(
            &mut self,
            id: u64,
            topics: &[&str],
            resume: BTreeMap<MatchTopic, ResumePoint>,
            delay_secs: Option<u32>,
        ) {
            let topics = topics.iter().map(|t| Topic::parse(t).unwrap()).collect();
            self.hub.handle(Command::Subscribe {
                conn: ConnId(id),
                topics,
                resume,
                delay_secs,
            });
        }

        /// Publishes event `seq`, which happened at `ts_ms` and reaches the service then.
        fn happens(&mut self, seq: u64, ts_ms: u64, kind: EventKind) {
            self.at(ts_ms);
            self.hub
                .publish(InboundEvent {
                    event: event(seq, ts_ms, kind),
                    received_at: Instant::now(),
                })
                .unwrap();
        }

        /// What a connection was sent since last asked, each message in short.
        fn got(&self, id: u64) -> Vec<String> {
            let mut frames = Vec::new();
            self.mailboxes[&id].drain_into(&mut frames);
            frames
                .iter()
                .map(|frame| short(&ServerMessage::from_json(&frame.text).unwrap()))
                .collect()
        }
    }

    fn event(seq: u64, ts_ms: u64, kind: EventKind) -> ScoreEvent {
        ScoreEvent {
            ts_ms,
            ..scoreline_protocol::test_support::event(MATCH, seq, kind)
        }
    }

    fn short(message: &ServerMessage) -> String {
        let state =
            |s: &MatchSnapshot| format!("{}@{} {}-{}", s.epoch, s.seq, s.score.home, s.score.away);
        match message {
            ServerMessage::Subscribed {
                snapshots,
                resumed,
                delay_secs,
                ..
            } => {
                let states: Vec<String> = snapshots.iter().map(state).collect();
                format!(
                    "subscribed +{delay_secs}s {states:?} resumed {}",
                    resumed.len()
                )
            }
            ServerMessage::Event(event) => format!("event {}", event.seq),
            ServerMessage::Resync { snapshot, .. } => format!("resync {}", state(snapshot)),
            ServerMessage::Error { message, .. } => format!("error {message}"),
            ServerMessage::Catalogue { matches, .. } => {
                let scores: Vec<String> = matches
                    .iter()
                    .map(|m| format!("{}-{}", m.score.home, m.score.away))
                    .collect();
                format!("catalogue {scores:?}")
            }
            other => format!("{other:?}"),
        }
    }

    /// A match announced 100 s before kick-off at `T`, a home goal at T+30 s.
    fn played(fixture: &mut Fixture) {
        fixture.happens(1, T - 100 * SEC, arsenal_chelsea());
        fixture.happens(2, T, EventKind::MatchStarted);
        fixture.happens(3, T + 30 * SEC, goal(Side::Home));
    }

    #[test]
    fn a_delayed_fan_gets_the_match_as_it_stood_and_each_event_the_delay_after_it_happened() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.connect(2);
        fixture.at(T + 40 * SEC);
        fixture.subscribe(1, &["football"], None);
        fixture.subscribe(2, &["football"], Some(20));
        assert_eq!(fixture.got(1), ["subscribed +0s [\"0@3 1-0\"] resumed 0"]);
        assert_eq!(
            fixture.got(2),
            ["subscribed +20s [\"0@2 0-0\"] resumed 0"],
            "20 s ago the goal had not been scored"
        );
        fixture.happens(4, T + 45 * SEC, goal(Side::Away));
        assert_eq!(fixture.got(1), ["event 4"], "live at once");
        fixture.tick(T + 49 * SEC);
        assert!(
            fixture.got(2).is_empty(),
            "the goal at T+30 s is due at T+50 s"
        );
        fixture.tick(T + 50 * SEC);
        assert_eq!(fixture.got(2), ["event 3"]);
        fixture.tick(T + 64 * SEC);
        assert!(fixture.got(2).is_empty());
        fixture.tick(T + 65 * SEC);
        assert_eq!(fixture.got(2), ["event 4"], "each event once, in order");
        fixture.tick(T + 100 * SEC);
        assert!(fixture.got(2).is_empty());
        assert!(fixture.got(1).is_empty(), "live fans get nothing twice");
    }

    #[test]
    fn a_fan_joining_a_delay_others_have_follows_on_from_its_snapshot_exactly() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.connect(2);
        fixture.at(T + 10 * SEC);
        fixture.subscribe(1, &[MATCH], Some(5));
        fixture.tick(T + 20 * SEC);
        // Between two ticks: the group has been sent everything up to T+15 s.
        fixture.at(T + 34 * SEC);
        fixture.subscribe(2, &[MATCH], Some(5));
        assert_eq!(fixture.got(2), ["subscribed +5s [\"0@2 0-0\"] resumed 0"]);
        fixture.tick(T + 35 * SEC);
        assert_eq!(fixture.got(2), ["event 3"]);
        assert_eq!(
            fixture.got(1),
            ["subscribed +5s [\"0@2 0-0\"] resumed 0", "event 3"]
        );
    }

    #[test]
    fn naming_another_delay_moves_every_topic_and_sends_every_match_as_of_it() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.at(T + 40 * SEC);
        fixture.subscribe(1, &["football"], None);
        fixture.got(1);
        fixture.subscribe(1, &["tennis"], Some(30));
        assert_eq!(fixture.got(1), ["subscribed +30s [\"0@2 0-0\"] resumed 0"]);
        fixture.happens(4, T + 41 * SEC, goal(Side::Away));
        assert!(fixture.got(1).is_empty(), "no longer live");
        fixture.tick(T + 60 * SEC);
        assert_eq!(fixture.got(1), ["event 3"]);
        // A subscribe that names no delay keeps the connection's.
        fixture.subscribe(1, &["basketball"], None);
        assert_eq!(
            fixture.got(1),
            ["subscribed +30s [] resumed 0"],
            "only the new topic's matches, as for live fans"
        );
        fixture.subscribe(1, &["football"], Some(0));
        assert_eq!(fixture.got(1), ["subscribed +0s [\"0@4 1-1\"] resumed 0"]);
        fixture.tick(T + 100 * SEC);
        assert!(
            fixture.got(1).is_empty(),
            "no delayed event after going live"
        );
        fixture.happens(5, T + 101 * SEC, goal(Side::Away));
        assert_eq!(fixture.got(1), ["event 5"]);
        let routes = fixture.hub.routes();
        let topics: Vec<String> = routes.topics_of(ConnId(1)).map(|t| t.to_string()).collect();
        assert_eq!(topics, ["basketball", "football", "tennis"]);
    }

    #[test]
    fn a_delay_beyond_the_limit_is_refused_and_changes_nothing() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.subscribe(1, &["football"], Some(121));
        assert_eq!(
            fixture.got(1),
            ["error delay_secs 121 is longer than this server keeps: at most 120"]
        );
        fixture.happens(4, T + 41 * SEC, goal(Side::Away));
        assert!(fixture.got(1).is_empty(), "not subscribed");
    }

    #[test]
    fn resyncs_reach_delayed_fans_late_with_the_state_they_carried() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.at(T + 40 * SEC);
        fixture.subscribe(1, &[MATCH], Some(60));
        fixture.got(1);
        // A new history of the match begins: live fans get a resync at once.
        let mut restart = event(1, T + 50 * SEC, arsenal_chelsea());
        restart.epoch = 1;
        fixture.at(T + 50 * SEC);
        fixture
            .hub
            .publish(InboundEvent {
                event: restart,
                received_at: Instant::now(),
            })
            .unwrap();
        fixture.tick(T + 100 * SEC);
        assert_eq!(
            fixture.got(1),
            ["event 2", "event 3"],
            "kick-off and goal, in their time"
        );
        fixture.tick(T + 109 * SEC);
        assert!(fixture.got(1).is_empty());
        fixture.tick(T + 110 * SEC);
        assert_eq!(fixture.got(1), ["resync 1@1 0-0"]);
    }

    #[test]
    fn a_delayed_fan_resumes_from_memory_up_to_where_its_delay_stands() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.happens(4, T + 45 * SEC, goal(Side::Away));
        fixture.connect(1);
        fixture.at(T + 50 * SEC);
        let point = |seq| {
            BTreeMap::from([(
                MatchTopic::parse(MATCH).unwrap(),
                ResumePoint { epoch: 0, seq },
            )])
        };
        // 10 s behind, the fan is owed event 3 (T+30 s) but not yet 4 (T+45 s).
        fixture.resume(1, &["football"], point(1), Some(10));
        assert_eq!(
            fixture.got(1),
            ["subscribed +10s [] resumed 1", "event 2", "event 3"]
        );
        fixture.connect(2);
        fixture.resume(2, &["football"], point(4), Some(10));
        assert_eq!(
            fixture.got(2),
            ["subscribed +10s [] resumed 0", "resync 0@3 1-0"],
            "ahead of what the delay allows: it gets the state as of the delay"
        );
        fixture.tick(T + 55 * SEC);
        assert_eq!(fixture.got(1), ["event 4"]);
        assert_eq!(fixture.got(2), ["event 4"]);
    }

    #[test]
    fn a_delayed_fan_lists_the_matches_as_they_stood() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.at(T + 40 * SEC);
        fixture.subscribe(1, &["tennis"], Some(20));
        fixture.got(1);
        fixture.hub.handle(Command::List {
            conn: ConnId(1),
            prefix: None,
            status: None,
        });
        assert_eq!(fixture.got(1), ["catalogue [\"0-0\"]"]);
    }

    #[test]
    fn after_a_restart_delayed_fans_wait_for_the_history_and_get_the_match_as_it_stood() {
        let (backfill, mut requests) = mpsc::channel(8);
        let mut fixture = Fixture::new(Some(backfill));
        // Restarted at T+40 s with the stored snapshot after the goal at T+30 s.
        let mut before = Fixture::new(None);
        played(&mut before);
        let stored = before.hub.matches().get(MATCH).unwrap().clone();
        fixture.at(T + 40 * SEC);
        fixture.hub.handle(Command::Restore(vec![stored]));
        fixture.connect(1);
        fixture.subscribe(1, &["football"], Some(20));
        assert!(fixture.got(1).is_empty(), "waits for the history");
        fixture.hub.handle(Command::Resubscribed {
            heads: Some(vec![Head {
                topic: MatchTopic::parse(MATCH).unwrap(),
                position: Position { epoch: 0, seq: 3 },
            }]),
        });
        let request = requests.try_recv().unwrap();
        assert_eq!(
            (request.after_seq, request.purpose),
            (0, Purpose::Gap),
            "the whole history"
        );
        let history = vec![
            event(1, T - 100 * SEC, arsenal_chelsea()),
            event(2, T, EventKind::MatchStarted),
            event(3, T + 30 * SEC, goal(Side::Home)),
        ];
        fixture.hub.handle(Command::Backfill {
            request,
            events: Ok(history),
        });
        assert_eq!(fixture.got(1), ["subscribed +20s [\"0@2 0-0\"] resumed 0"]);
        fixture.tick(T + 50 * SEC);
        assert_eq!(fixture.got(1), ["event 3"]);
    }

    #[test]
    fn without_the_history_a_delayed_fan_stops_waiting_and_gets_the_match_as_restored() {
        let (backfill, _requests) = mpsc::channel(8);
        let mut fixture = Fixture::new(Some(backfill));
        let mut before = Fixture::new(None);
        played(&mut before);
        let stored = before.hub.matches().get(MATCH).unwrap().clone();
        let start = Instant::now();
        fixture.hub.set_now(start);
        fixture.at(T + 40 * SEC);
        fixture.hub.handle(Command::Restore(vec![stored]));
        fixture.connect(1);
        fixture.subscribe(1, &["football"], Some(20));
        fixture.hub.set_now(start + BACKFILL_PATIENCE);
        fixture.tick(T + 43 * SEC);
        assert_eq!(fixture.got(1), ["subscribed +20s [\"0@3 1-0\"] resumed 0"]);
    }

    #[test]
    fn delayed_fans_count_as_watchers_once_with_live_ones() {
        let mut fixture = Fixture::new(None);
        played(&mut fixture);
        fixture.connect(1);
        fixture.connect(2);
        fixture.subscribe(1, &[MATCH], None);
        fixture.subscribe(2, &[MATCH], Some(30));
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        fixture.hub.handle(Command::Watchers { reply });
        let watched = answer.try_recv().unwrap();
        assert_eq!(watched.len(), 1);
        assert_eq!(
            (watched[0].0.to_string(), watched[0].1.len()),
            (MATCH.to_owned(), 2)
        );
    }

    #[test]
    fn a_slow_delayed_fan_is_dropped_without_holding_the_others_back() {
        let mut fixture = Fixture::new(None);
        fixture.happens(1, T, arsenal_chelsea());
        fixture.happens(2, T, EventKind::MatchStarted);
        fixture.connect(1);
        fixture.connect_with_room(2, 128);
        fixture.subscribe(1, &[MATCH], Some(10));
        fixture.subscribe(2, &[MATCH], Some(10));
        fixture.got(2);
        for seq in 3..100 {
            fixture.happens(seq, T + seq * SEC / 10, goal(Side::Home));
        }
        fixture.tick(T + 30 * SEC);
        assert!(fixture.mailboxes[&1].overflowed());
        assert_eq!(fixture.got(2).len(), 99, "all 99 events, none before");
        assert!(!fixture.hub.is_delayed(ConnId(1)), "forgotten");
    }
}
