//! The scoreboard: the viewer's copy of every followed match, kept exact by snapshots and `seq`.
//!
//! [`Scoreboard::apply`] folds one server message into the matches and reports what the caller
//! must do about it: which matches have a gap in their history and need a fresh snapshot. The
//! scoreboard never trusts an event it cannot place: a duplicate is dropped, a gap is reported,
//! an epoch change (the match's history was reset) is reported the same way. After a reconnect
//! the server either resumes a match (no snapshot; the missed events follow) or resyncs it (a
//! snapshot that replaces it); neither ever moves a match back to an older `(epoch, seq)` of
//! the same timeline.
//!
//! A timeline is the spoiler delay the state was sent with: a connection with a delay of 40 s
//! receives every match as it stood 40 s ago. Each match remembers the delay of the state it
//! holds ([`TrackedMatch::delay_secs`]); a snapshot sent with another delay replaces it whatever
//! its `seq`, since after the fan lengthens the delay the server's state is rightly older (lower
//! `seq`) than what the board shows. Going back that way is not news: nothing is announced.

use std::collections::BTreeMap;

use scoreline_protocol::{
    ApplyError, MatchSnapshot, MatchTopic, ResumePoint, Score, ScoreEvent, ServerMessage, Side,
    Sport, apply,
};

use crate::follow::FollowList;

/// How long a goal (or a goal taken away) stays announced on its row: long enough that a fan
/// who looks up a little later still sees who scored, as live-score apps keep it.
pub const GOAL_BADGE_MILLIS: u64 = 60_000;

/// How long a routine score change (a basket, a tennis set, a shoot-out kick) stays highlighted:
/// long enough to notice, short enough that a basketball game's steady scoring does not keep
/// rows lit and drown out a football goal.
pub const QUIET_HIGHLIGHT_MILLIS: u64 = 3_000;

/// How a score changed, which decides how loudly the row says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A goal: a badge with the scorer and minute.
    Goal,
    /// A goal taken away (disallowed, corrected): a badge too, so the fan knows why the score
    /// went down.
    GoalDisallowed,
    /// Anything routine: basketball points, tennis sets, shoot-out kicks.
    Quiet,
}

/// The last change of a match's headline score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreChange {
    /// When the viewer saw it.
    pub at_ms: u64,
    /// The side whose score changed, when one did (a snapshot may change both).
    pub side: Option<Side>,
    /// How it changed.
    pub kind: ChangeKind,
}

impl ScoreChange {
    /// How long this change is shown.
    pub fn shown_for_millis(&self) -> u64 {
        match self.kind {
            ChangeKind::Goal | ChangeKind::GoalDisallowed => GOAL_BADGE_MILLIS,
            ChangeKind::Quiet => QUIET_HIGHLIGHT_MILLIS,
        }
    }

    /// When it stops being shown.
    pub fn until_ms(&self) -> u64 {
        self.at_ms.saturating_add(self.shown_for_millis())
    }

