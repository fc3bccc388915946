//! Spoiler delay: each match as it stood a chosen number of seconds ago.
//!
//! A fan whose video stream runs 40 s behind the stadium subscribes with `delay_secs: 40` and must
//! see every goal 40 s after it happened, and on (re)subscribing the match as it stood 40 s ago,
//! not now. Per match the hub keeps a [`DelayLine`]: a *base* snapshot (the state before the
//! oldest item still held) and the items that changed it since, each stamped with when it
//! happened. The state at any moment the line covers is the base plus the items up to that
//! moment, and the frames a delayed fan is owed between two moments are the items stamped in
//! between: the very frames live fans got, shared, sent later.
//!
//! Why frames and not a second fan-out of events: a delayed fan must get exactly what a live fan
//! got (the same `seq`s, `prev_critical_seq`s and `resync`s), only later, so that everything a
//! client does to stay correct works unchanged. An item is either an event or a reset (a `resync`
//! live fans were sent: the history was rewritten, or events were lost); a reset carries the
//! state at the time it was sent, which a fan `d` seconds behind is due at that time plus `d`.
//!
//! Items older than the longest delay allowed are folded into the base as they age, so a line
//! holds at most that window of a match; a line that also reaches [`MAX_ITEMS`] folds its oldest
//! item early, and the hub first sends it to the delayed fans not yet given it (late fans then
//! see that one item sooner than they asked, and lose nothing).
//!
//! Plain data: time is passed in, as milliseconds since the Unix epoch.

use std::collections::{BTreeMap, HashSet, VecDeque};

use scoreline_protocol::{MatchSnapshot, MatchTopic, ScoreEvent, reducer};

use crate::mailbox::Outbound;

/// Most items one line holds, whatever the delay window: bounds a match that sends a burst.
pub const MAX_ITEMS: usize = 4096;

/// The width of one slot of [`Activity`], in milliseconds: the hub's tick.
pub const SLOT_MS: u64 = 250;

/// One change to a match, as live fans were sent it.
#[derive(Debug, Clone)]
pub struct Item {
    /// When it happened: the event's source time, never later than when the service got it.
    pub at_ms: u64,
    /// The frame live fans were sent (shared bytes).
    pub frame: Outbound,
    /// How it changes the state.
    pub change: Change,
}

/// How an item changes a match.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every item is an event; boxing it would cost an allocation per event, while \
              the rare reset is the small variant"
)]
pub enum Change {
    /// An event, applied by the reducer.
    Event(ScoreEvent),
    /// A `resync`: the match is replaced by this state.
    Reset(Box<MatchSnapshot>),
}

/// A match's recent changes, stamped with when they happened, on top of the state before them.
#[derive(Debug)]
pub struct DelayLine {
    base: MatchSnapshot,
    items: VecDeque<Item>,
    /// The state after the first `memo.0` items, kept because fans subscribing at one delay ask
    /// for the same moment over and over (a reconnect storm); computing it again each time would
    /// cost a pass over the window per fan and match.
    memo: Option<(usize, MatchSnapshot)>,
}

impl DelayLine {
    /// A line whose state before any item is `base` (a match just created, or restored from the
    /// store: then its state is known from `base.updated_ms` on, and before that only if the
    /// history is read back: [`DelayLine::rewind`]).
    pub fn new(base: MatchSnapshot) -> DelayLine {
        DelayLine {
            base,
            items: VecDeque::new(),
            memo: None,
        }
    }

    /// Adds an event live fans were just sent. `now_ms` caps its time: a feed whose clock runs
    /// ahead cannot hold an event back beyond the delay asked for. Times never go backwards in a
    /// line, so the order fans get items in is the order live fans got them.
    pub fn push_event(&mut self, event: ScoreEvent, frame: Outbound, now_ms: u64) {
        let at_ms = event.ts_ms.min(now_ms);
        self.push(at_ms, frame, Change::Event(event));
    }

    /// Adds a `resync` live fans were just sent: delayed fans get it, with the state it carries,
    /// when their delay has passed since now.
    pub fn push_reset(&mut self, snapshot: MatchSnapshot, frame: Outbound, now_ms: u64) {
        self.push(now_ms, frame, Change::Reset(Box::new(snapshot)));
    }

    fn push(&mut self, at_ms: u64, frame: Outbound, change: Change) {
        let at_ms = at_ms.max(self.last_ms().unwrap_or(0));
        self.items.push_back(Item {
            at_ms,
            frame,
            change,
        });
    }

