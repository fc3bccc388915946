//! The scoreboard: the viewer's copy of every followed match, kept exact by snapshots and `seq`.
//!
//! [`Scoreboard::apply`] folds one server message into the matches and reports what the caller
//! must do about it: which matches have a gap in their history and need a fresh snapshot. The
//! scoreboard never trusts an event it cannot place: a duplicate is dropped, a gap is reported,
//! an epoch change (the match's history was reset) is reported the same way. After a reconnect
//! the server either resumes a match (no snapshot; the missed events follow) or resyncs it (a
//! snapshot that replaces it); neither ever moves a match back to an older `(epoch, seq)`.

use std::collections::BTreeMap;

use scoreline_protocol::{
    ApplyError, MatchSnapshot, MatchStatus, MatchTopic, ResumePoint, ScoreEvent, ServerMessage,
    Sport, apply,
};

use crate::follow::FollowList;

/// How long a changed score stays highlighted.
pub const FLASH_MILLIS: u64 = 2_500;

/// One followed match and what the viewer knows about its freshness.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMatch {
    /// The match as of its last applied event.
    pub snapshot: MatchSnapshot,
    /// The connection generation on which this state was last confirmed (by a snapshot, or by an
    /// event that followed on without a gap). Anything older may have missed events.
    pub confirmed_generation: u64,
    /// A gap was seen and a fresh snapshot has been asked for; until it comes the score may be
    /// behind.
    pub repairing: bool,
    /// When the headline score last changed, to flash it.
    pub score_changed_ms: Option<u64>,
    /// The connection generation on which the server last sent a `resync` for this match. A
    /// complete `subscribed` reply on that connection which lacks the match does not drop it:
    /// the server may send a resync instead of a snapshot, before the reply as well as after.
    pub resynced_generation: Option<u64>,
    /// The connection generation on which the viewer sent a resume point for this match. A
    /// complete `subscribed` reply on that connection which neither resumed nor sent the match
    /// keeps it and reports it in [`Outcome::awaiting_resync`]: the server follows such a reply
    /// with a `resync` for every match it could not resume.
    pub resume_sent_generation: Option<u64>,
}

impl TrackedMatch {
    /// Whether the score was changed recently enough to flash at `now_ms`, and how far into the
    /// flash it is (0.0 just changed, 1.0 done).
    pub fn flash_progress(&self, now_ms: u64) -> Option<f32> {
        let changed_ms = self.score_changed_ms?;
        let elapsed_millis = now_ms.saturating_sub(changed_ms);
        (elapsed_millis < FLASH_MILLIS).then(|| elapsed_millis as f32 / FLASH_MILLIS as f32)
    }
}

/// What applying a message asks of the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Matches whose history has a hole (missed `seq`, history reset): re-subscribe them for a
    /// fresh snapshot.
    pub needs_snapshot: Vec<MatchTopic>,
    /// Matches a complete `subscribed` reply left out although a resume point was sent for
    /// them on this connection: a `resync` should follow; if none does, ask for a snapshot (the
    /// server may no longer have the match).
    pub awaiting_resync: Vec<MatchTopic>,
    /// Matches the message updated, for logs and tests.
    pub updated: Vec<MatchTopic>,
}

/// The three sections of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// In play, at a break or suspended.
    Live,
    /// Not started yet.
    Upcoming,
    /// Over: finished, abandoned or postponed.
    Finished,
}

impl Section {
    /// The section a status belongs in.
    pub fn of(status: MatchStatus) -> Section {
        if status.is_in_progress() {
            Section::Live
        } else if status == MatchStatus::Scheduled {
            Section::Upcoming
        } else {
            Section::Finished
        }
    }

    /// Heading shown above the section.
    pub fn title(self) -> &'static str {
        match self {
            Section::Live => "Live",
            Section::Upcoming => "Upcoming",
            Section::Finished => "Finished",
        }
    }
}

/// Matches of one competition within a section.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    /// The sport.
    pub sport: Sport,
    /// The competition's display name (or its slug when the feed gave none).
    pub competition: String,
    /// The matches, in listing order.
    pub matches: Vec<&'a TrackedMatch>,
}

/// The followed matches.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    matches: BTreeMap<MatchTopic, TrackedMatch>,
}

impl Scoreboard {
    /// An empty board.
    pub fn new() -> Scoreboard {
        Scoreboard::default()
    }