    /// What changed between two headline scores (goals or points, and the shoot-out) of a match
    /// of `sport`; `None` when nothing did.
    fn between(
        sport: Sport,
        before: (Score, Option<Score>),
        after: (Score, Option<Score>),
        at_ms: u64,
    ) -> Option<ScoreChange> {
        if before == after {
            return None;
        }
        let (score_before, score_after) = (before.0, after.0);
        let changed = |side: Side| score_before.get(side) != score_after.get(side);
        let side = match (changed(Side::Home), changed(Side::Away)) {
            (true, false) => Some(Side::Home),
            (false, true) => Some(Side::Away),
            (false, false) => {
                // Only the shoot-out moved.
                let (pens_before, pens_after) =
                    (before.1.unwrap_or_default(), after.1.unwrap_or_default());
                match (
                    pens_before.home != pens_after.home,
                    pens_before.away != pens_after.away,
                ) {
                    (true, false) => Some(Side::Home),
                    (false, true) => Some(Side::Away),
                    _ => None,
                }
            }
            (true, true) => None,
        };
        let goals = matches!(sport, Sport::Football | Sport::Other) && score_before != score_after;
        let kind = match side {
            Some(side) if goals && score_after.get(side) > score_before.get(side) => {
                ChangeKind::Goal
            }
            Some(side) if goals && score_after.get(side) < score_before.get(side) => {
                ChangeKind::GoalDisallowed
            }
            None if goals => ChangeKind::Goal,
            _ => ChangeKind::Quiet,
        };
        Some(ScoreChange { at_ms, side, kind })
    }
}

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
    /// When the headline score last changed (also while the viewer was away: the fan must
    /// notice the goal they missed).
    pub score_changed_ms: Option<u64>,
    /// How it last changed, to announce it on the row.
    pub score_change: Option<ScoreChange>,
    /// The connection generation on which the server last sent a `resync` for this match. A
    /// complete `subscribed` reply on that connection which lacks the match does not drop it:
    /// the server may send a resync instead of a snapshot, before the reply as well as after.
    pub resynced_generation: Option<u64>,
    /// The connection generation on which the viewer sent a resume point for this match. A
    /// complete `subscribed` reply on that connection which neither resumed nor sent the match
    /// keeps it and reports it in [`Outcome::awaiting_resync`]: the server follows such a reply
    /// with a `resync` for every match it could not resume.
    pub resume_sent_generation: Option<u64>,
    /// The spoiler delay, in seconds, of the connection that sent the state held (0: live). A
    /// snapshot sent with another delay replaces the state whatever its `seq`.
    pub delay_secs: u32,
}

impl TrackedMatch {
    /// The score change still shown at `now_ms`, if any. A change is shown as a steady state
    /// (no fade), so the screen is redrawn when it starts and when it ends, and not in between.
    pub fn highlight(&self, now_ms: u64) -> Option<ScoreChange> {
        self.score_change
            .filter(|change| now_ms >= change.at_ms && now_ms < change.until_ms())
    }

    /// The moment of the match the board shows at `now_ms`: as long ago as its spoiler delay.
    /// Running clocks are read at this moment, so that a delayed match's clock matches the
    /// fan's stream rather than the stadium.
    pub fn shown_at_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from(self.delay_secs) * 1_000)
    }

    /// Records a change of the headline score seen at `now_ms`.
    fn score_moved(&mut self, before: (Score, Option<Score>), now_ms: u64) {
        let after = (self.snapshot.score, self.snapshot.shootout);
        if let Some(change) = ScoreChange::between(self.snapshot.sport, before, after, now_ms) {
            self.score_changed_ms = Some(now_ms);
            self.score_change = Some(change);
        }
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

/// Which matches the board shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BoardFilter {
    /// Every followed match.
    #[default]
    All,
    /// Only matches being played now (in play, at a break or suspended).
    Live,
}

/// Matches of one competition (as the snapshots name it, season included), in board order.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    /// The sport.
    pub sport: Sport,
    /// The sport's topic slug, e.g. `football`.
    pub sport_slug: String,
    /// The competition's display name (or its slug made readable when the feed gave none).
    pub competition: String,
    /// The matches, in board order: by kickoff, then topic.
    pub matches: Vec<&'a TrackedMatch>,
}

/// The followed matches.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    matches: BTreeMap<MatchTopic, TrackedMatch>,
    /// The spoiler delay of what the server sends now, in seconds: the connection's, as its
    /// last `subscribed` said (events and resyncs carry none of their own).
    stream_delay_secs: u32,
}

impl Scoreboard {
    /// An empty board.
    pub fn new() -> Scoreboard {
        Scoreboard::default()
    }

    /// Sets the spoiler delay of what the server sends from now on, until a `subscribed` reply
    /// says otherwise: on a new connection, the delay asked for in its first subscribe.
    pub fn set_stream_delay_secs(&mut self, delay_secs: u32) {
        self.stream_delay_secs = delay_secs;
    }

