//! The match reducer: `apply(snapshot, event)` moves a snapshot forward by one event.
//!
//! It is the single definition of how a match's state follows from its events; the service, the
//! viewer and the replayer's validator all call it, so they cannot disagree on a score. `apply` is
//! all-or-nothing: when it returns an error the snapshot is untouched.

use std::ops::Range;

use crate::event::{CardColour, EventKind, MatchStatus, ScoreEvent, Side};
use crate::snapshot::{
    Clock, MatchSnapshot, PeriodScore, STATS_CAP, Score, TIMELINE_CAP, TennisGame, TimelineEntry,
};
use crate::sport::Sport;
use crate::topic::MatchTopic;

/// The highest period number accepted: enough for any number of overtimes, small enough to catch
/// garbage.
pub const MAX_PERIOD: u8 = 20;

/// What applying an event did, beyond changing the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// `seq` values skipped between the snapshot and this event that may have held critical
    /// events: events that were never seen. The state is still moved forward; the caller decides
    /// whether to repair the gap. A skip the event proves harmless (its `prev_critical_seq` is at
    /// or before the snapshot's seq: only coalesced clock/stat readings were skipped) is in
    /// `skipped` instead.
    pub missed: Option<Range<u64>>,
    /// `seq` values skipped that held only coalesced `clock`/`stat` events, as the event's
    /// `prev_critical_seq` proves: nothing that changes a score was lost.
    pub skipped: Option<Range<u64>>,
}

