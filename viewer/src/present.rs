//! How match facts read on screen: status and clock labels, kickoff times, timeline lines and
//! the score-progression series. Pure functions of a snapshot and the time, so the UI stays a
//! thin layer and every wording is tested.

use scoreline_protocol::{
    CardColour, EventKind, MatchSnapshot, MatchStatus, Side, Sport, TimelineEntry,
};

use crate::session::CatchUp;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// The short status shown in a scoreboard row: the clock while live (`67'`, `04:12`), `HT` at
/// half-time, the set in tennis, the kickoff time before the start, `FT` after it.
pub fn status_label(snapshot: &MatchSnapshot, now_ms: u64) -> String {
    match snapshot.status {
        MatchStatus::Scheduled => snapshot.kickoff_ms.map_or_else(
            || "TBD".to_owned(),
            |kickoff| kickoff_label(kickoff, now_ms),
        ),
        MatchStatus::Live => match snapshot.sport {
            Sport::Tennis => snapshot.sport.period_name(snapshot.period.max(1)),
            _ => snapshot
                .clock_display(now_ms)
                .unwrap_or_else(|| snapshot.sport.period_name(snapshot.period)),
        },
        MatchStatus::Break => match (snapshot.sport, snapshot.period) {
            (Sport::Football, 1) => "HT".to_owned(),
            (Sport::Football, 2) => "FT (ET next)".to_owned(),
            (Sport::Basketball, 2) => "Half".to_owned(),
            (sport, period) if period > 0 => format!("End {}", sport.period_name(period)),
            _ => "Break".to_owned(),
        },
        MatchStatus::Suspended => "Suspended".to_owned(),
        MatchStatus::Finished => match snapshot.sport {
            Sport::Football if snapshot.shootout.is_some() => "FT (pens)".to_owned(),
            Sport::Football if snapshot.period >= 3 => "AET".to_owned(),
            Sport::Basketball if snapshot.period > 4 => "FT (OT)".to_owned(),
            _ => "FT".to_owned(),
        },
        MatchStatus::Abandoned => "Abandoned".to_owned(),
        MatchStatus::Postponed => "Postponed".to_owned(),
    }
}