    /// The spoiler delay of what the server sends now, in seconds.
    pub fn stream_delay_secs(&self) -> u32 {
        self.stream_delay_secs
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
                delay_secs,
            } => {
                // Every reply states the connection's delay: what follows it has that delay.
                self.stream_delay_secs = *delay_secs;
                for snapshot in snapshots {
                    if follows.covers(&snapshot.match_topic) {
                        self.take_snapshot(snapshot, generation, now_ms, &mut outcome);
                    }
                }
                for topic in resumed {
                    self.confirm_resumed(topic, generation, &mut outcome);
                }
                let in_reply = |topic: &MatchTopic| {
                    snapshots.iter().any(|s| &s.match_topic == topic) || resumed.contains(topic)
                };
                if *omitted > 0 {
                    // A capped reply after a delay change: a match it left out still shows
                    // another moment (live, when the fan just chose a delay: a spoiler). Ask
                    // for it as of the new delay.
                    for (topic, tracked) in &mut self.matches {
                        if tracked.delay_secs != *delay_secs
                            && topics.iter().any(|t| t.covers(topic.topic()))
                            && !in_reply(topic)
                        {
                            request_repair(tracked, topic, &mut outcome);
                        }
                    }
                }
                if *omitted == 0 {
                    // A complete reply lists every match the server has under these topics,
                    // as a snapshot or as resumed: one we hold that it lacks is gone (a finished
                    // match it evicted, a reset server). Showing it as stale forever would help
                    // no one. Except: a match resynced on this connection is the server's own
                    // word that it has the match, and one we sent a resume point for may be
                    // answered by a resync that comes after the reply.
                    let awaiting = &mut outcome.awaiting_resync;
                    // Neither exception holds for a match of another timeline (a reply to a
                    // delay change): the server's word was about another moment.
                    self.matches.retain(|topic, tracked| {
                        let lacking =
                            topics.iter().any(|t| t.covers(topic.topic())) && !in_reply(topic);
                        if !lacking {
                            return true;
                        }
                        let same_timeline = tracked.delay_secs == *delay_secs;
                        if same_timeline && tracked.resynced_generation == Some(generation) {
                            return true;
                        }
                        if tracked.resume_sent_generation.take() == Some(generation)
                            && same_timeline
                        {
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
                // The events that follow come at this connection's delay.
                tracked.delay_secs = self.stream_delay_secs;
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
                let older = (snapshot.epoch, snapshot.seq) < (current.epoch, current.seq);
                if tracked.delay_secs != self.stream_delay_secs {
                    // Another timeline (the fan changed the spoiler delay): the server's state
                    // as of the new delay replaces ours whatever its seq, and the events that
                    // follow continue from it. Going back in time is not news, and a badge of
                    // the other timeline would be a spoiler: announce only a move forward.
                    tracing::debug!(
                        %topic,
                        from_delay_secs = tracked.delay_secs,
                        to_delay_secs = self.stream_delay_secs,
                        have_seq = current.seq,
                        got_seq = snapshot.seq,
                        "snapshot of another spoiler delay replaces the match"
                    );
                    let before = (current.score, current.shootout);
                    tracked.snapshot = snapshot.clone();
                    tracked.delay_secs = self.stream_delay_secs;
                    if older {
                        tracked.score_change = None;
                        tracked.score_changed_ms = None;
                    } else {
                        tracked.score_moved(before, now_ms);
                    }
                    tracked.confirmed_generation = generation;
                    tracked.repairing = false;
                    outcome.updated.push(topic);
                    return;
                }
                // Epochs only grow (a reset starts a higher one), so `(epoch, seq)` orders
                // histories: a newer epoch wins even with a lower seq.
                if older {
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
                // A score that changed while we were away is announced like a live one: the fan
                // must notice the goal they missed.
                let before = (current.score, current.shootout);
                tracked.snapshot = snapshot.clone();
                tracked.score_moved(before, now_ms);
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
                        score_change: None,
                        resynced_generation: None,
                        resume_sent_generation: None,
                        delay_secs: self.stream_delay_secs,
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
                score_change: None,
                resynced_generation: None,
                resume_sent_generation: None,
                delay_secs: self.stream_delay_secs,
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
                tracked.score_moved(score_before, now_ms);
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

    /// Where each held match can be resumed from after a reconnect that asks for a spoiler
    /// delay of `delay_secs`: the `(epoch, seq)` of the last event applied, live matches first
    /// (they are the ones likely to have missed events), then by topic. A match awaiting a
    /// repair is left out, since its `seq` may have moved past a gap, as is one without any
    /// event yet, and one held at another delay (changed while offline): a fresh snapshot is
    /// what those need.
    pub fn resume_points(&self, delay_secs: u32) -> Vec<(&MatchTopic, ResumePoint)> {
        let mut points: Vec<(&MatchTopic, ResumePoint, bool)> = self
            .matches
            .iter()
            .filter(|(_, tracked)| {
                !tracked.repairing && tracked.snapshot.seq > 0 && tracked.delay_secs == delay_secs
            })
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

    /// The board as drawn: the matches passing `filter` (and `board`), grouped by competition.
    ///
    /// The order is stable while matches are played: groups by sport (football, basketball,
    /// tennis, others), then competition name; matches within a group by kickoff, then topic.
    /// Nothing a match does (scoring, going live, finishing) moves its row, so a click always
    /// lands on the row that was under the pointer. Only a match that appears or disappears
    /// shifts the rows after it.
    pub fn groups(&self, filter: &str, board: BoardFilter) -> Vec<Group<'_>> {
        let mut groups: BTreeMap<(u8, String, String), Vec<&TrackedMatch>> = BTreeMap::new();
        for tracked in self.matches.values() {
            let snapshot = &tracked.snapshot;
            if !matches_filter(snapshot, filter)
                || (board == BoardFilter::Live && !snapshot.status.is_in_progress())
            {
                continue;
            }
            groups
                .entry((
                    sport_rank(snapshot.sport),
                    snapshot.match_topic.sport_slug().to_owned(),
                    competition_name(snapshot),
                ))
                .or_default()
                .push(tracked);
        }
        groups
            .into_iter()
            .map(|((_, sport_slug, competition), mut matches)| {
                matches.sort_by(|a, b| board_order(&a.snapshot, &b.snapshot));
                Group {
                    sport: matches
                        .first()
                        .map_or(Sport::Other, |tracked| tracked.snapshot.sport),
                    sport_slug,
                    competition,
                    matches,
                }
            })
            .collect()
    }

    /// How many matches are being played now.
    pub fn live_count(&self) -> usize {
        self.matches
            .values()
            .filter(|tracked| tracked.snapshot.status.is_in_progress())
            .count()
    }
}

/// Sports in the order fans of a general live-score app expect them.
fn sport_rank(sport: Sport) -> u8 {
    match sport {
        Sport::Football => 0,
        Sport::Basketball => 1,
        Sport::Tennis => 2,
        Sport::Other => 3,
    }
}

/// Rows within a group: by kickoff (matches without one last), then topic. Status plays no part,
/// so a row stays where it is from kickoff to the final whistle.
pub fn board_order(a: &MatchSnapshot, b: &MatchSnapshot) -> std::cmp::Ordering {
    let kickoff = |snapshot: &MatchSnapshot| snapshot.kickoff_ms.unwrap_or(u64::MAX);
    kickoff(a)
        .cmp(&kickoff(b))
        .then_with(|| a.match_topic.cmp(&b.match_topic))
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
            delay_secs: 0,
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
    fn a_goal_is_announced_for_a_minute_a_disallowed_one_too_and_baskets_quietly() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events[..2])), &follows(), 1, 0);
        let outcome = board.apply(&ServerMessage::Event(events[2].clone()), &follows(), 1, 500);
        assert_eq!(outcome.needs_snapshot, vec![]);
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(tracked.snapshot.score.home, 1);
        let badge = tracked.highlight(500).expect("a goal is announced");
        assert_eq!(
            (badge.kind, badge.side),
            (ChangeKind::Goal, Some(Side::Home))
        );
        assert!(tracked.highlight(500 + GOAL_BADGE_MILLIS - 1).is_some());
        assert!(tracked.highlight(500 + GOAL_BADGE_MILLIS).is_none());

        // The goal is ruled out: the score goes down and the row says so.
        let voided = event(
            4,
            EventKind::Correction {
                corrects: 3,
                replacement: None,
            },
        );
        board.apply(&ServerMessage::Event(voided), &follows(), 1, 9_000);
        let tracked = board.get(&topic()).unwrap();
        assert_eq!(tracked.snapshot.score.home, 0);
        let badge = tracked.highlight(9_000).unwrap();
        assert_eq!(
            (badge.kind, badge.side),
            (ChangeKind::GoalDisallowed, Some(Side::Home))
        );

        // Basketball points are routine: a short, quiet highlight.
        let basketball = ScoreChange::between(
            Sport::Basketball,
            (Score::new(10, 8), None),
            (Score::new(12, 8), None),
            100,
        )
        .unwrap();
        assert_eq!(
            (basketball.kind, basketball.until_ms()),
            (ChangeKind::Quiet, 100 + QUIET_HIGHLIGHT_MILLIS)
        );
        // So is a shoot-out kick, credited to the side that kicked.
        let kick = ScoreChange::between(
            Sport::Football,
            (Score::new(3, 3), Some(Score::new(1, 1))),
            (Score::new(3, 3), Some(Score::new(1, 2))),
            100,
        )
        .unwrap();
        assert_eq!(
            (kick.kind, kick.side),
            (ChangeKind::Quiet, Some(Side::Away))
        );
        assert_eq!(
            ScoreChange::between(
                Sport::Football,
                (Score::new(1, 0), None),
                (Score::new(1, 0), None),
                5
            ),
            None
        );
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
            delay_secs: 0,
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
    fn a_skip_the_event_proves_harmless_is_no_gap_to_repair() {
        let events = history();
        let mut board = Scoreboard::new();
        board.apply(&subscribed(snapshot_after(&events)), &follows(), 1, 0);
        let last_critical = board.get(&topic()).unwrap().snapshot.critical_seq;
        // Seqs 6 and 7 were clock readings the server coalesced away for this lagging fan; seq 8
        // says the critical event before it is one the fan has.
        let mut next = event(8, EventKind::Clock { running: false });
        next.prev_critical_seq = Some(last_critical);
        let outcome = board.apply(&ServerMessage::Event(next), &follows(), 1, 0);
        assert_eq!(
            outcome.needs_snapshot,
            vec![],
            "no repair for coalesced readings"
        );
        let tracked = board.get(&topic()).unwrap();
        assert!(!tracked.repairing);
        assert_eq!(tracked.snapshot.seq, 8);
        // A skip over a critical event is still a gap.
        let mut lost = event(10, EventKind::Clock { running: true });
        lost.prev_critical_seq = Some(9);
        let outcome = board.apply(&ServerMessage::Event(lost), &follows(), 1, 0);
        assert_eq!(outcome.needs_snapshot, vec![topic()]);
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
            delay_secs: 0,
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
            delay_secs: 0,
        };
        board.apply(&reply, &follows(), 1, 0);
        let points: Vec<(String, ResumePoint)> = board
            .resume_points(0)
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
        assert_eq!(board.resume_points(0).len(), 1);
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
            delay_secs: 0,
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
    fn groups_by_competition_and_season_and_filter_by_words() {
        let mut board = Scoreboard::new();
        let mut upcoming =
            MatchSnapshot::new(MatchTopic::parse("football/la-liga/rma-fcb").unwrap());
        upcoming.home = Team::new("Real Madrid", "RMA");
        upcoming.away = Team::new("Barcelona", "FCB");
        let mut earlier_season = snapshot_after(&history());
        earlier_season.match_topic =
            MatchTopic::parse("football/premier-league/ars-che-1999").unwrap();
        earlier_season.competition = Some("Premier League 1998-99".into());
        let reply = ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![snapshot_after(&history()), upcoming, earlier_season],
            omitted: 0,
            resumed: Vec::new(),
            delay_secs: 0,
        };
        board.apply(&reply, &follows(), 1, 0);

        let groups = board.groups("", BoardFilter::All);
        let names: Vec<&str> = groups.iter().map(|g| g.competition.as_str()).collect();
        assert_eq!(
            names,
            vec!["La Liga", "Premier League", "Premier League 1998-99"],
            "one group per competition and season, slugs made readable"
        );
        assert_eq!(board.live_count(), 2);
        let live = board.groups("", BoardFilter::Live);
        assert_eq!(live.len(), 2);

        let filtered = board.groups("madrid", BoardFilter::All);
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].matches[0].snapshot.home.name, "Real Madrid");
        assert_eq!(
            board.groups("ARS  1998", BoardFilter::All).len(),
            1,
            "words, any case"
        );
        assert!(
            board.groups("ars madrid", BoardFilter::All).is_empty(),
            "every word must match"
        );
    }