/// Why an event could not be applied. The snapshot is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The event names another match.
    #[error("event for {got} applied to snapshot of {expected}")]
    WrongMatch {
        /// The snapshot's match.
        expected: MatchTopic,
        /// The event's match.
        got: MatchTopic,
    },
    /// The event's `seq` is not after the snapshot's: a duplicate or an out-of-order event.
    #[error("seq {got} is not after the current seq {current} (duplicate or out of order)")]
    NotNewer {
        /// The snapshot's seq.
        current: u64,
        /// The event's seq.
        got: u64,
    },
    /// The event belongs to an older history of the match.
    #[error("epoch {got} is older than the current epoch {current}")]
    StaleEpoch {
        /// The snapshot's epoch.
        current: u64,
        /// The event's epoch.
        got: u64,
    },
    /// The match's history was reset: the snapshot must be rebuilt from the new epoch.
    #[error("epoch changed from {current} to {got}: the match history was reset")]
    EpochChanged {
        /// The snapshot's epoch.
        current: u64,
        /// The event's epoch.
        got: u64,
    },
    /// The event does not exist in this sport, e.g. a tennis point in football.
    #[error("a {kind} event does not belong in {sport:?}")]
    WrongSport {
        /// The event kind's tag.
        kind: &'static str,
        /// The match's sport.
        sport: Sport,
    },
    /// Period 0 or beyond [`MAX_PERIOD`].
    #[error("period {0} is out of range 1..={MAX_PERIOD}")]
    InvalidPeriod(u8),
    /// A scoring play worth other than 1, 2 or 3 points.
    #[error("a scoring play is worth 1, 2 or 3 points, not {0}")]
    InvalidPoints(u8),
    /// A scoring event after the match was over or decided.
    #[error("the match is over; no more {0} events")]
    MatchOver(&'static str),
    /// A correction names a seq the timeline does not hold (never seen, or already dropped).
    #[error("correction names seq {0}, which is not in the timeline")]
    UnknownCorrectionTarget(u64),
    /// A correction names an event that cannot be amended, or proposes such a replacement.
    #[error("a {0} event cannot be corrected")]
    NotCorrectable(&'static str),
    /// A correction names an event that an earlier correction already voided.
    #[error("seq {0} was already voided")]
    AlreadyVoided(u64),
    /// A new statistic beyond [`STATS_CAP`].
    #[error("too many distinct statistics (at most {STATS_CAP})")]
    TooManyStats,
}

/// Applies one event to a snapshot: checks it belongs here and comes next, then moves the state
/// forward. On error the snapshot is untouched.
pub fn apply(snapshot: &mut MatchSnapshot, event: &ScoreEvent) -> Result<Applied, ApplyError> {
    check_envelope(snapshot, event)?;
    check_kind(snapshot, &event.kind)?;
    let gap = (event.seq > snapshot.seq + 1).then(|| snapshot.seq + 1..event.seq);
    let harmless = event
        .prev_critical_seq
        .is_some_and(|previous| previous <= snapshot.seq && snapshot.seq > 0);
    let (missed, skipped) = if harmless { (None, gap) } else { (gap, None) };

    if snapshot.seq == 0 {
        snapshot.epoch = event.epoch;
    }
    snapshot.seq = event.seq;
    if event.kind.is_critical() {
        snapshot.critical_seq = event.seq;
    }
    snapshot.updated_ms = snapshot.updated_ms.max(event.ts_ms);
    if let Some(secs) = event.clock_secs {
        let running = snapshot.clock.is_some_and(|clock| clock.running);
        snapshot.clock = Some(Clock {
            secs,
            running,
            at_ms: event.ts_ms,
        });
    }
    let keep_in_timeline = change(snapshot, event);
    if keep_in_timeline {
        if snapshot.timeline.len() == TIMELINE_CAP {
            snapshot.timeline.pop_front();
        }
        snapshot.timeline.push_back(TimelineEntry {
            seq: event.seq,
            ts_ms: event.ts_ms,
            period: snapshot.period,
            clock_secs: event.clock_secs,
            kind: event.kind.clone(),
            voided: false,
            amended: false,
        });
    }
    Ok(Applied { missed, skipped })
}

fn check_envelope(snapshot: &MatchSnapshot, event: &ScoreEvent) -> Result<(), ApplyError> {
    if event.match_topic != snapshot.match_topic {
        return Err(ApplyError::WrongMatch {
            expected: snapshot.match_topic.clone(),
            got: event.match_topic.clone(),
        });
    }
    if snapshot.seq > 0 {
        if event.epoch < snapshot.epoch {
            return Err(ApplyError::StaleEpoch {
                current: snapshot.epoch,
                got: event.epoch,
            });
        }
        if event.epoch > snapshot.epoch {
            return Err(ApplyError::EpochChanged {
                current: snapshot.epoch,
                got: event.epoch,
            });
        }
    }
    if event.seq <= snapshot.seq {
        return Err(ApplyError::NotNewer {
            current: snapshot.seq,
            got: event.seq,
        });
    }
    Ok(())
}

/// Everything that can make an event invalid for this snapshot, checked before any change.
fn check_kind(snapshot: &MatchSnapshot, kind: &EventKind) -> Result<(), ApplyError> {
    check_values(snapshot.sport, kind)?;
    match kind {
        EventKind::Goal { .. }
        | EventKind::ShootoutKick { .. }
        | EventKind::Points { .. }
        | EventKind::Point { .. }
            if snapshot.status.is_over() || tennis_decided(snapshot) =>
        {
            Err(ApplyError::MatchOver(kind.name()))
        }
        EventKind::Stat { name, .. }
            if snapshot.stats.len() >= STATS_CAP && !snapshot.stats.contains_key(name) =>
        {
            Err(ApplyError::TooManyStats)
        }
        EventKind::Correction {
            corrects,
            replacement,
        } => {
            let entry = snapshot
                .timeline
                .iter()
                .find(|entry| entry.seq == *corrects)
                .ok_or(ApplyError::UnknownCorrectionTarget(*corrects))?;
            if entry.voided {
                return Err(ApplyError::AlreadyVoided(*corrects));
            }
            if !is_correctable(&entry.kind) {
                return Err(ApplyError::NotCorrectable(entry.kind.name()));
            }
            if let Some(replacement) = replacement {
                if !is_correctable(replacement) {
                    return Err(ApplyError::NotCorrectable(replacement.name()));
                }
                // The replacement stands for an event the match already had, so it is checked for
                // its sport and values only: a scorer can be corrected after the final whistle.
                check_values(snapshot.sport, replacement)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the event belongs in this sport and its numbers are in range, whatever the state.
fn check_values(sport: Sport, kind: &EventKind) -> Result<(), ApplyError> {
    let allowed = match kind {
        EventKind::Goal { .. } | EventKind::ShootoutKick { .. } | EventKind::Card { .. } => {
            matches!(sport, Sport::Football | Sport::Other)
        }
        EventKind::Points { .. } => matches!(sport, Sport::Basketball | Sport::Other),
        EventKind::Point { .. } => sport == Sport::Tennis,
        _ => true,
    };
    if !allowed {
        return Err(ApplyError::WrongSport {
            kind: kind.name(),
            sport,
        });
    }
    match kind {
        EventKind::PeriodStarted { period } | EventKind::PeriodEnded { period }
            if *period == 0 || *period > MAX_PERIOD =>
        {
            Err(ApplyError::InvalidPeriod(*period))
        }
        EventKind::Points { points, .. } if !(1..=3).contains(points) => {
            Err(ApplyError::InvalidPoints(*points))
        }
        _ => Ok(()),
    }
}

/// Events whose effect on the state can be undone exactly, so a correction can amend them.
/// Tennis points are not: a point changes games and sets in ways that depend on every point after.
fn is_correctable(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Goal { .. }
            | EventKind::ShootoutKick { .. }
            | EventKind::Points { .. }
            | EventKind::Card { .. }
            | EventKind::Substitution { .. }
    )
}

fn tennis_decided(snapshot: &MatchSnapshot) -> bool {
    snapshot.sport == Sport::Tennis && {
        let needed = snapshot.tennis.unwrap_or_default().sets_to_win();
        snapshot.score.home >= needed || snapshot.score.away >= needed
    }
}

/// Applies the event's change; returns whether it belongs in the timeline.
fn change(snapshot: &mut MatchSnapshot, event: &ScoreEvent) -> bool {
    match &event.kind {
        EventKind::MatchScheduled {
            home,
            away,
            kickoff_ms,
            competition,
            venue,
            period_secs,
            tennis,
        } => {
            snapshot.home = home.clone();
            snapshot.away = away.clone();
            snapshot.kickoff_ms = Some(*kickoff_ms);
            snapshot.competition = competition.clone();
            snapshot.venue = venue.clone();
            snapshot.period_secs = *period_secs;
            snapshot.tennis = *tennis;
            false
        }
        EventKind::MatchStarted => {
            snapshot.status = MatchStatus::Live;
            true
        }
        EventKind::PeriodStarted { period } => {
            snapshot.status = MatchStatus::Live;
            snapshot.period = *period;
            period_score(snapshot, *period);
            if snapshot.sport.default_period_secs().is_some() {
                let secs = event
                    .clock_secs
                    .unwrap_or_else(|| snapshot.sport.period_start_secs(*period));
                snapshot.clock = Some(Clock {
                    secs,
                    running: true,
                    at_ms: event.ts_ms,
                });
            }
            true
        }
        EventKind::PeriodEnded { .. } => {
            snapshot.status = MatchStatus::Break;
            stop_clock(snapshot, event.ts_ms);
            true
        }
        EventKind::Point { side } => tennis_point(snapshot, *side),
        EventKind::Goal { .. }
        | EventKind::ShootoutKick { .. }
        | EventKind::Points { .. }
        | EventKind::Card { .. }
        | EventKind::Substitution { .. } => {
            if snapshot.status == MatchStatus::Scheduled {
                snapshot.status = MatchStatus::Live;
            }
            let period = snapshot.period;
            credit(snapshot, &event.kind, period, true);
            true
        }
        EventKind::StatusChanged { status, .. } => {
            snapshot.status = *status;
            if *status != MatchStatus::Live {
                stop_clock(snapshot, event.ts_ms);
            }
            if *status == MatchStatus::Finished {
                snapshot.winner = derived_winner(snapshot);
            }
            true
        }
        EventKind::Clock { running } => {
            let secs = event
                .clock_secs
                .unwrap_or_else(|| snapshot.clock.map_or(0, |clock| clock.secs_at(event.ts_ms)));
            snapshot.clock = Some(Clock {
                secs,
                running: *running,
                at_ms: event.ts_ms,
            });
            false
        }
        EventKind::Stat { name, home, away } => {
            snapshot
                .stats
                .insert(name.clone(), Score::new(*home, *away));
            false
        }
        EventKind::MatchEnded { winner } => {
            snapshot.status = MatchStatus::Finished;
            stop_clock(snapshot, event.ts_ms);
            snapshot.game = None;
            snapshot.winner = winner.or_else(|| derived_winner(snapshot));
            true
        }
        EventKind::Correction {
            corrects,
            replacement,
        } => {
            correct(snapshot, *corrects, replacement.as_deref());
            true
        }
    }
}

fn stop_clock(snapshot: &mut MatchSnapshot, at_ms: u64) {
    if let Some(clock) = &mut snapshot.clock
        && clock.running
    {
        *clock = Clock {
            secs: clock.secs_at(at_ms),
            running: false,
            at_ms,
        };
    }
}

/// The score entry for `period`, created if missing. Period 0 (a score before any period started)
/// counts in period 1.
fn period_score(snapshot: &mut MatchSnapshot, period: u8) -> &mut PeriodScore {
    let period = period.max(1);
    let index = match snapshot
        .periods
        .iter()
        .position(|entry| entry.period == period)
    {
        Some(index) => index,
        None => {
            snapshot.periods.push(PeriodScore {
                period,
                ..PeriodScore::default()
            });
            snapshot.periods.sort_by_key(|entry| entry.period);
            snapshot
                .periods
                .iter()
                .position(|entry| entry.period == period)
                .unwrap_or(0)
        }
    };
    &mut snapshot.periods[index]
}

fn add(count: &mut u32, amount: u32, adding: bool) {
    *count = if adding {
        count.saturating_add(amount)
    } else {
        count.saturating_sub(amount)
    };
}

/// Adds (or, for a correction, removes) the effect of a correctable event scored in `period`.
fn credit(snapshot: &mut MatchSnapshot, kind: &EventKind, period: u8, adding: bool) {
    match kind {
        EventKind::Goal { side, .. } => {
            add(snapshot.score.get_mut(*side), 1, adding);
            add(period_score(snapshot, period).score_mut(*side), 1, adding);
        }
        EventKind::Points { side, points, .. } => {
            let points = u32::from(*points);
            add(snapshot.score.get_mut(*side), points, adding);
            add(
                period_score(snapshot, period).score_mut(*side),
                points,
                adding,
            );
        }
        EventKind::ShootoutKick { side, scored, .. } => {
            let shootout = snapshot.shootout.get_or_insert_with(Score::default);
            add(shootout.get_mut(*side), u32::from(*scored), adding);
        }
        EventKind::Card { side, card, .. } => {
            let cards = snapshot.cards.get_mut(*side);
            match card {
                CardColour::Yellow => add(&mut cards.yellow, 1, adding),
                CardColour::SecondYellow => {
                    add(&mut cards.yellow, 1, adding);
                    add(&mut cards.red, 1, adding);
                }
                CardColour::Red => add(&mut cards.red, 1, adding),
            }
        }
        _ => {}
    }
}

impl PeriodScore {
    fn score_mut(&mut self, side: Side) -> &mut u32 {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }
}

/// Undoes the corrected event's effect and applies its replacement in the same period. The checks
/// in [`check_kind`] guarantee the target exists, counts, and can be undone.
fn correct(snapshot: &mut MatchSnapshot, corrects: u64, replacement: Option<&EventKind>) {
    let Some(index) = snapshot
        .timeline
        .iter()
        .position(|entry| entry.seq == corrects)
    else {
        return;
    };
    let original = snapshot.timeline[index].kind.clone();
    let period = snapshot.timeline[index].period;
    credit(snapshot, &original, period, false);
    match replacement {
        Some(replacement) => {
            credit(snapshot, replacement, period, true);
            let entry = &mut snapshot.timeline[index];
            entry.kind = replacement.clone();
            entry.amended = true;
        }
        None => snapshot.timeline[index].voided = true,
    }
    if snapshot.status == MatchStatus::Finished {
        snapshot.winner = derived_winner(snapshot);
    }
}

/// The winner as the score tells it: goals then shoot-out, points, or sets.
fn derived_winner(snapshot: &MatchSnapshot) -> Option<Side> {
    snapshot
        .score
        .leader()
        .or_else(|| snapshot.shootout.and_then(|shootout| shootout.leader()))
}

/// Scores one tennis point: the game, then the set, then the match. Returns whether the point won
/// a game (those points are kept in the timeline; the others are too many to keep).
fn tennis_point(snapshot: &mut MatchSnapshot, side: Side) -> bool {
    snapshot.status = MatchStatus::Live;
    let format = snapshot.tennis.unwrap_or_default();
    let set_over = |set: &PeriodScore| {
        set.tiebreak.is_some() || format.set_winner(set.period, set.score()).is_some()
    };
    if snapshot.periods.last().is_none_or(set_over) {
        let number = snapshot
            .periods
            .last()
            .map_or(1, |set| set.period.saturating_add(1));
        snapshot.periods.push(PeriodScore {
            period: number,
            ..PeriodScore::default()
        });
        snapshot.period = number;
    }
    let set_number = snapshot.periods.last().map_or(1, |set| set.period);
    let mut game = snapshot.game.unwrap_or_default();
    *game.points_mut(side) += 1;
    let (mine, theirs) = (game.points(side), game.points(side.opponent()));
    let target = if game.tiebreak {
        format.tiebreak_points(set_number)
    } else {
        4
    };
    if mine < target || mine < theirs + 2 {
        snapshot.game = Some(game);
        return false;
    }
    // The game (or tie-break) is won.
    snapshot.game = None;
    let Some(set) = snapshot.periods.last_mut() else {
        return true;
    };
    *set.score_mut(side) += 1;
    if game.tiebreak {
        set.tiebreak = Some(Score::new(u32::from(game.home), u32::from(game.away)));
    }
    if format.set_winner(set_number, set.score()) == Some(side) {
        *snapshot.score.get_mut(side) += 1;
    } else if format
        .tiebreak_at_games(set_number)
        .is_some_and(|at| set.home == at && set.away == at)
    {
        snapshot.game = Some(TennisGame {
            tiebreak: true,
            ..TennisGame::default()
        });
    }
    true
}

impl TennisGame {
    fn points_mut(&mut self, side: Side) -> &mut u16 {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }
}