    /// Folds one server message into the board. Messages that carry no match data are ignored.
    ///
    /// `follows` filters what is kept: a snapshot or event of a match no longer followed (one
    /// still in flight when the fan unfollowed) is dropped. `generation` is the current
    /// connection's, which a snapshot or a gap-free event confirms.
    pub fn apply(
        &mut self,
        message: &ServerMessage,
        follows: &FollowList,
        generation: u64,
        now_ms: u64,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        match message {
            ServerMessage::Subscribed {
                topics,
                snapshots,
                omitted,
                resumed,
            } => {
                for snapshot in snapshots {
                    if follows.covers(&snapshot.match_topic) {
                        self.take_snapshot(snapshot, generation, now_ms, &mut outcome);
                    }
                }
                for topic in resumed {
                    self.confirm_resumed(topic, generation, &mut outcome);
                }
                if *omitted == 0 {
                    // A complete reply lists every match the server has under these topics,
                    // as a snapshot or as resumed: one we hold that it lacks is gone (a finished
                    // match it evicted, a reset server). Showing it as stale forever would help
                    // no one. Except: a match resynced on this connection is the server's own
                    // word that it has the match, and one we sent a resume point for may be
                    // answered by a resync that comes after the reply.
                    let awaiting = &mut outcome.awaiting_resync;
                    self.matches.retain(|topic, tracked| {
                        let lacking = topics.iter().any(|t| t.covers(topic.topic()))
                            && !snapshots.iter().any(|s| &s.match_topic == topic)
                            && !resumed.contains(topic);
                        if !lacking || tracked.resynced_generation == Some(generation) {
                            return true;
                        }
                        if tracked.resume_sent_generation.take() == Some(generation) {
                            // Spared once: the next complete reply that lacks it (the answer to
                            // the repair, if no resync comes) drops it.
                            awaiting.push(topic.clone());
                            return true;
                        }
                        tracing::info!(%topic, "the server no longer has this match");
                        false
                    });
                }
            }
            ServerMessage::Event(event) if follows.covers(&event.match_topic) => {
                self.apply_event(event, generation, now_ms, &mut outcome);
            }
            ServerMessage::Resync { reason, snapshot } if follows.covers(&snapshot.match_topic) => {
                let topic = &snapshot.match_topic;
                tracing::info!(
                    %topic,
                    ?reason,
                    epoch = snapshot.epoch,
                    seq = snapshot.seq,
                    "the server resynced the match; taking its snapshot unless ours is newer"
                );
                self.take_snapshot(snapshot, generation, now_ms, &mut outcome);
                if let Some(tracked) = self.matches.get_mut(topic) {
                    tracked.resynced_generation = Some(generation);
                }
            }
            _ => {}
        }
        outcome
    }

    /// The server resumed `topic` from the point this viewer sent: what we hold is exact up to
    /// that point and the missed events follow in order, so the match is confirmed on this
    /// connection now. A gap among the events that follow still triggers a repair.
    fn confirm_resumed(&mut self, topic: &MatchTopic, generation: u64, outcome: &mut Outcome) {
        match self.matches.get_mut(topic) {
            // A match awaiting a repair has no trustworthy resume point, so the session sends
            // none for it; should a server resume it anyway, the repair still decides.
            Some(tracked) if !tracked.repairing => {
                tracked.confirmed_generation = generation;
                tracked.resume_sent_generation = None;
                outcome.updated.push(topic.clone());
            }
            Some(_) => {}
            None => tracing::debug!(%topic, "resumed a match this viewer does not hold"),
        }
    }

