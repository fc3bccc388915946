//! Sports and their rules that the reducer and the displays need: how periods are named, how long
//! they last, how a clock reads, and the tennis scoring format.

use serde::{Deserialize, Serialize};

use crate::event::Side;
use crate::snapshot::Score;

/// The sport of a match, taken from the first segment of its topic.
///
/// Sports the reducer knows score by their own rules; any other slug is [`Sport::Other`], which
/// accepts goals and points and keeps a plain score, so a new sport can be fed before it is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sport {
    /// Association football: goals, cards, substitutions, halves, extra time, shoot-outs.
    Football,
    /// Basketball: 1/2/3-point plays in quarters and overtimes.
    Basketball,
    /// Tennis: points, games, sets and tie-breaks, scored point by point.
    Tennis,
    /// Any other sport: a plain score.
    #[serde(other)]
    Other,
}

impl Sport {
    /// The sport a topic's first segment names.
    pub fn from_slug(slug: &str) -> Sport {
        match slug {
            "football" | "soccer" => Sport::Football,
            "basketball" => Sport::Basketball,
            "tennis" => Sport::Tennis,
            _ => Sport::Other,
        }
    }

    /// Regular length of one period in seconds, where the sport has a game clock.
    pub fn default_period_secs(self) -> Option<u32> {
        match self {
            Sport::Football => Some(45 * 60),
            Sport::Basketball => Some(12 * 60),
            Sport::Tennis | Sport::Other => None,
        }
    }

    /// The clock reading (seconds) at which period `period` starts.
    ///
    /// Football clocks run on from kickoff (the second half starts at 45:00, extra time at 90:00 and
    /// 105:00); basketball clocks restart every period.
    pub fn period_start_secs(self, period: u8) -> u32 {
        match self {
            Sport::Football => match period {
                0 | 1 => 0,
                2 => 45 * 60,
                3 => 90 * 60,
                _ => 105 * 60,
            },
            _ => 0,
        }
    }

    /// Whether a game clock runs in `period`. Every period of a sport with a clock has one, except
    /// a football penalty shoot-out (period 5), which is played kick by kick: a clock there would
    /// read on from the end of extra time ("106'") as if the match were still being played.
    pub fn has_clock_in(self, period: u8) -> bool {
        !(self == Sport::Football && period >= 5)
    }

    /// A short human name for period `period` of this sport, e.g. `2nd half`, `Q3`, `OT1`, `Set 2`.
    pub fn period_name(self, period: u8) -> String {
        match (self, period) {
            (_, 0) => "pre-match".to_owned(),
            (Sport::Football, 1) => "1st half".to_owned(),
            (Sport::Football, 2) => "2nd half".to_owned(),
            (Sport::Football, 3) => "Extra time 1".to_owned(),
            (Sport::Football, 4) => "Extra time 2".to_owned(),
            (Sport::Football, _) => "Penalties".to_owned(),
            (Sport::Basketball, 1..=4) => format!("Q{period}"),
            (Sport::Basketball, _) => format!("OT{}", period - 4),
            (Sport::Tennis, _) => format!("Set {period}"),
            (Sport::Other, _) => format!("Period {period}"),
        }
    }

    /// How a fan reads the clock: football `67'` or `45+2'`, basketball time left in the period.
    pub fn format_clock(self, period: u8, clock_secs: u32, period_secs: Option<u32>) -> String {
        match self {
            Sport::Football => {
                let minute = clock_secs / 60 + 1;
                let period_end_minute = match period {
                    1 => 45,
                    2 => 90,
                    3 => 105,
                    _ => 120,
                };
                if minute > period_end_minute {
                    format!("{period_end_minute}+{}'", minute - period_end_minute)
                } else {
                    format!("{minute}'")
                }
            }
            Sport::Basketball => {
                let length = period_secs.unwrap_or(12 * 60);
                let length = if period > 4 { 5 * 60 } else { length };
                let left = length.saturating_sub(clock_secs);
                format!("{:02}:{:02}", left / 60, left % 60)
            }
            Sport::Tennis | Sport::Other => {
                format!("{}:{:02}", clock_secs / 60, clock_secs % 60)
            }
        }
    }
}

/// How a tennis match is decided; sent with the schedule so the reducer scores by the right rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TennisFormat {
    /// Sets in the match: 3 or 5.
    pub best_of: u8,
    /// How the deciding set ends at 6–6.
    #[serde(default)]
    pub final_set: FinalSet,
    /// Who serves the first game (the toss is won before the first point), when the feed knows:
    /// who serves any later point follows from it by the rules ([`TennisFormat::server`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_server: Option<Side>,
}

impl Default for TennisFormat {
    fn default() -> Self {
        TennisFormat {
            best_of: 3,
            final_set: FinalSet::TiebreakTo10,
            first_server: None,
        }
    }
}

impl TennisFormat {
    /// Who serves the next point after `games_played` games of the match (a tie-break counts as
    /// one game) and, within a tie-break, `tiebreak_points_played` points of it; `None` when the
    /// first server is not known. Service changes after every game; in a tie-break the player
    /// whose turn it is serves the first point, then service changes after every two points.
    pub fn server(self, games_played: u32, tiebreak_points_played: Option<u32>) -> Option<Side> {
        let first = self.first_server?;
        let game_server = if games_played.is_multiple_of(2) {
            first
        } else {
            first.opponent()
        };
        Some(match tiebreak_points_played {
            Some(points) if points.div_ceil(2) % 2 == 1 => game_server.opponent(),
            _ => game_server,
        })
    }

    /// Sets a player needs to win the match.
    pub fn sets_to_win(self) -> u32 {
        u32::from(self.best_of / 2 + 1)
    }