    /// The state before the oldest item held.
    pub fn base(&self) -> &MatchSnapshot {
        &self.base
    }

    /// When the newest item happened.
    pub fn last_ms(&self) -> Option<u64> {
        self.items.back().map(|item| item.at_ms)
    }

    /// The items that happened after `after_ms` and at or before `until_ms`, oldest first.
    pub fn between(&self, after_ms: u64, until_ms: u64) -> impl Iterator<Item = &Item> {
        let start = self.items.partition_point(|item| item.at_ms <= after_ms);
        let end = self.items.partition_point(|item| item.at_ms <= until_ms);
        self.items.range(start..end.max(start))
    }

    /// The match as it stood at `at_ms`: the base and every item up to then.
    pub fn state_at(&mut self, at_ms: u64) -> MatchSnapshot {
        let upto = self.items.partition_point(|item| item.at_ms <= at_ms);
        let (from, mut state) = match self.memo.take() {
            Some((done, state)) if done == upto => {
                self.memo = Some((done, state.clone()));
                return state;
            }
            Some((done, state)) if done < upto => (done, state),
            _ => (0, self.base.clone()),
        };
        for item in self.items.range(from..upto) {
            apply(&mut state, &item.change);
        }
        self.memo = Some((upto, state.clone()));
        state
    }

    /// The current state (every item applied): what live fans hold.
    pub fn latest(&mut self) -> MatchSnapshot {
        self.state_at(u64::MAX)
    }

    /// Folds the items that happened at or before `until_ms` into the base, and then the oldest
    /// ones beyond [`MAX_ITEMS`]. Returns the folded items, for the hub to send to delayed fans
    /// that were not yet due them (only ever the ones folded for room).
    pub fn fold(&mut self, until_ms: u64) -> Vec<Item> {
        let aged = self.items.partition_point(|item| item.at_ms <= until_ms);
        let early = self
            .items
            .len()
            .saturating_sub(aged)
            .saturating_sub(MAX_ITEMS);
        for _ in 0..aged {
            if let Some(item) = self.items.pop_front() {
                apply(&mut self.base, &item.change);
            }
        }
        let mut folded = Vec::with_capacity(early);
        for _ in 0..early {
            if let Some(item) = self.items.pop_front() {
                apply(&mut self.base, &item.change);
                folded.push(item);
            }
        }
        let removed = aged + early;
        self.memo = match self.memo.take() {
            Some((done, state)) if done >= removed => Some((done - removed, state)),
            _ => None,
        };
        folded
    }

    /// Replaces the state before `at_ms` with the one a match's history gives (read back after a
    /// restart, when the base is only the snapshot the store held): `base` is the history applied
    /// up to `before`, and `events` (stamped by their source time) follow it. The items the line
    /// gained since it was created, which come after every event of the history read, stay.
    pub fn rewind(&mut self, base: MatchSnapshot, events: Vec<(ScoreEvent, Outbound)>) {
        let mut older: VecDeque<Item> = VecDeque::with_capacity(events.len() + self.items.len());
        let mut last = 0;
        for (event, frame) in events {
            last = last.max(event.ts_ms);
            older.push_back(Item {
                at_ms: last,
                frame,
                change: Change::Event(event),
            });
        }
        let newer = std::mem::take(&mut self.items);
        for mut item in newer {
            item.at_ms = item.at_ms.max(last);
            older.push_back(item);
        }
        self.base = base;
        self.items = older;
        self.memo = None;
    }

    /// Whether the line holds no item (its state is its base).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many items the line holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// When each item held happened, oldest first.
    pub fn times(&self) -> impl Iterator<Item = u64> + '_ {
        self.items.iter().map(|item| item.at_ms)
    }
}

/// Which matches have items stamped in each quarter second of the window, so that releasing what
/// became due to one delay visits only the matches that have something due, not every match: a
/// tick then costs each delay in use the matches active in its last quarter second.
///
/// Bounded by the window's slots times the matches active in each (a busy match is one entry per
/// slot however many items it sends).
#[derive(Debug, Default)]
pub struct Activity {
    slots: BTreeMap<u64, HashSet<MatchTopic>>,
}

impl Activity {
    /// Notes that `topic` has an item stamped `at_ms`.
    pub fn note(&mut self, at_ms: u64, topic: &MatchTopic) {
        let slot = self.slots.entry(at_ms / SLOT_MS).or_default();
        if !slot.contains(topic) {
            slot.insert(topic.clone());
        }
    }