/// A kickoff time in UTC: `14:00` today, `Sat 24 Nov 14:00` another day.
///
/// UTC, labelled as such, because the viewer carries no time-zone database; it is the same
/// everywhere and never silently wrong.
pub fn kickoff_label(kickoff_ms: u64, now_ms: u64) -> String {
    let day = kickoff_ms / MILLIS_PER_DAY;
    let minute_of_day = (kickoff_ms % MILLIS_PER_DAY) / 60_000;
    let time = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
    if day == now_ms / MILLIS_PER_DAY {
        format!("{time} UTC")
    } else {
        let (_, month, day_of_month) = civil_date(day);
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[(day % 7) as usize];
        let month = MONTHS[(month as usize).saturating_sub(1) % 12];
        format!("{weekday} {day_of_month} {month} {time} UTC")
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01: (year, month 1-12, day 1-31).
fn civil_date(days_since_epoch: u64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let days = days_since_epoch as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The headline score as shown between the teams: `2 – 1`, `2 – 1 (4–3 p)` after a shoot-out,
/// `–` before the start.
pub fn score_label(snapshot: &MatchSnapshot) -> String {
    if snapshot.status == MatchStatus::Scheduled && snapshot.seq <= 1 {
        return "–".to_owned();
    }
    let mut label = format!("{} – {}", snapshot.score.home, snapshot.score.away);
    if let Some(shootout) = snapshot.shootout {
        label.push_str(&format!(" ({}–{} p)", shootout.home, shootout.away));
    }
    label
}

/// The team or player on `side`.
pub fn team_name(snapshot: &MatchSnapshot, side: Side) -> &str {
    let team = match side {
        Side::Home => &snapshot.home,
        Side::Away => &snapshot.away,
    };
    if team.name.is_empty() {
        match side {
            Side::Home => "Home",
            Side::Away => "Away",
        }
    } else {
        &team.name
    }
}

/// `Arsenal v Chelsea`: the match's name, also the label fans (and tests) find it by.
pub fn match_title(snapshot: &MatchSnapshot) -> String {
    format!(
        "{} v {}",
        team_name(snapshot, Side::Home),
        team_name(snapshot, Side::Away)
    )
}

/// Icon for a sport heading.
pub fn sport_icon(sport: Sport) -> &'static str {
    match sport {
        Sport::Football => "⚽",
        Sport::Basketball => "🏀",
        Sport::Tennis => "🎾",
        Sport::Other => "🏅",
    }
}

/// A sport's display name from its topic slug.
pub fn sport_name(slug: &str) -> String {
    crate::scoreboard::slug_to_title(slug)
}

/// When a timeline entry happened, as a fan reads it: the game clock when there is one, else
/// the period.
pub fn entry_time(snapshot: &MatchSnapshot, entry: &TimelineEntry) -> String {
    match entry.clock_secs {
        // Basketball clocks restart every quarter: the quarter must be said too.
        Some(secs) if snapshot.sport == Sport::Basketball => format!(
            "{} {}",
            snapshot.sport.period_name(entry.period),
            snapshot
                .sport
                .format_clock(entry.period, secs, snapshot.period_secs)
        ),
        Some(secs) if snapshot.sport != Sport::Tennis => {
            snapshot
                .sport
                .format_clock(entry.period, secs, snapshot.period_secs)
        }
        _ if entry.period > 0 => snapshot.sport.period_name(entry.period),
        _ => String::new(),
    }
}

/// One timeline line, e.g. `Goal ARS — Saka (pen)`, `Yellow card CHE — Caicedo`,
/// `Game HOM`, `Start of 2nd half`.
pub fn entry_text(snapshot: &MatchSnapshot, entry: &TimelineEntry) -> String {
    let code = |side: &Side| {
        let team = match side {
            Side::Home => &snapshot.home,
            Side::Away => &snapshot.away,
        };
        if team.name.is_empty() && team.code.is_none() {
            match side {
                Side::Home => "home".to_owned(),
                Side::Away => "away".to_owned(),
            }
        } else {
            team.short().to_owned()
        }
    };
    let with_player = |text: String, player: &Option<String>| match player {
        Some(player) => format!("{text} — {player}"),
        None => text,
    };
    let mut text = match &entry.kind {
        EventKind::MatchScheduled { .. } => "Scheduled".to_owned(),
        EventKind::MatchStarted => "Kick-off".to_owned(),
        EventKind::PeriodStarted { period } => {
            format!("Start of {}", snapshot.sport.period_name(*period))
        }
        EventKind::PeriodEnded { period } => {
            format!("End of {}", snapshot.sport.period_name(*period))
        }
        EventKind::Goal {
            side,
            player,
            own_goal,
            penalty,
        } => {
            let mut text = with_player(format!("Goal {}", code(side)), player);
            if *own_goal {
                text.push_str(" (own goal)");
            } else if *penalty {
                text.push_str(" (pen)");
            }
            text
        }
        EventKind::ShootoutKick {
            side,
            player,
            scored,
        } => with_player(
            format!(
                "Penalty {} {}",
                code(side),
                if *scored { "scored" } else { "missed" }
            ),
            player,
        ),
        EventKind::Points {
            side,
            points,
            player,
        } => with_player(format!("+{points} {}", code(side)), player),
        EventKind::Point { side } => format!("Game {}", code(side)),
        EventKind::Card { side, player, card } => {
            let card = match card {
                CardColour::Yellow => "Yellow card",
                CardColour::SecondYellow => "Second yellow",
                CardColour::Red => "Red card",
            };
            with_player(format!("{card} {}", code(side)), player)
        }
        EventKind::Substitution {
            side,
            player_on,
            player_off,
        } => {
            let mut text = format!("Substitution {}", code(side));
            match (player_on, player_off) {
                (Some(on), Some(off)) => text.push_str(&format!(" — {on} for {off}")),
                (Some(on), None) => text.push_str(&format!(" — {on} on")),
                (None, Some(off)) => text.push_str(&format!(" — {off} off")),
                (None, None) => {}
            }
            text
        }
        EventKind::StatusChanged { status, reason } => {
            let status = format!("{status:?}");
            match reason {
                Some(reason) => format!("{status}: {reason}"),
                None => status,
            }
        }
        EventKind::Clock { .. } => "Clock".to_owned(),
        EventKind::Stat { name, .. } => name.clone(),
        EventKind::MatchEnded { winner } => match winner {
            Some(side) => format!("Full time — {} win", code(side)),
            None => "Full time".to_owned(),
        },
        EventKind::Correction { corrects, .. } => format!("Correction of #{corrects}"),
    };
    if entry.voided {
        text.push_str(" — overturned");
    } else if entry.amended {
        text.push_str(" (corrected)");
    }
    text
}

/// Whether a timeline entry changed (or, voided, would have changed) the score: these are drawn
/// prominently.
pub fn is_scoring(entry: &TimelineEntry) -> bool {
    matches!(
        entry.kind,
        EventKind::Goal { .. }
            | EventKind::Points { .. }
            | EventKind::ShootoutKick { scored: true, .. }
    )
}

/// The score over the match, for the progression plot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progression {
    /// Minutes: of game time where the sport has a clock, else since the first event shown.
    pub x_label: &'static str,
    /// What is counted: goals, points or games.
    pub y_label: &'static str,
    /// `[minutes, count]` for the home side, a step at each score.
    pub home: Vec<[f64; 2]>,
    /// The same for the away side.
    pub away: Vec<[f64; 2]>,
    /// The regular length of the match in the x unit, when the sport has one, so the plot shows
    /// how far into the match the score stands.
    pub full_length: Option<f64>,
}

/// The score progression from the snapshot's timeline: goals (football), points (basketball) or
/// games (tennis; its timeline keeps the game-winning points). Voided events do not count;
/// amended ones count as corrected. A timeline cut short by its cap starts from the difference,
/// so the lines always end at the real score.
pub fn progression(snapshot: &MatchSnapshot) -> Progression {
    let (y_label, counted_by_clock) = match snapshot.sport {
        Sport::Football => ("goals", true),
        Sport::Basketball => ("points", true),
        Sport::Tennis => ("games", false),
        Sport::Other => ("score", false),
    };
    let entries: Vec<&TimelineEntry> = snapshot.timeline.iter().filter(|e| !e.voided).collect();
    let first_ts_ms = entries.first().map_or(0, |entry| entry.ts_ms);
    let minutes = |entry: &TimelineEntry, previous: f64| -> f64 {
        if counted_by_clock {
            match entry.clock_secs {
                Some(secs) => f64::from(game_secs(snapshot, entry.period, secs)) / 60.0,
                None => previous,
            }
        } else {
            entry.ts_ms.saturating_sub(first_ts_ms) as f64 / 60_000.0
        }
    };
    let mut steps: Vec<(f64, Side, u32)> = Vec::new();
    let mut x = 0.0;
    for entry in &entries {
        x = minutes(entry, x).max(x);
        let gained = match &entry.kind {
            EventKind::Goal { side, .. } => Some((*side, 1)),
            EventKind::Points { side, points, .. } => Some((*side, u32::from(*points))),
            EventKind::Point { side } if snapshot.sport == Sport::Tennis => Some((*side, 1)),
            _ => None,
        };
        if let Some((side, amount)) = gained {
            steps.push((x, side, amount));
        }
    }
    let final_total = |side: Side| match snapshot.sport {
        Sport::Tennis => snapshot
            .periods
            .iter()
            .map(|set| set.score().get(side))
            .sum::<u32>(),
        _ => snapshot.score.get(side),
    };
    let series = |side: Side| {
        let counted: u32 = steps.iter().filter(|s| s.1 == side).map(|s| s.2).sum();
        let mut count = final_total(side).saturating_sub(counted);
        let mut points = vec![[0.0, f64::from(count)]];
        for (x, _, amount) in steps.iter().filter(|s| s.1 == side) {
            points.push([*x, f64::from(count)]);
            count += amount;
            points.push([*x, f64::from(count)]);
        }
        points.push([x.max(0.0), f64::from(count)]);
        points
    };
    Progression {
        x_label: if counted_by_clock {
            "game minutes"
        } else {
            "minutes"
        },
        y_label,
        home: series(Side::Home),
        away: series(Side::Away),
        full_length: match snapshot.sport {
            Sport::Football if snapshot.period >= 3 => Some(120.0),
            Sport::Football => Some(90.0),
            Sport::Basketball => Some(
                f64::from(game_secs(snapshot, snapshot.period.max(4), 0)) / 60.0
                    + f64::from(if snapshot.period > 4 {
                        5
                    } else {
                        snapshot.period_secs.unwrap_or(720) / 60
                    }),
            ),
            _ => None,
        },
    }
}

/// Seconds of game time at `clock_secs` in `period`: football clocks already run on; basketball
/// clocks restart each period, so earlier periods are added.
fn game_secs(snapshot: &MatchSnapshot, period: u8, clock_secs: u32) -> u32 {
    match snapshot.sport {
        Sport::Basketball => {
            let quarter_secs = snapshot.period_secs.unwrap_or(12 * 60);
            let period = u32::from(period.max(1));
            let before = if period <= 4 {
                (period - 1) * quarter_secs
            } else {
                4 * quarter_secs + (period - 5) * 5 * 60
            };
            before + clock_secs
        }
        _ => clock_secs,
    }
}

/// How the current connection caught up what the viewer held, for the status bar's tooltip;
/// `None` when it held nothing to catch up.
pub fn catch_up_label(catch_up: &CatchUp) -> Option<String> {
    let CatchUp {
        resume_points_sent,
        resumed,
        resynced,
        snapshots,
    } = *catch_up;
    if resume_points_sent + resumed + resynced + snapshots == 0 {
        return None;
    }
    Some(format!(
        "Caught up on connecting: {resumed} resumed (missed events replayed), {resynced} \
         resynced, {snapshots} from fresh snapshots"
    ))
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::test_support::goal_by;
    use scoreline_protocol::{Clock, MatchTopic, PeriodScore, Score, Team};

    use super::*;

    fn snapshot(topic: &str) -> MatchSnapshot {
        let mut snapshot = MatchSnapshot::new(MatchTopic::parse(topic).unwrap());
        snapshot.home = Team::new("Arsenal", "ARS");
        snapshot.away = Team::new("Chelsea", "CHE");
        snapshot.seq = 5;
        snapshot
    }

    fn entry(seq: u64, period: u8, clock_secs: Option<u32>, kind: EventKind) -> TimelineEntry {
        TimelineEntry {
            seq,
            ts_ms: seq * 60_000,
            period,
            clock_secs,
            kind,
            voided: false,
            amended: false,
        }
    }

    #[test]
    fn status_labels_follow_the_sport() {
        let mut football = snapshot("football/pl/a-b");
        football.status = MatchStatus::Live;
        football.period = 2;
        football.clock = Some(Clock {
            secs: 66 * 60,
            running: true,
            at_ms: 1_000,
        });
        assert_eq!(status_label(&football, 1_000), "67'");
        assert_eq!(status_label(&football, 1_000 + 60_000), "68'");
        football.status = MatchStatus::Break;
        football.period = 1;
        assert_eq!(status_label(&football, 0), "HT");
        football.status = MatchStatus::Finished;
        football.shootout = Some(Score::new(4, 3));
        assert_eq!(status_label(&football, 0), "FT (pens)");
        assert_eq!(score_label(&football), "0 – 0 (4–3 p)");

        let mut tennis = snapshot("tennis/wimbledon/a-b");
        tennis.status = MatchStatus::Live;
        tennis.period = 3;
        assert_eq!(status_label(&tennis, 0), "Set 3");
    }

    #[test]
    fn kickoff_is_shown_in_utc_with_the_date_when_not_today() {
        // 2026-11-28 14:00 UTC is a Saturday.
        let kickoff_ms = 1_795_874_400_000;
        assert_eq!(
            kickoff_label(kickoff_ms, kickoff_ms - 3_600_000),
            "14:00 UTC"
        );
        assert_eq!(
            kickoff_label(kickoff_ms, kickoff_ms - 4 * MILLIS_PER_DAY),
            "Sat 28 Nov 14:00 UTC"
        );
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }

    #[test]
    fn timeline_lines_name_team_player_and_corrections() {
        let football = snapshot("football/pl/a-b");
        let mut scored = entry(7, 2, Some(66 * 60), goal_by(Side::Home, "Saka"));
        assert_eq!(entry_time(&football, &scored), "67'");
        assert_eq!(entry_text(&football, &scored), "Goal ARS — Saka");
        scored.voided = true;
        assert_eq!(
            entry_text(&football, &scored),
            "Goal ARS — Saka — overturned"
        );
        let card = entry(
            8,
            2,
            None,
            EventKind::Card {
                side: Side::Away,
                player: Some("Caicedo".into()),
                card: CardColour::SecondYellow,
            },
        );
        assert_eq!(entry_text(&football, &card), "Second yellow CHE — Caicedo");
        assert_eq!(entry_time(&football, &card), "2nd half");
        let basketball = snapshot("basketball/nba/a-b");
        let three = entry(
            9,
            3,
            Some(7 * 60 + 48),
            EventKind::Points {
                side: Side::Home,
                points: 3,
                player: None,
            },
        );
        assert_eq!(entry_time(&basketball, &three), "Q3 04:12");
        assert_eq!(entry_text(&basketball, &three), "+3 ARS");
    }

    #[test]
    fn progression_steps_at_each_score_and_skips_overturned_goals() {
        let mut football = snapshot("football/pl/a-b");
        football.timeline = vec![
            entry(2, 1, Some(0), EventKind::PeriodStarted { period: 1 }),
            entry(3, 1, Some(10 * 60), goal_by(Side::Home, "Saka")),
            entry(4, 1, Some(20 * 60), goal_by(Side::Away, "Palmer")),
            entry(5, 2, Some(70 * 60), goal_by(Side::Home, "Rice")),
        ]
        .into();
        football.timeline[2].voided = true;
        football.score = Score::new(2, 0);
        let plot = progression(&football);
        assert_eq!(plot.y_label, "goals");
        assert_eq!(
            plot.home,
            vec![
                [0.0, 0.0],
                [10.0, 0.0],
                [10.0, 1.0],
                [70.0, 1.0],
                [70.0, 2.0],
                [70.0, 2.0]
            ]
        );
        assert_eq!(plot.away, vec![[0.0, 0.0], [70.0, 0.0]]);
        assert_eq!(plot.full_length, Some(90.0));
    }

    #[test]
    fn progression_of_a_truncated_timeline_still_ends_at_the_score() {
        let mut basketball = snapshot("basketball/nba/a-b");
        basketball.score = Score::new(100, 98);
        basketball.timeline = vec![entry(
            400,
            4,
            Some(11 * 60),
            EventKind::Points {
                side: Side::Home,
                points: 3,
                player: None,
            },
        )]
        .into();
        let plot = progression(&basketball);
        assert_eq!(plot.home.first(), Some(&[0.0, 97.0]));
        assert_eq!(
            plot.home.last(),
            Some(&[47.0, 100.0]),
            "Q4 at 11:00 is minute 47"
        );
        assert_eq!(plot.away.last(), Some(&[47.0, 98.0]));
        basketball.period = 4;
        assert_eq!(progression(&basketball).full_length, Some(48.0));
        basketball.period = 5;
        assert_eq!(progression(&basketball).full_length, Some(53.0));
    }

    #[test]
    fn tennis_progression_counts_games() {
        let mut tennis = snapshot("tennis/wimbledon/a-b");
        tennis.periods = vec![PeriodScore {
            period: 1,
            home: 1,
            away: 1,
            tiebreak: None,
        }];
        tennis.timeline = vec![
            entry(4, 1, None, EventKind::Point { side: Side::Home }),
            entry(8, 1, None, EventKind::Point { side: Side::Away }),
        ]
        .into();
        let plot = progression(&tennis);
        assert_eq!(plot.y_label, "games");
        assert_eq!(plot.home.last(), Some(&[4.0, 1.0]));
        assert_eq!(plot.away[1], [4.0, 0.0]);
        assert_eq!(plot.away.last(), Some(&[4.0, 1.0]));
    }

    #[test]
    fn catch_up_label_says_how_held_matches_were_brought_up_to_date() {
        assert_eq!(catch_up_label(&CatchUp::default()), None);
        let catch_up = CatchUp {
            resume_points_sent: 3,
            resumed: 2,
            resynced: 1,
            snapshots: 0,
        };
        assert_eq!(
            catch_up_label(&catch_up).as_deref(),
            Some(
                "Caught up on connecting: 2 resumed (missed events replayed), 1 resynced, \
                 0 from fresh snapshots"
            )
        );
    }
}