    /// Whether set number `set` (from 1) is the deciding set.
    pub fn is_deciding_set(self, set: u8) -> bool {
        set == self.best_of
    }

    /// The games-all score at which set `set` goes to a tie-break; `None` when it is played out
    /// until one player leads by two games.
    pub fn tiebreak_at_games(self, set: u8) -> Option<u32> {
        if !self.is_deciding_set(set) {
            return Some(6);
        }
        match self.final_set {
            FinalSet::TiebreakTo7 | FinalSet::TiebreakTo10 => Some(6),
            FinalSet::TiebreakAt12 => Some(12),
            FinalSet::Advantage => None,
        }
    }

    /// Points that win the tie-break of set `set` (with a two-point lead).
    pub fn tiebreak_points(self, set: u8) -> u16 {
        if self.is_deciding_set(set) && self.final_set == FinalSet::TiebreakTo10 {
            10
        } else {
            7
        }
    }

    /// Who has won set `set` with these games: six (or more) with a two-game lead, or one more
    /// than the tie-break score, which only a tie-break can produce.
    pub fn set_winner(self, set: u8, games: Score) -> Option<Side> {
        let leader = games.leader()?;
        let (mine, theirs) = (games.get(leader), games.get(leader.opponent()));
        let by_two = mine >= 6 && mine >= theirs + 2;
        let by_tiebreak = self
            .tiebreak_at_games(set)
            .is_some_and(|at| mine == at + 1 && theirs == at);
        (by_two || by_tiebreak).then_some(leader)
    }
}

/// How the deciding set is settled at six games all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalSet {
    /// A first-to-7 tie-break, as in every other set.
    TiebreakTo7,
    /// A first-to-10 tie-break (the Grand Slam rule since 2022).
    #[default]
    TiebreakTo10,
    /// No tie-break: play on until one player leads by two games (Wimbledon before 2019).
    Advantage,
    /// A first-to-7 tie-break at twelve games all (Wimbledon 2019 to 2021).
    #[serde(rename = "tiebreak_at_12_all")]
    TiebreakAt12,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn football_clock_shows_stoppage_time() {
        assert_eq!(Sport::Football.format_clock(1, 0, None), "1'");
        assert_eq!(Sport::Football.format_clock(1, 22 * 60 + 10, None), "23'");
        assert_eq!(Sport::Football.format_clock(1, 46 * 60 + 5, None), "45+2'");
        assert_eq!(Sport::Football.format_clock(2, 66 * 60, None), "67'");
        assert_eq!(Sport::Football.format_clock(2, 93 * 60, None), "90+4'");
    }

    #[test]
    fn basketball_clock_counts_down() {
        assert_eq!(Sport::Basketball.format_clock(1, 0, None), "12:00");
        assert_eq!(
            Sport::Basketball.format_clock(3, 7 * 60 + 48, None),
            "04:12"
        );
        assert_eq!(Sport::Basketball.format_clock(5, 60, None), "04:00");
        assert_eq!(
            Sport::Basketball.format_clock(1, 11 * 60, Some(600)),
            "00:00"
        );
    }

    #[test]
    fn tennis_sets_end_by_the_format_rules() {
        let slam = TennisFormat {
            best_of: 5,
            final_set: FinalSet::TiebreakAt12,
            first_server: None,
        };
        let won = |set, home, away| slam.set_winner(set, Score::new(home, away));
        assert_eq!(won(1, 6, 4), Some(Side::Home));
        assert_eq!(won(1, 6, 5), None);
        assert_eq!(won(1, 7, 6), Some(Side::Home));
        assert_eq!(won(5, 7, 6), None);
        assert_eq!(won(5, 13, 12), Some(Side::Home));
        assert_eq!(won(5, 11, 13), Some(Side::Away));
        assert_eq!(slam.tiebreak_at_games(5), Some(12));
        let old = TennisFormat {
            best_of: 5,
            final_set: FinalSet::Advantage,
            first_server: None,
        };
        assert_eq!(old.tiebreak_at_games(5), None);
        assert_eq!(old.set_winner(5, Score::new(7, 6)), None);
        assert_eq!(TennisFormat::default().tiebreak_points(3), 10);
        assert_eq!(TennisFormat::default().tiebreak_points(2), 7);
    }

    #[test]
    fn service_changes_every_game_and_every_two_tiebreak_points() {
        let unknown = TennisFormat::default();
        assert_eq!(unknown.server(0, None), None);
        let format = TennisFormat {
            first_server: Some(Side::Away),
            ..TennisFormat::default()
        };
        assert_eq!(format.server(0, None), Some(Side::Away));
        assert_eq!(format.server(1, None), Some(Side::Home));
        assert_eq!(format.server(12, None), Some(Side::Away));
        // The tie-break at 6-6 (12 games played): Away serves one point, then two each.
        let tiebreak: Vec<Option<Side>> = (0..6)
            .map(|points| format.server(12, Some(points)))
            .collect();
        let (away, home) = (Some(Side::Away), Some(Side::Home));
        assert_eq!(tiebreak, vec![away, home, home, away, away, home]);
        // The tie-break counts as a game: Home serves the next set's first game.
        assert_eq!(format.server(13, None), home);
    }

    #[test]
    fn a_football_shootout_has_no_clock() {
        assert!(Sport::Football.has_clock_in(4));
        assert!(!Sport::Football.has_clock_in(5));
        assert!(Sport::Basketball.has_clock_in(5), "overtime has a clock");
    }

    #[test]
    fn period_names() {
        assert_eq!(Sport::Football.period_name(2), "2nd half");
        assert_eq!(Sport::Basketball.period_name(5), "OT1");
        assert_eq!(Sport::Tennis.period_name(3), "Set 3");
        assert_eq!(Sport::from_slug("curling"), Sport::Other);
    }
}