    fn take_snapshot(
        &mut self,
        snapshot: &MatchSnapshot,
        generation: u64,
        now_ms: u64,
        outcome: &mut Outcome,
    ) {
        let topic = snapshot.match_topic.clone();
        match self.matches.get_mut(&topic) {
            Some(tracked) => {
                // The server answered for this match: a resume point sent is settled.
                tracked.resume_sent_generation = None;
                let current = &tracked.snapshot;
                // Epochs only grow (a reset starts a higher one), so `(epoch, seq)` orders
                // histories: a newer epoch wins even with a lower seq.
                if (snapshot.epoch, snapshot.seq) < (current.epoch, current.seq) {
                    // Older than what we hold (a lagging server instance): keeping ours loses
                    // nothing, and events will move it on.
                    tracing::debug!(
                        %topic,
                        have_epoch = current.epoch,
                        have_seq = current.seq,
                        got_epoch = snapshot.epoch,
                        got_seq = snapshot.seq,
                        "older snapshot ignored"
                    );
                    tracked.repairing = false;
                    return;
                }
                if current.score != snapshot.score || current.shootout != snapshot.shootout {
                    // A score that changed while we were away deserves the same flash as a
                    // live one: the fan must notice the goal they missed.
                    tracked.score_changed_ms = Some(now_ms);
                }
                tracked.snapshot = snapshot.clone();
                tracked.confirmed_generation = generation;
                tracked.repairing = false;
            }
            None => {
                self.matches.insert(
                    topic.clone(),
                    TrackedMatch {
                        snapshot: snapshot.clone(),
                        confirmed_generation: generation,
                        repairing: false,
                        score_changed_ms: None,
                        resynced_generation: None,
                        resume_sent_generation: None,
                    },
                );
            }
        }
        outcome.updated.push(topic);
    }

    fn apply_event(
        &mut self,
        event: &ScoreEvent,
        generation: u64,
        now_ms: u64,
        outcome: &mut Outcome,
    ) {
        let topic = &event.match_topic;
        let tracked = self
            .matches
            .entry(topic.clone())
            .or_insert_with(|| TrackedMatch {
                // A match we hold no snapshot of (scheduled after we subscribed): build it from
                // its events, and ask for a snapshot if its first event is not seq 1.
                snapshot: MatchSnapshot::new(topic.clone()),
                confirmed_generation: generation,
                repairing: false,
                score_changed_ms: None,
                resynced_generation: None,
                resume_sent_generation: None,
            });
        let score_before = (tracked.snapshot.score, tracked.snapshot.shootout);
        match apply(&mut tracked.snapshot, event) {
            Ok(applied) => {
                if let Some(missed) = applied.missed {
                    tracing::info!(%topic, ?missed, "gap in match history; asking for a snapshot");
                    request_repair(tracked, topic, outcome);
                } else if !tracked.repairing {
                    tracked.confirmed_generation = generation;
                }
                if score_before != (tracked.snapshot.score, tracked.snapshot.shootout) {
                    tracked.score_changed_ms = Some(now_ms);
                }
                outcome.updated.push(topic.clone());
            }
            Err(ApplyError::NotNewer { .. }) => {
                // A duplicate: expected when overlapping follows or a repair deliver it twice.
            }
            Err(ApplyError::EpochChanged { current, got }) => {
                if !tracked.repairing {
                    tracing::info!(%topic, current, got, "match history was reset; asking for a snapshot");
                }
                request_repair(tracked, topic, outcome);
            }
            Err(error) => {
                // The service validated this event with the same reducer, so this means our copy
                // differs from the server's: a fresh snapshot puts it right.
                if !tracked.repairing {
                    tracing::warn!(%topic, seq = event.seq, %error, "event did not apply; asking for a snapshot");
                }
                request_repair(tracked, topic, outcome);
            }
        }
    }

    /// Forgets matches no follow covers any more (after an unfollow).
    pub fn retain_followed(&mut self, follows: &FollowList) {
        self.matches.retain(|topic, _| follows.covers(topic));
    }

    /// Marks `topic` as awaiting a fresh snapshot (when the caller asks for one on its own, e.g.
    /// for matches a `subscribed` reply left out).
    pub fn mark_repairing(&mut self, topic: &MatchTopic) {
        if let Some(tracked) = self.matches.get_mut(topic) {
            tracked.repairing = true;
        }
    }

    /// Where each held match can be resumed from after a reconnect: the `(epoch, seq)` of the
    /// last event applied, live matches first (they are the ones likely to have missed events),
    /// then by topic. A match awaiting a repair is left out, since its `seq` may have moved past
    /// a gap, as is one without any event yet: a fresh snapshot is what those need.
    pub fn resume_points(&self) -> Vec<(&MatchTopic, ResumePoint)> {
        let mut points: Vec<(&MatchTopic, ResumePoint, bool)> = self
            .matches
            .iter()
            .filter(|(_, tracked)| !tracked.repairing && tracked.snapshot.seq > 0)
            .map(|(topic, tracked)| {
                let point = ResumePoint {
                    epoch: tracked.snapshot.epoch,
                    seq: tracked.snapshot.seq,
                };
                (topic, point, tracked.snapshot.status.is_in_progress())
            })
            .collect();
        // Stable, so topics stay in order within each group.
        points.sort_by_key(|(_, _, live)| !live);
        points
            .into_iter()
            .map(|(topic, point, _)| (topic, point))
            .collect()
    }