    #[test]
    fn rows_keep_their_order_whatever_the_matches_do() {
        // Three matches of one competition: their order depends on kickoff and topic only, so
        // going live, scoring, finishing or being corrected never moves a row under the cursor.
        let mut board = Scoreboard::new();
        let mut snapshots = Vec::new();
        for (slug, kickoff_ms) in [("c-d", 2_000), ("a-b", 1_000), ("e-f", 2_000)] {
            let mut snapshot =
                MatchSnapshot::new(MatchTopic::parse(&format!("football/cup/{slug}")).unwrap());
            snapshot.kickoff_ms = Some(kickoff_ms);
            snapshot.competition = Some("Cup".into());
            snapshot.seq = 1;
            snapshots.push(snapshot);
        }
        board.apply(
            &ServerMessage::Subscribed {
                topics: vec![Topic::parse("football").unwrap()],
                snapshots: snapshots.clone(),
                omitted: 0,
                resumed: Vec::new(),
                delay_secs: 0,
            },
            &follows(),
            1,
            0,
        );
        let order = |board: &Scoreboard| -> Vec<String> {
            board.groups("", BoardFilter::All)[0]
                .matches
                .iter()
                .map(|tracked| tracked.snapshot.match_topic.match_slug().to_owned())
                .collect()
        };
        let expected = vec!["a-b", "c-d", "e-f"];
        assert_eq!(order(&board), expected);
        // The last match kicks off and scores, the first finishes, the middle one is suspended.
        let statuses = [
            ("e-f", EventKind::MatchStarted),
            ("e-f", goal(Side::Away)),
            ("a-b", EventKind::MatchEnded { winner: None }),
            (
                "c-d",
                EventKind::StatusChanged {
                    status: scoreline_protocol::MatchStatus::Suspended,
                    reason: None,
                },
            ),
        ];
        let mut seqs = std::collections::HashMap::new();
        for (slug, kind) in statuses {
            let seq = seqs.entry(slug).or_insert(1_u64);
            *seq += 1;
            let event = ScoreEvent {
                match_topic: MatchTopic::parse(&format!("football/cup/{slug}")).unwrap(),
                epoch: 0,
                seq: *seq,
                ts_ms: 5_000,
                clock_secs: None,
                prev_critical_seq: None,
                kind,
            };
            board.apply(&ServerMessage::Event(event), &follows(), 1, 5_000);
            assert_eq!(order(&board), expected);
        }
    }
}