    /// Every match with an item stamped after `after_ms` and at or before `until_ms` (and maybe
    /// a few just outside, in the same slots), each once.
    pub fn between(&self, after_ms: u64, until_ms: u64) -> Vec<&MatchTopic> {
        if until_ms <= after_ms {
            return Vec::new();
        }
        let mut topics: Vec<&MatchTopic> = self
            .slots
            .range(after_ms / SLOT_MS..=until_ms / SLOT_MS)
            .flat_map(|(_, topics)| topics)
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Forgets the slots that hold only times at or before `cutoff_ms`.
    pub fn forget_until(&mut self, cutoff_ms: u64) {
        let keep_from = cutoff_ms.saturating_add(1) / SLOT_MS;
        self.slots = self.slots.split_off(&keep_from);
    }

    /// How many (slot, match) entries are held.
    pub fn len(&self) -> usize {
        self.slots.values().map(HashSet::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

fn apply(state: &mut MatchSnapshot, change: &Change) {
    match change {
        // The hub put the event in the line only after it applied to the live state in the same
        // order, so it applies here too; if it somehow did not, the state stays as it was, as the
        // live state did for an event it refused.
        Change::Event(event) => {
            let _ = reducer::apply(state, event);
        }
        Change::Reset(snapshot) => *state = (**snapshot).clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scoreline_protocol::test_support::{arsenal_chelsea, goal};
    use scoreline_protocol::{EventKind, MatchTopic, Side};

    const TOPIC: &str = "football/pl/ars-che";

    fn event(seq: u64, ts_ms: u64, kind: EventKind) -> ScoreEvent {
        ScoreEvent {
            ts_ms,
            ..scoreline_protocol::test_support::event(TOPIC, seq, kind)
        }
    }

    fn frame(seq: u64) -> Outbound {
        Outbound::critical(format!("frame {seq}"))
    }

    /// A line for a match scheduled at 1 s, kicked off at 2 s, with goals at 10 s and 20 s.
    fn played() -> DelayLine {
        let mut line = DelayLine::new(MatchSnapshot::new(MatchTopic::parse(TOPIC).unwrap()));
        let now = 100_000;
        line.push_event(event(1, 1_000, arsenal_chelsea()), frame(1), now);
        line.push_event(event(2, 2_000, EventKind::MatchStarted), frame(2), now);
        line.push_event(event(3, 10_000, goal(Side::Home)), frame(3), now);
        line.push_event(event(4, 20_000, goal(Side::Away)), frame(4), now);
        line
    }

    fn texts<'a>(items: impl Iterator<Item = &'a Item>) -> Vec<String> {
        items.map(|item| item.frame.text.to_string()).collect()
    }

    #[test]
    fn the_state_at_a_moment_holds_what_had_happened_by_then() {
        let mut line = played();
        assert_eq!(line.state_at(500).seq, 0);
        let before_goals = line.state_at(9_999);
        assert_eq!((before_goals.seq, before_goals.score.home), (2, 0));
        let at_first_goal = line.state_at(10_000);
        assert_eq!((at_first_goal.seq, at_first_goal.score.home), (3, 1));
        let now = line.latest();
        assert_eq!((now.seq, now.score.home, now.score.away), (4, 1, 1));
        // Asked again (the memo) and out of order (recomputed), the answers stay the same.
        assert_eq!(line.state_at(10_000), at_first_goal);
        assert_eq!(line.state_at(9_999), before_goals);
    }

    #[test]
    fn fans_are_owed_the_items_between_two_moments_once() {
        let line = played();
        assert_eq!(texts(line.between(0, 1_999)), ["frame 1"]);
        assert_eq!(texts(line.between(1_999, 10_000)), ["frame 2", "frame 3"]);
        assert_eq!(texts(line.between(10_000, 19_999)), Vec::<String>::new());
        assert_eq!(texts(line.between(19_999, 50_000)), ["frame 4"]);
        assert_eq!(texts(line.between(50_000, 40_000)), Vec::<String>::new());
    }

    #[test]
    fn a_feed_clock_ahead_of_ours_and_late_events_keep_the_order_live_fans_saw() {
        let mut line = DelayLine::new(MatchSnapshot::new(MatchTopic::parse(TOPIC).unwrap()));
        // Stamped an hour ahead: held only until now, not for an extra hour.
        line.push_event(event(1, 3_600_000, arsenal_chelsea()), frame(1), 5_000);
        // Stamped before the previous one (read back from the history): it comes after it.
        line.push_event(event(2, 4_000, EventKind::MatchStarted), frame(2), 6_000);
        assert_eq!(texts(line.between(0, 5_000)), ["frame 1", "frame 2"]);
    }

    #[test]
    fn a_reset_replaces_the_state_from_the_moment_it_was_sent() {
        let mut line = played();
        let mut rewritten = line.latest();
        rewritten.score.away = 0;
        line.push_reset(rewritten.clone(), frame(99), 30_000);
        assert_eq!(line.state_at(29_999).score.away, 1);
        assert_eq!(line.state_at(30_000), rewritten);
        assert_eq!(texts(line.between(20_000, 30_000)), ["frame 99"]);
    }

    #[test]
    fn aged_items_fold_into_the_base_without_changing_any_state() {
        let mut line = played();
        let at_15 = line.state_at(15_000);
        let latest = line.latest();
        assert!(
            line.fold(10_000).is_empty(),
            "aged items are not sent again"
        );
        assert_eq!(line.len(), 1);
        assert_eq!(line.state_at(15_000), at_15);
        assert_eq!(line.latest(), latest);
        assert_eq!(texts(line.between(0, 50_000)), ["frame 4"]);
    }

    #[test]
    fn a_full_line_folds_its_oldest_items_early_and_hands_them_back() {
        let mut line = played();
        let kicked_off = line.latest();
        for seq in 5..5 + MAX_ITEMS as u64 {
            let clock = event(seq, 30_000 + seq, EventKind::Clock { running: true });
            line.push_event(clock, frame(seq), 100_000);
        }
        let folded = line.fold(0);
        assert_eq!(
            texts(folded.iter()),
            ["frame 1", "frame 2", "frame 3", "frame 4"]
        );
        assert_eq!(line.len(), MAX_ITEMS);
        let state = line.state_at(30_000);
        assert_eq!((state.seq, state.score), (kicked_off.seq, kicked_off.score));
    }

    #[test]
    fn activity_names_each_match_with_items_in_a_span_once_and_forgets_old_slots() {
        let topic = |name: &str| MatchTopic::parse(&format!("football/pl/{name}")).unwrap();
        let mut activity = Activity::default();
        activity.note(1_000, &topic("a"));
        activity.note(1_100, &topic("a"));
        activity.note(1_600, &topic("b"));
        activity.note(9_000, &topic("a"));
        let names = |topics: Vec<&MatchTopic>| -> Vec<String> {
            topics.iter().map(|t| t.to_string()).collect()
        };
        assert_eq!(names(activity.between(999, 1_000)), ["football/pl/a"]);
        assert_eq!(
            names(activity.between(0, 10_000)),
            ["football/pl/a", "football/pl/b"]
        );
        assert_eq!(names(activity.between(1_750, 8_999)), Vec::<String>::new());
        assert_eq!(names(activity.between(2_000, 1_000)), Vec::<String>::new());
        assert_eq!(activity.len(), 3, "one entry per match and slot");
        activity.forget_until(1_748);
        assert_eq!(
            names(activity.between(0, 10_000)),
            ["football/pl/a", "football/pl/b"],
            "the slot holding 1,600 (1,500 to 1,749) may hold times after 1,748"
        );
        activity.forget_until(1_749);
        assert_eq!(names(activity.between(0, 10_000)), ["football/pl/a"]);
    }

    #[test]
    fn a_history_read_back_gives_a_restored_match_its_past() {
        let mut full = played();
        let latest = full.latest();
        // After a restart the store gave only the latest state; then one more event came live.
        let mut line = DelayLine::new(latest.clone());
        line.push_event(event(5, 25_000, goal(Side::Home)), frame(5), 100_000);
        assert_eq!(
            line.state_at(15_000).seq,
            4,
            "only the restored state is known"
        );
        let history: Vec<(ScoreEvent, Outbound)> = (1..=4)
            .zip([
                arsenal_chelsea(),
                EventKind::MatchStarted,
                goal(Side::Home),
                goal(Side::Away),
            ])
            .zip([1_000, 2_000, 10_000, 20_000])
            .map(|((seq, kind), ts)| (event(seq, ts, kind), frame(seq)))
            .collect();
        let base = MatchSnapshot::new(MatchTopic::parse(TOPIC).unwrap());
        line.rewind(base, history);
        assert_eq!(line.state_at(15_000), full.state_at(15_000));
        let now = line.latest();
        assert_eq!((now.seq, now.score.home, now.score.away), (5, 2, 1));
        assert_eq!(texts(line.between(15_000, 30_000)), ["frame 4", "frame 5"]);
    }
}