    /// Records that a resume point for `topic` was sent on connection `generation`.
    pub fn mark_resume_sent(&mut self, topic: &MatchTopic, generation: u64) {
        if let Some(tracked) = self.matches.get_mut(topic) {
            tracked.resume_sent_generation = Some(generation);
        }
    }

    /// Matches under `topics` that the current connection has not confirmed.
    pub fn unconfirmed_under<'a>(
        &'a self,
        topics: &'a [scoreline_protocol::Topic],
        generation: u64,
    ) -> impl Iterator<Item = &'a MatchTopic> + 'a {
        self.matches
            .iter()
            .filter(move |(topic, tracked)| {
                tracked.confirmed_generation != generation
                    && topics.iter().any(|t| t.covers(topic.topic()))
            })
            .map(|(topic, _)| topic)
    }

    /// One match.
    pub fn get(&self, topic: &MatchTopic) -> Option<&TrackedMatch> {
        self.matches.get(topic)
    }

    /// Every match, by topic.
    pub fn matches(&self) -> impl Iterator<Item = &TrackedMatch> {
        self.matches.values()
    }

    /// How many matches are tracked.
    pub fn len(&self) -> usize {
        self.matches.len()
    }

    /// Whether no match is tracked.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// The board as drawn: matches passing `filter`, in sections (live, upcoming, finished),
    /// grouped by sport and competition, each in the order fans expect.
    pub fn sections(&self, filter: &str) -> Vec<(Section, Vec<Group<'_>>)> {
        let mut sections: BTreeMap<Section, BTreeMap<(String, String), Vec<&TrackedMatch>>> =
            BTreeMap::new();
        for tracked in self.matches.values() {
            if !matches_filter(&tracked.snapshot, filter) {
                continue;
            }
            let snapshot = &tracked.snapshot;
            sections
                .entry(Section::of(snapshot.status))
                .or_default()
                .entry((
                    snapshot.match_topic.sport_slug().to_owned(),
                    competition_name(snapshot),
                ))
                .or_default()
                .push(tracked);
        }
        sections
            .into_iter()
            .map(|(section, groups)| {
                let groups = groups
                    .into_iter()
                    .map(|((_, competition), mut matches)| {
                        matches.sort_by(|a, b| {
                            scoreline_protocol::wire::listing_order(&a.snapshot, &b.snapshot)
                        });
                        Group {
                            sport: matches
                                .first()
                                .map_or(Sport::Other, |tracked| tracked.snapshot.sport),
                            competition,
                            matches,
                        }
                    })
                    .collect();
                (section, groups)
            })
            .collect()
    }
}

fn request_repair(tracked: &mut TrackedMatch, topic: &MatchTopic, outcome: &mut Outcome) {
    if !tracked.repairing {
        tracked.repairing = true;
        outcome.needs_snapshot.push(topic.clone());
    }
}

/// The competition's display name, or a readable form of its slug.
pub fn competition_name(snapshot: &MatchSnapshot) -> String {
    snapshot
        .competition
        .clone()
        .unwrap_or_else(|| slug_to_title(snapshot.match_topic.competition_slug()))
}

