//! The match snapshot: everything a fan needs to see a match at once, as of one `seq`.
//!
//! Snapshots are what a client receives when it subscribes and what the service stores in Redis;
//! events then move them forward through [`crate::reducer::apply`].

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::event::{EventKind, MatchStatus, Side, Team};
use crate::sport::{Sport, TennisFormat};
use crate::topic::MatchTopic;

/// How many key events a snapshot keeps; older ones are dropped so a snapshot stays small. A whole
/// football or basketball match fits; tennis keeps only the points that won a game.
pub const TIMELINE_CAP: usize = 256;

/// How many distinct statistics a snapshot keeps, so a feed cannot grow a snapshot without bound.
pub const STATS_CAP: usize = 32;

/// A pair of counts, one per side: goals, points, sets, games.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Score {
    /// Home side's count.
    pub home: u32,
    /// Away side's count.
    pub away: u32,
}

impl Score {
    /// A score from two counts.
    pub fn new(home: u32, away: u32) -> Score {
        Score { home, away }
    }

    /// One side's count.
    pub fn get(&self, side: Side) -> u32 {
        match side {
            Side::Home => self.home,
            Side::Away => self.away,
        }
    }

    /// Mutable access to one side's count.
    pub fn get_mut(&mut self, side: Side) -> &mut u32 {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }

    /// The side ahead, if either is.
    pub fn leader(&self) -> Option<Side> {
        match self.home.cmp(&self.away) {
            std::cmp::Ordering::Greater => Some(Side::Home),
            std::cmp::Ordering::Less => Some(Side::Away),
            std::cmp::Ordering::Equal => None,
        }
    }
}

/// What was scored within one period: goals per half, points per quarter, games per set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodScore {
    /// Period number from 1.
    pub period: u8,
    /// Home side's count in this period.
    pub home: u32,
    /// Away side's count in this period.
    pub away: u32,
    /// Tennis: the tie-break points, when the set went to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiebreak: Option<Score>,
}

impl PeriodScore {
    /// The period's counts as a [`Score`].
    pub fn score(&self) -> Score {
        Score::new(self.home, self.away)
    }
}

/// Tennis: the points of the game in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TennisGame {
    /// Points won by the home player in this game.
    pub home: u16,
    /// Points won by the away player in this game.
    pub away: u16,
    /// Whether this game is a tie-break (points are then shown as numbers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tiebreak: bool,
}

impl TennisGame {
    /// Points won by `side` in this game.
    pub fn points(&self, side: Side) -> u16 {
        match side {
            Side::Home => self.home,
            Side::Away => self.away,
        }
    }

    /// How the umpire calls `side`'s points: `0`, `15`, `30`, `40`, `AD`, or a tie-break number.
    pub fn call(&self, side: Side) -> String {
        let (mine, theirs) = (self.points(side), self.points(side.opponent()));
        if self.tiebreak {
            return mine.to_string();
        }
        match mine {
            0 => "0".to_owned(),
            1 => "15".to_owned(),
            2 => "30".to_owned(),
            _ if mine > theirs && theirs >= 3 => "AD".to_owned(),
            _ => "40".to_owned(),
        }
    }
}

/// Football discipline for one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cards {
    /// Yellow cards shown, second yellows included.
    pub yellow: u32,
    /// Players sent off, by a straight red or a second yellow.
    pub red: u32,
}

/// Cards of both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardTally {
    /// Home side's cards.
    pub home: Cards,
    /// Away side's cards.
    pub away: Cards,
}

impl CardTally {
    /// Mutable access to one side's cards.
    pub fn get_mut(&mut self, side: Side) -> &mut Cards {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }

    fn is_empty(&self) -> bool {
        *self == CardTally::default()
    }
}

/// The game clock as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// The reading, in seconds, at `at_ms`.
    pub secs: u32,
    /// Whether it was running then; if so, a display extrapolates from `at_ms`.
    pub running: bool,
    /// When the reading was taken, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Clock {
    /// The reading at `now_ms`: extrapolated while running, frozen otherwise.
    pub fn secs_at(&self, now_ms: u64) -> u32 {
        if self.running {
            let elapsed_secs = now_ms.saturating_sub(self.at_ms) / 1000;
            self.secs
                .saturating_add(u32::try_from(elapsed_secs).unwrap_or(u32::MAX))
        } else {
            self.secs
        }
    }
}