/// `premier-league` → `Premier League`: a readable fallback when a feed sends no display name.
pub fn slug_to_title(slug: &str) -> String {
    slug.split('-')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a match passes the fan's filter: every word of the filter must appear, ignoring case,
/// in a team name or code, the competition, the sport or the topic.
pub fn matches_filter(snapshot: &MatchSnapshot, filter: &str) -> bool {
    let haystack = [
        snapshot.home.name.as_str(),
        snapshot.home.code.as_deref().unwrap_or_default(),
        snapshot.away.name.as_str(),
        snapshot.away.code.as_deref().unwrap_or_default(),
        snapshot.competition.as_deref().unwrap_or_default(),
        snapshot.venue.as_deref().unwrap_or_default(),
        snapshot.match_topic.as_str(),
    ]
    .join("\u{1f}")
    .to_lowercase();
    filter
        .split_whitespace()
        .all(|word| haystack.contains(&word.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::test_support::{self, arsenal_chelsea as scheduled, goal};
    use scoreline_protocol::{EventKind, ResyncReason, Side, Team, Topic};

    use super::*;

    const MATCH: &str = "football/premier-league/ars-che";

    fn follows() -> FollowList {
        FollowList::new([Topic::parse("football").unwrap()])
    }

    /// An event of the match, a minute of play after the previous one.
    fn event(seq: u64, kind: EventKind) -> ScoreEvent {
        ScoreEvent {
            clock_secs: Some(60 * seq as u32),
            ..test_support::event(MATCH, seq, kind)
        }
    }

    /// The server's view of the match after `events`, as a `subscribed` reply would carry it.
    fn snapshot_after(events: &[ScoreEvent]) -> MatchSnapshot {
        let mut snapshot = MatchSnapshot::new(MatchTopic::parse(MATCH).unwrap());
        for event in events {
            apply(&mut snapshot, event).unwrap();
        }
        snapshot
    }

    fn subscribed(snapshot: MatchSnapshot) -> ServerMessage {
        ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![snapshot],
            omitted: 0,
            resumed: Vec::new(),
        }
    }

    fn history() -> Vec<ScoreEvent> {
        vec![
            event(1, scheduled()),
            event(2, EventKind::PeriodStarted { period: 1 }),
            event(3, goal(Side::Home)),
            event(4, goal(Side::Away)),
            event(5, goal(Side::Home)),
        ]
    }

    fn topic() -> MatchTopic {
        MatchTopic::parse(MATCH).unwrap()
    }

    #[test]
    fn snapshot_then_events_move_the_score_and_flash_it() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..2])), &follows(), 1, 0);
        let outcome = board.apply(&ServerMessage::Event(events[2].clone()), &follows(), 1, 500);
        assert_eq!(outcome.needs_snapshot, vec![]);
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(tracked.snapshot.score.home, 1);
        assert_eq!(tracked.flash_progress(500), Some(0.0));
        assert!(tracked.flash_progress(500 + FLASH_MILLIS).is_none());
    }

    #[test]
    fn a_complete_reply_forgets_matches_the_server_no_longer_has() {
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&history())), &follows(), 1, 0);
        let other = MatchTopic::parse("football/la-liga/rma-fcb").unwrap();
        let mut kept = MatchSnapshot::new(other.clone());
        kept.seq = 1;
        board.apply(&subscribed(kept.clone()), &follows(), 2, 0);
        assert!(board.get(&topic()).is_none(), "evicted by the server");
        assert!(board.get(&other).is_some());

        // A capped reply proves nothing about what it left out.
        board.apply(&subscribed(snapshot_after(&history())), &follows(), 3, 0);
        let capped = ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![kept],
            omitted: 5,
            resumed: Vec::new(),
        };
        board.apply(&capped, &follows(), 3, 0);
        assert!(board.get(&topic()).is_some());
    }

    #[test]
    fn duplicates_are_dropped_silently() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        let outcome = board.apply(&ServerMessage::Event(events[2].clone()), &follows(), 1, 0);
        assert_eq!(outcome, Outcome::default());
        assert_eq!(board.get(&topic()).unwrap().snapshot.score.home, 1);
    }

    #[test]
    fn a_gap_asks_once_for_a_snapshot_which_repairs_the_score() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..2])), &follows(), 1, 0);
        // seq 3 and 4 are lost; seq 5 arrives.
        let outcome = board.apply(&ServerMessage::Event(events[4].clone()), &follows(), 1, 0);
        assert_eq!(outcome.needs_snapshot, vec![topic()]);
        assert!(board.get(&topic()).unwrap().repairing);
        let again = board.apply(
            &ServerMessage::Event(event(6, EventKind::Clock { running: true })),
            &follows(),
            1,
            0,
        );
        assert_eq!(again.needs_snapshot, vec![], "one request per gap");

        let mut repaired = snapshot_after(&events);
        apply(&mut repaired, &event(6, EventKind::Clock { running: true })).unwrap();
        board.apply(&subscribed(repaired), &follows(), 1, 9_000);
        let tracked = board.get(&topic()).unwrap();
        assert!(!tracked.repairing);
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(tracked.snapshot.seq, 6);
        assert_eq!(
            tracked.score_changed_ms,
            Some(9_000),
            "the missed goal flashes"
        );
    }

    #[test]
    fn reconnect_snapshot_replaces_stale_state_and_confirms_it() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        assert_eq!(board.get(&topic()).unwrap().confirmed_generation, 1);
        // Disconnected during seq 4 and 5; generation 2 re-subscribes and gets the new state.
        board.apply(&subscribed(snapshot_after(&events)), &follows(), 2, 0);
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(tracked.snapshot.score.home, 2);
        assert_eq!(tracked.snapshot.score.away, 1);
    }

    #[test]
    fn an_older_snapshot_never_rolls_the_score_back() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events)), &follows(), 1, 0);
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        assert_eq!(board.get(&topic()).unwrap().snapshot.seq, 5);
    }

    #[test]
    fn an_epoch_change_asks_for_a_snapshot_and_keeps_the_old_state_meanwhile() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events)), &follows(), 1, 0);
        let mut reset = event(1, scheduled());
        reset.epoch = 1;
        let outcome = board.apply(&ServerMessage::Event(reset), &follows(), 1, 0);
        assert_eq!(outcome.needs_snapshot, vec![topic()]);
        assert_eq!(board.get(&topic()).unwrap().snapshot.seq, 5);
    }

    #[test]
    fn a_new_match_is_built_from_its_events_and_unfollowed_ones_are_ignored() {
        let mut board = Scoreboard::new();
        board.apply(
            &ServerMessage::Event(event(1, scheduled())),
            &follows(),
            1,
            0,
        );
        assert_eq!(board.get(&topic()).unwrap().snapshot.home.name, "Arsenal");

        let tennis_only = FollowList::new([Topic::parse("tennis").unwrap()]);
        let mut other = Scoreboard::new();
        other.apply(
            &ServerMessage::Event(event(1, scheduled())),
            &tennis_only,
            1,
            0,
        );
        assert!(other.is_empty());
        board.retain_followed(&tennis_only);
        assert!(board.is_empty());
    }

    #[test]
    fn a_first_event_after_seq_1_needs_a_snapshot() {
        let mut board = Scoreboard::new();
        let outcome = board.apply(
            &ServerMessage::Event(event(3, goal(Side::Home))),
            &follows(),
            1,
            0,
        );
        assert_eq!(outcome.needs_snapshot, vec![topic()]);
    }

    fn resumed(resumed: Vec<MatchTopic>) -> ServerMessage {
        ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: Vec::new(),
            omitted: 0,
            resumed,
        }
    }

    fn resync(reason: ResyncReason, snapshot: MatchSnapshot) -> ServerMessage {
        ServerMessage::Resync { reason, snapshot }
    }

    /// `events` renumbered into `epoch`, as a feed's history reset makes them.
    fn in_epoch(epoch: u64, events: &[ScoreEvent]) -> Vec<ScoreEvent> {
        events
            .iter()
            .cloned()
            .map(|mut event| {
                event.epoch = epoch;
                event
            })
            .collect()
    }

    #[test]
    fn resume_points_are_the_last_applied_epoch_and_seq_live_first_repairs_left_out() {
        let mut board = Scoreboard::new();
        let mut upcoming =
            MatchSnapshot::new(MatchTopic::parse("football/a-league/aaa-bbb").unwrap());
        upcoming.epoch = 7;
        upcoming.seq = 1;
        let reply = ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![upcoming, snapshot_after(&history()[..3])],
            omitted: 0,
            resumed: Vec::new(),
        };
        board.apply(&reply, &follows(), 1, 0);
        let points: Vec<(String, ResumePoint)> = board
            .resume_points()
            .into_iter()
            .map(|(topic, point)| (topic.to_string(), point))
            .collect();
        assert_eq!(
            points,
            vec![
                (MATCH.to_owned(), ResumePoint { epoch: 0, seq: 3 }),
                (
                    "football/a-league/aaa-bbb".to_owned(),
                    ResumePoint { epoch: 7, seq: 1 }
                ),
            ],
            "the live match first, though its topic sorts later"
        );

        // A gap moves seq past events never applied: that match needs a snapshot instead.
        board.apply(
            &ServerMessage::Event(history()[4].clone()),
            &follows(),
            1,
            0,
        );
        assert_eq!(board.resume_points().len(), 1);
    }

    #[test]
    fn resumed_matches_count_as_present_and_are_confirmed_then_events_catch_up() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        // Reconnected as generation 2: the complete reply resumes the match instead of sending
        // its snapshot; it must be neither forgotten nor left stale.
        let outcome = board.apply(&resumed(vec![topic()]), &follows(), 2, 100);
        assert_eq!(outcome.updated, vec![topic()]);
        let tracked = board.get(&topic()).expect("a resumed match is kept");
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(tracked.snapshot.seq, 3);

        // The missed events follow as ordinary events, and the missed goals flash.
        for event in &events[3..] {
            let outcome = board.apply(&ServerMessage::Event(event.clone()), &follows(), 2, 200);
            assert_eq!(outcome.needs_snapshot, vec![]);
        }
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(tracked.score_changed_ms, Some(200));

        // A match the reply neither resumed nor sent is still dropped by a complete reply.
        let other = MatchTopic::parse("football/la-liga/rma-fcb").unwrap();
        board.apply(&resumed(vec![other]), &follows(), 3, 300);
        assert!(board.is_empty());
    }

    #[test]
    fn a_gap_in_the_events_after_a_resume_still_asks_for_a_snapshot() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..2])), &follows(), 1, 0);
        board.apply(&resumed(vec![topic()]), &follows(), 2, 0);
        // The replay skips seq 3.
        let outcome = board.apply(&ServerMessage::Event(events[3].clone()), &follows(), 2, 0);
        assert_eq!(outcome.needs_snapshot, vec![topic()]);
        assert!(board.get(&topic()).unwrap().repairing);
    }

    #[test]
    fn a_resync_replaces_the_state_flashes_and_clears_repairing() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..2])), &follows(), 1, 0);
        // A gap: the match is repairing when the server resyncs it (events lost upstream).
        board.apply(&ServerMessage::Event(events[4].clone()), &follows(), 1, 0);
        assert!(board.get(&topic()).unwrap().repairing);
        let outcome = board.apply(
            &resync(ResyncReason::EventsLost, snapshot_after(&events)),
            &follows(),
            2,
            700,
        );
        assert_eq!(outcome.updated, vec![topic()]);
        let tracked = board.get(&topic()).unwrap();
        assert!(!tracked.repairing);
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(
            tracked.score_changed_ms,
            Some(700),
            "the changed score flashes"
        );

        // A resync at the same state changes no score, so nothing flashes again.
        board.apply(
            &resync(ResyncReason::HistoryTrimmed, snapshot_after(&events)),
            &follows(),
            2,
            900,
        );
        assert_eq!(board.get(&topic()).unwrap().score_changed_ms, Some(700));

        // A resync of a match followed but not held adds it; one not followed is ignored.
        let mut fresh = Scoreboard::new();
        fresh.apply(
            &resync(ResyncReason::UnknownPosition, snapshot_after(&events)),
            &follows(),
            1,
            0,
        );
        assert_eq!(fresh.len(), 1);
        let tennis_only = FollowList::new([Topic::parse("tennis").unwrap()]);
        let mut other = Scoreboard::new();
        other.apply(
            &resync(ResyncReason::EventsLost, snapshot_after(&events)),
            &tennis_only,
            1,
            0,
        );
        assert!(other.is_empty());
    }

    #[test]
    fn a_resync_after_an_epoch_change_takes_the_new_history_despite_its_lower_seq() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events)), &follows(), 1, 0);
        // The feed reset the match: epoch 1 has only reached seq 3 (1-0).
        let reset = snapshot_after(&in_epoch(1, &events[..3]));
        board.apply(
            &resync(ResyncReason::EpochChanged, reset),
            &follows(),
            2,
            50,
        );
        let tracked = board.get(&topic()).unwrap();
        assert_eq!((tracked.snapshot.epoch, tracked.snapshot.seq), (1, 3));
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (1, 0)
        );
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(tracked.score_changed_ms, Some(50));

        // Events of the new epoch then apply normally.
        let next = in_epoch(1, &events[3..4]).remove(0);
        let outcome = board.apply(&ServerMessage::Event(next), &follows(), 2, 60);
        assert_eq!(outcome.needs_snapshot, vec![]);
        assert_eq!(board.get(&topic()).unwrap().snapshot.seq, 4);

        // A plain snapshot of a newer epoch with a lower seq is taken the same way.
        board.apply(
            &subscribed(snapshot_after(&in_epoch(2, &events[..1]))),
            &follows(),
            3,
            70,
        );
        let tracked = board.get(&topic()).unwrap();
        assert_eq!((tracked.snapshot.epoch, tracked.snapshot.seq), (2, 1));
    }

    #[test]
    fn a_resync_never_rolls_back_to_an_older_epoch_or_seq() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(
            &subscribed(snapshot_after(&in_epoch(1, &events))),
            &follows(),
            1,
            0,
        );
        for older in [
            snapshot_after(&in_epoch(1, &events[..3])),
            // An older epoch, even with the same seq.
            snapshot_after(&events),
        ] {
            board.apply(
                &resync(ResyncReason::UnknownPosition, older.clone()),
                &follows(),
                2,
                0,
            );
            board.apply(&subscribed(older), &follows(), 2, 0);
            let tracked = board.get(&topic()).unwrap();
            assert_eq!((tracked.snapshot.epoch, tracked.snapshot.seq), (1, 5));
            assert_eq!(
                (tracked.snapshot.score.home, tracked.snapshot.score.away),
                (2, 1)
            );
        }
    }

    #[test]
    fn a_match_the_reply_did_not_resume_waits_for_the_resync_that_follows_it() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        board.mark_resume_sent(&topic(), 2);
        // The service's order: the reply (which neither resumes nor sends the match), then the
        // resync.
        let outcome = board.apply(&resumed(Vec::new()), &follows(), 2, 10);
        assert_eq!(outcome.awaiting_resync, vec![topic()]);
        assert_eq!(
            board.get(&topic()).unwrap().confirmed_generation,
            1,
            "stale meanwhile"
        );
        board.apply(
            &resync(ResyncReason::HistoryTrimmed, snapshot_after(&events)),
            &follows(),
            2,
            20,
        );
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(tracked.confirmed_generation, 2);
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(tracked.score_changed_ms, Some(20), "the missed goals flash");

        // Without a resync, the match is spared once; the next complete reply lacking it (the
        // answer to the repair the session then sends) drops it.
        board.mark_resume_sent(&topic(), 3);
        let outcome = board.apply(&resumed(Vec::new()), &follows(), 3, 30);
        assert_eq!(outcome.awaiting_resync, vec![topic()]);
        let repair_answer = ServerMessage::Subscribed {
            topics: vec![Topic::parse(MATCH).unwrap()],
            snapshots: Vec::new(),
            omitted: 0,
            resumed: Vec::new(),
        };
        let outcome = board.apply(&repair_answer, &follows(), 3, 40);
        assert_eq!(outcome.awaiting_resync, vec![]);
        assert!(board.is_empty());
    }

    #[test]
    fn a_match_resynced_before_a_complete_reply_is_not_dropped_by_it() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..3])), &follows(), 1, 0);
        board.apply(
            &resync(ResyncReason::HistoryTrimmed, snapshot_after(&events)),
            &follows(),
            2,
            0,
        );
        board.apply(&resumed(Vec::new()), &follows(), 2, 0);
        assert_eq!(board.get(&topic()).unwrap().snapshot.seq, 5);
        // On the next connection the resync no longer vouches for it.
        board.apply(&resumed(Vec::new()), &follows(), 3, 0);
        assert!(board.is_empty());
    }

    #[test]
    fn sections_group_by_status_and_competition_and_filter_by_words() {
        let mut board = Scoreboard::new();
        let mut upcoming =
            MatchSnapshot::new(MatchTopic::parse("football/la-liga/rma-fcb").unwrap());
        upcoming.home = Team::new("Real Madrid", "RMA");
        upcoming.away = Team::new("Barcelona", "FCB");
        let reply = ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![snapshot_after(&history()), upcoming],
            omitted: 0,
            resumed: Vec::new(),
        };
        board.apply(&reply, &follows(), 1, 0);

        let sections = board.sections("");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].0, Section::Live);
        assert_eq!(sections[0].1[0].competition, "Premier League");
        assert_eq!(sections[1].0, Section::Upcoming);
        assert_eq!(
            sections[1].1[0].competition, "La Liga",
            "slug made readable"
        );

        let filtered = board.sections("madrid");
        assert_eq!(filtered.len(), 1);
        assert_eq!(
            filtered[0].1[0].matches[0].snapshot.home.name,
            "Real Madrid"
        );
        assert!(board.sections("ARS  premier").len() == 1, "words, any case");
        assert!(
            board.sections("ars madrid").is_empty(),
            "every word must match"
        );
    }
}