/// One key event as kept in a snapshot's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The event's `seq`; corrections refer to it.
    pub seq: u64,
    /// When it happened, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The period it happened in (0 before the start). Named `in_period` on the wire because the
    /// flattened event may have a `period` of its own (`period_started`).
    #[serde(rename = "in_period")]
    pub period: u8,
    /// The game clock when it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_secs: Option<u32>,
    /// What happened (after any correction).
    #[serde(flatten)]
    pub kind: EventKind,
    /// A later correction voided it: it no longer counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub voided: bool,
    /// A later correction changed it; `kind` holds the corrected version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub amended: bool,
}

/// The state of one match at one `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchSnapshot {
    /// The match.
    #[serde(rename = "match")]
    pub match_topic: MatchTopic,
    /// The sport, from the topic's first segment.
    pub sport: Sport,
    /// The history `seq` counts in.
    pub epoch: u64,
    /// The last event applied; 0 when none has been.
    pub seq: u64,
    /// The `seq` of the last critical event applied (anything but `clock` and `stat`); 0 when
    /// none has been. The next event's `prev_critical_seq` names it, so a client can prove that a
    /// seq it skipped held only coalesced readings.
    #[serde(default)]
    pub critical_seq: u64,
    /// Home team or first-named player.
    pub home: Team,
    /// Away team or second-named player.
    pub away: Team,
    /// Planned start, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kickoff_ms: Option<u64>,
    /// Display name of the competition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competition: Option<String>,
    /// Where it is played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Regular period length in seconds, when not the sport's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_secs: Option<u32>,
    /// Tennis format, when announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tennis: Option<TennisFormat>,
    /// Scheduled, live, at a break, finished...
    pub status: MatchStatus,
    /// The current (or last) period; 0 before the start.
    pub period: u8,
    /// The game clock, for sports that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<Clock>,
    /// The headline score: goals, points, or sets in tennis.
    pub score: Score,
    /// Score per period: halves, quarters, or games per set in tennis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<PeriodScore>,
    /// Tennis: the game in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game: Option<TennisGame>,
    /// Football: the penalty shoot-out, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shootout: Option<Score>,
    /// Football: cards per side.
    #[serde(default, skip_serializing_if = "CardTally::is_empty")]
    pub cards: CardTally,
    /// Latest value of each running statistic (at most [`STATS_CAP`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, Score>,
    /// The winner, once the match is over and has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Side>,
    /// Key events, oldest first, at most [`TIMELINE_CAP`]. A deque, because a full timeline drops
    /// its oldest entry at every event.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub timeline: VecDeque<TimelineEntry>,
    /// Time of the last event applied, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// The server knows a newer history of this match that it could not read in full, so this
    /// is the last state it could prove, which may be out of date. Clients should say so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl MatchSnapshot {
    /// The state of a match nothing is known about yet.
    pub fn new(match_topic: MatchTopic) -> MatchSnapshot {
        MatchSnapshot {
            sport: Sport::from_slug(match_topic.sport_slug()),
            match_topic,
            epoch: 0,
            seq: 0,
            critical_seq: 0,
            home: Team::default(),
            away: Team::default(),
            kickoff_ms: None,
            competition: None,
            venue: None,
            period_secs: None,
            tennis: None,
            status: MatchStatus::Scheduled,
            period: 0,
            clock: None,
            score: Score::default(),
            periods: Vec::new(),
            game: None,
            shootout: None,
            cards: CardTally::default(),
            stats: BTreeMap::new(),
            winner: None,
            timeline: VecDeque::new(),
            updated_ms: 0,
            stale: false,
        }
    }

    /// The clock as a fan reads it at `now_ms`, e.g. `67'` or `04:12`; `None` without a clock.
    pub fn clock_display(&self, now_ms: u64) -> Option<String> {
        let clock = self.clock?;
        let secs = clock.secs_at(now_ms);
        Some(self.sport.format_clock(self.period, secs, self.period_secs))
    }

    /// The snapshot as compact JSON (the form stored in Redis and sent to clients).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string map keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ScoreEvent, apply};

    #[test]
    fn a_snapshot_with_period_events_reads_back_identically() {
        let topic = MatchTopic::parse("football/pl/a-b").unwrap();
        let mut snapshot = MatchSnapshot::new(topic.clone());
        for (seq, kind) in [
            (1, EventKind::PeriodStarted { period: 1 }),
            (2, EventKind::PeriodEnded { period: 1 }),
        ] {
            let event = ScoreEvent {
                ts_ms: seq,
                ..crate::test_support::event(topic.as_str(), seq, kind)
            };
            apply(&mut snapshot, &event).unwrap();
        }
        let text = snapshot.to_json();
        assert!(
            text.contains(r#""in_period":1,"kind":"period_started","period":1"#),
            "{text}"
        );
        let read_back: MatchSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(read_back, snapshot);
    }
}
