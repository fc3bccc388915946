//! How match facts read on screen: status and clock labels, kickoff times, scorers, who serves,
//! timeline lines and the score-progression series. Pure functions of a snapshot and the time,
//! so the UI stays a thin layer and every wording is tested.
//!
//! Wording follows what fans read on live-score apps: `67'`, `HT`, `FT` with `AET` or `Pens`
//! beneath, `Goal disallowed` rather than "correction of #7", `Possession %` rather than a feed's
//! field name.

use scoreline_protocol::{
    CardColour, EventKind, MatchSnapshot, MatchStatus, Side, Sport, TimelineEntry,
};

use crate::session::{CatchUp, DelayStatus};

const MILLIS_PER_DAY: u64 = 86_400_000;

/// The status column of a scoreboard row: a main line (the clock, `HT`, `FT`, a kickoff time)
/// and an optional small line beneath (the basketball clock under its quarter, `AET` under
/// `FT`, the date of a kickoff that is not today).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowStatus {
    /// The main line, at most about six characters so the column stays narrow.
    pub main: String,
    /// The small line beneath, if any.
    pub small: Option<String>,
    /// Whether the match is being played now (drawn in the live colour).
    pub live: bool,
    /// The status in full words, for the tooltip and screen readers.
    pub full: String,
}

/// The status column of a row: see [`RowStatus`].
pub fn row_status(snapshot: &MatchSnapshot, now_ms: u64) -> RowStatus {
    let full = status_text(snapshot, now_ms);
    let live = snapshot.status.is_in_progress();
    let (main, small): (String, Option<String>) = match snapshot.status {
        MatchStatus::Scheduled => match snapshot.kickoff_ms {
            Some(kickoff) if kickoff / MILLIS_PER_DAY == now_ms / MILLIS_PER_DAY => {
                (time_of_day(kickoff), Some("UTC".to_owned()))
            }
            Some(kickoff) => (short_date(kickoff), Some(time_of_day(kickoff))),
            None => ("TBD".to_owned(), None),
        },
        MatchStatus::Live => match snapshot.sport {
            // A match a feed started without announcing it (no period yet) is simply live.
            _ if snapshot.period == 0 => match snapshot.clock_display(now_ms) {
                Some(clock) => (clock, None),
                None => ("Live".to_owned(), None),
            },
            Sport::Football if !snapshot.sport.has_clock_in(snapshot.period) => {
                ("Pens".to_owned(), None)
            }
            Sport::Basketball => (
                snapshot.sport.period_name(snapshot.period),
                snapshot.clock_display(now_ms),
            ),
            Sport::Tennis => (snapshot.sport.period_name(snapshot.period), None),
            _ => (
                snapshot
                    .clock_display(now_ms)
                    .unwrap_or_else(|| snapshot.sport.period_name(snapshot.period)),
                None,
            ),
        },
        MatchStatus::Break => match (snapshot.sport, snapshot.period) {
            (Sport::Football, 1) => ("HT".to_owned(), None),
            (Sport::Football, 2) => ("Break".to_owned(), Some("ET next".to_owned())),
            (Sport::Football, 3) => ("ET HT".to_owned(), None),
            (Sport::Football, 4) => ("Break".to_owned(), Some("Pens next".to_owned())),
            (Sport::Basketball, 2) => ("Half".to_owned(), None),
            (sport, period) if period > 0 => (sport.period_name(period), Some("ended".to_owned())),
            _ => ("Break".to_owned(), None),
        },
        MatchStatus::Suspended => ("Susp.".to_owned(), None),
        MatchStatus::Finished => ("FT".to_owned(), finish_note(snapshot).map(str::to_owned)),
        MatchStatus::Abandoned => ("Aband.".to_owned(), None),
        MatchStatus::Postponed => ("Postp.".to_owned(), None),
    };
    RowStatus {
        main,
        small,
        live,
        full,
    }
}

/// How a finished match was decided beyond regular time: `Pens`, `AET`, `OT`.
fn finish_note(snapshot: &MatchSnapshot) -> Option<&'static str> {
    match snapshot.sport {
        Sport::Football if snapshot.shootout.is_some() => Some("Pens"),
        Sport::Football if snapshot.period >= 3 => Some("AET"),
        Sport::Basketball if snapshot.period > 4 => Some("OT"),
        _ => None,
    }
}

/// The status in words, as the detail view shows it under the score: `67' · 2nd half`,
/// `Penalty shoot-out`, `Half-time`, `Full time · after penalties`, `Q3 · 04:12 left`,
/// `Kick-off Sat 28 Nov 14:00 UTC`.
pub fn status_text(snapshot: &MatchSnapshot, now_ms: u64) -> String {
    let sport = snapshot.sport;
    match snapshot.status {
        MatchStatus::Scheduled => snapshot.kickoff_ms.map_or_else(
            || "Kick-off time to be decided".to_owned(),
            |kickoff| format!("Kick-off {}", kickoff_label(kickoff, now_ms)),
        ),
        MatchStatus::Live if snapshot.period == 0 => match snapshot.clock_display(now_ms) {
            Some(clock) => format!("Live · {clock}"),
            None => "Live".to_owned(),
        },
        MatchStatus::Live => match sport {
            Sport::Football if !sport.has_clock_in(snapshot.period) => {
                "Penalty shoot-out".to_owned()
            }
            Sport::Basketball => match snapshot.clock_display(now_ms) {
                Some(clock) => format!("{} · {clock} left", sport.period_name(snapshot.period)),
                None => sport.period_name(snapshot.period),
            },
            Sport::Tennis => sport.period_name(snapshot.period),
            _ => match snapshot.clock_display(now_ms) {
                Some(clock) => format!("{clock} · {}", sport.period_name(snapshot.period)),
                None => sport.period_name(snapshot.period),
            },
        },
        MatchStatus::Break => match (sport, snapshot.period) {
            (Sport::Football, 1) => "Half-time".to_owned(),
            (Sport::Football, 2) => "Break · extra time next".to_owned(),
            (Sport::Football, 3) => "Extra time half-time".to_owned(),
            (Sport::Football, 4) => "Break · penalties next".to_owned(),
            (Sport::Basketball, 2) => "Half-time".to_owned(),
            (sport, period) if period > 0 => format!("End of {}", sport.period_name(period)),
            _ => "Break".to_owned(),
        },
        MatchStatus::Suspended => "Suspended".to_owned(),
        MatchStatus::Finished => match finish_note(snapshot) {
            Some("Pens") => "Full time · after penalties".to_owned(),
            Some("AET") => "Full time · after extra time".to_owned(),
            Some(_) => "Full time · after overtime".to_owned(),
            None => "Full time".to_owned(),
        },
        MatchStatus::Abandoned => "Abandoned".to_owned(),
        MatchStatus::Postponed => "Postponed".to_owned(),
    }
}

/// A kickoff time in UTC: `14:00 UTC` today, `Sat 28 Nov 14:00 UTC` another day.
///
/// UTC, labelled as such, because the viewer carries no time-zone database; it is the same
/// everywhere and never silently wrong.
pub fn kickoff_label(kickoff_ms: u64, now_ms: u64) -> String {
    let time = time_of_day(kickoff_ms);
    if kickoff_ms / MILLIS_PER_DAY == now_ms / MILLIS_PER_DAY {
        format!("{time} UTC")
    } else {
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[((kickoff_ms / MILLIS_PER_DAY) % 7) as usize];
        format!("{weekday} {} {time} UTC", short_date(kickoff_ms))
    }
}

/// `14:00`: the time of day in UTC.
fn time_of_day(at_ms: u64) -> String {
    let minute_of_day = (at_ms % MILLIS_PER_DAY) / 60_000;
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// `28 Nov`: the day and month in UTC.
fn short_date(at_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, month, day) = civil_date(at_ms / MILLIS_PER_DAY);
    let month = MONTHS[(month as usize).saturating_sub(1) % 12];
    format!("{day} {month}")
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

/// Whether the match has a score to show yet: not before it starts.
pub fn has_score(snapshot: &MatchSnapshot) -> bool {
    !(snapshot.status == MatchStatus::Scheduled && snapshot.score == Default::default())
}

/// The headline score as one line, for screen readers and the detail view: `2 – 1`,
/// `3 – 3 (4–2 pens)`, `–` before the start.
pub fn score_label(snapshot: &MatchSnapshot) -> String {
    if !has_score(snapshot) {
        return "–".to_owned();
    }
    let mut label = format!("{} – {}", snapshot.score.home, snapshot.score.away);
    if let Some(shootout) = snapshot.shootout {
        label.push_str(&format!(" ({}–{} pens)", shootout.home, shootout.away));
    }
    label
}

/// The team or player on `side`. A match announced without names (a feed that published a
/// goal straight away) is named after its topic, `ars-che` giving `ARS` and `CHE`, so a row
/// never shows an empty name.
pub fn team_name(snapshot: &MatchSnapshot, side: Side) -> String {
    let team = match side {
        Side::Home => &snapshot.home,
        Side::Away => &snapshot.away,
    };
    if !team.name.trim().is_empty() {
        return team.name.clone();
    }
    if let Some(code) = team.code.as_deref().filter(|code| !code.trim().is_empty()) {
        return code.to_owned();
    }
    // Three letters read as a team code (`ars`), anything longer as a word (`home`).
    let readable = |part: &str| {
        if part.len() <= 3 {
            part.to_uppercase()
        } else {
            crate::scoreboard::slug_to_title(part)
        }
    };
    let parts: Vec<&str> = snapshot.match_topic.match_slug().split('-').collect();
    match (parts.as_slice(), side) {
        ([home, _, ..], Side::Home) => readable(home),
        ([_, away, ..], Side::Away) => readable(away),
        (_, Side::Home) => "Home".to_owned(),
        (_, Side::Away) => "Away".to_owned(),
    }
}

/// The team's short form for timeline lines: its code, else its name.
fn team_short(snapshot: &MatchSnapshot, side: Side) -> String {
    let team = match side {
        Side::Home => &snapshot.home,
        Side::Away => &snapshot.away,
    };
    match team.code.as_deref().filter(|code| !code.trim().is_empty()) {
        Some(code) => code.to_owned(),
        None => team_name(snapshot, side),
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

/// The game minute of a timeline entry as fans write it next to a scorer: `23'`, `90+4'`;
/// `None` without a clock reading or in a shoot-out.
fn minute_of(snapshot: &MatchSnapshot, entry: &TimelineEntry) -> Option<String> {
    let secs = entry.clock_secs?;
    (snapshot.sport.has_clock_in(entry.period) && snapshot.sport != Sport::Tennis).then(|| {
        snapshot
            .sport
            .format_clock(entry.period, secs, snapshot.period_secs)
    })
}

/// The latest goal of `side` that still counts, as the row shows it beside the team:
/// `Messi 108'`, `Mbappé 118' (pen)`, `Otamendi 23' (og)`; `None` before its first goal.
pub fn last_scorer(snapshot: &MatchSnapshot, side: Side) -> Option<String> {
    snapshot
        .timeline
        .iter()
        .rev()
        .filter(|entry| !entry.voided)
        .find_map(|entry| match &entry.kind {
            EventKind::Goal {
                side: scored_for,
                player,
                own_goal,
                penalty,
            } if *scored_for == side => {
                let mut text = player.clone().unwrap_or_else(|| "Goal".to_owned());
                if let Some(minute) = minute_of(snapshot, entry) {
                    text.push(' ');
                    text.push_str(&minute);
                }
                if *own_goal {
                    text.push_str(" (og)");
                } else if *penalty {
                    text.push_str(" (pen)");
                }
                Some(text)
            }
            _ => None,
        })
}

/// Every goal of `side` that counts, one entry per scorer in order of their first goal, as the
/// detail view lists them under the team: `Messi 23' (pen), 108'`.
pub fn scorers(snapshot: &MatchSnapshot, side: Side) -> Vec<String> {
    let mut by_player: Vec<(String, Vec<String>)> = Vec::new();
    for entry in snapshot.timeline.iter().filter(|entry| !entry.voided) {
        let EventKind::Goal {
            side: scored_for,
            player,
            own_goal,
            penalty,
        } = &entry.kind
        else {
            continue;
        };
        if *scored_for != side {
            continue;
        }
        let name = player.clone().unwrap_or_else(|| "Goal".to_owned());
        let mut minute = minute_of(snapshot, entry).unwrap_or_default();
        if *own_goal {
            minute.push_str(" (og)");
        } else if *penalty {
            minute.push_str(" (pen)");
        }
        match by_player.iter_mut().find(|(known, _)| *known == name) {
            Some((_, minutes)) => minutes.push(minute.trim().to_owned()),
            None => by_player.push((name, vec![minute.trim().to_owned()])),
        }
    }
    by_player
        .into_iter()
        .map(|(name, minutes)| {
            let minutes: Vec<String> = minutes.into_iter().filter(|m| !m.is_empty()).collect();
            if minutes.is_empty() {
                name
            } else {
                format!("{name} {}", minutes.join(", "))
            }
        })
        .collect()
}

/// The shoot-out kick by kick for one side, in order: `true` scored, `false` missed. Voided
/// kicks are left out.
pub fn shootout_kicks(snapshot: &MatchSnapshot, side: Side) -> Vec<bool> {
    snapshot
        .timeline
        .iter()
        .filter(|entry| !entry.voided)
        .filter_map(|entry| match entry.kind {
            EventKind::ShootoutKick {
                side: kicker,
                scored,
                ..
            } if kicker == side => Some(scored),
            _ => None,
        })
        .collect()
}

/// Tennis: the games of the set in play (or the last set), for the row.
pub fn current_set_games(snapshot: &MatchSnapshot) -> Option<(u32, u32)> {
    (snapshot.sport == Sport::Tennis)
        .then(|| snapshot.periods.last().map(|set| (set.home, set.away)))
        .flatten()
}

/// Tennis: who serves now, while the match is played and the announcement said who served
/// first. Service changes every game; in a tie-break after the first point, then every two.
pub fn serving(snapshot: &MatchSnapshot) -> Option<Side> {
    if snapshot.sport != Sport::Tennis || !snapshot.status.is_in_progress() {
        return None;
    }
    let format = snapshot.tennis?;
    let games_played: u32 = snapshot.periods.iter().map(|set| set.home + set.away).sum();
    let tiebreak_points = snapshot
        .game
        .filter(|game| game.tiebreak)
        .map(|game| u32::from(game.home) + u32::from(game.away));
    format.server(games_played, tiebreak_points)
}

/// When a timeline entry happened, as a fan reads it: the game clock when there is one, else
/// the period (a shoot-out kick reads `Pens`).
pub fn entry_time(snapshot: &MatchSnapshot, entry: &TimelineEntry) -> String {
    let sport = snapshot.sport;
    match entry.clock_secs {
        _ if sport == Sport::Football && !sport.has_clock_in(entry.period) => "Pens".to_owned(),
        // Basketball clocks restart every quarter: the quarter must be said too.
        Some(secs) if sport == Sport::Basketball => format!(
            "{} {}",
            sport.period_name(entry.period),
            sport.format_clock(entry.period, secs, snapshot.period_secs)
        ),
        Some(secs) if sport != Sport::Tennis => {
            sport.format_clock(entry.period, secs, snapshot.period_secs)
        }
        _ if entry.period > 0 => sport.period_name(entry.period),
        _ => String::new(),
    }
}

/// A statistic's name as fans read it: `possession_pct` → `Possession %`, `shots_on_target` →
/// `Shots on target`.
pub fn stat_name(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in name.split(['_', '-', ' ']).filter(|word| !word.is_empty()) {
        words.push(match word {
            "pct" | "percent" | "percentage" => "%".to_owned(),
            other => other.to_owned(),
        });
    }
    let text = words.join(" ");
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// One timeline line, e.g. `Goal ARS — Saka (pen)`, `Yellow card CHE — Caicedo`,
/// `Game HOM`, `Start of 2nd half`, `Goal disallowed — Saka`.
pub fn entry_text(snapshot: &MatchSnapshot, entry: &TimelineEntry) -> String {
    let code = |side: &Side| team_short(snapshot, *side);
    let with_player = |text: String, player: &Option<String>| match player {
        Some(player) => format!("{text} — {player}"),
        None => text,
    };
    let mut text = match &entry.kind {
        EventKind::MatchScheduled { .. } => "Scheduled".to_owned(),
        EventKind::MatchStarted => "Kick-off".to_owned(),
        EventKind::PeriodStarted { period } if !snapshot.sport.has_clock_in(*period) => {
            "Penalty shoot-out".to_owned()
        }
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
            let status = match status {
                MatchStatus::Scheduled => "Rescheduled",
                MatchStatus::Live => "Play resumed",
                MatchStatus::Break => "Break",
                MatchStatus::Suspended => "Suspended",
                MatchStatus::Finished => "Full time",
                MatchStatus::Abandoned => "Abandoned",
                MatchStatus::Postponed => "Postponed",
            };
            match reason {
                Some(reason) => format!("{status}: {reason}"),
                None => status.to_owned(),
            }
        }
        EventKind::Clock { .. } => "Clock".to_owned(),
        EventKind::Stat { name, .. } => stat_name(name),
        EventKind::MatchEnded { winner } => match winner {
            Some(side) => format!("Full time — {} win", code(side)),
            None => "Full time".to_owned(),
        },
        EventKind::Correction {
            corrects,
            replacement,
        } => correction_text(snapshot, *corrects, replacement.as_deref()),
    };
    if entry.voided {
        text.push_str(match entry.kind {
            EventKind::Goal { .. } => " — disallowed",
            _ => " — cancelled",
        });
    } else if entry.amended {
        text.push_str(" (corrected)");
    }
    text
}

/// What a correction did, in a fan's words: `Goal disallowed — Saka`, `Scorer changed — Rice`,
/// `Card withdrawn — Caicedo`. The corrected entry is looked up in the timeline (it holds the
/// replacement once amended); a correction of an entry no longer kept reads `Correction`.
fn correction_text(
    snapshot: &MatchSnapshot,
    corrects: u64,
    replacement: Option<&EventKind>,
) -> String {
    let target = snapshot.timeline.iter().find(|entry| entry.seq == corrects);
    let player_of = |kind: &EventKind| -> Option<String> {
        match kind {
            EventKind::Goal { player, .. }
            | EventKind::ShootoutKick { player, .. }
            | EventKind::Points { player, .. }
            | EventKind::Card { player, .. } => player.clone(),
            EventKind::Substitution { player_on, .. } => player_on.clone(),
            _ => None,
        }
    };
    let with = |text: &str, kind: &EventKind| match player_of(kind) {
        Some(player) => format!("{text} — {player}"),
        None => text.to_owned(),
    };
    match (replacement, target.map(|entry| &entry.kind)) {
        (None, Some(kind @ EventKind::Goal { .. })) => with("Goal disallowed", kind),
        (None, Some(kind @ EventKind::ShootoutKick { .. })) => with("Penalty cancelled", kind),
        (None, Some(kind @ EventKind::Points { .. })) => with("Basket cancelled", kind),
        (None, Some(kind @ EventKind::Card { .. })) => with("Card withdrawn", kind),
        (None, Some(kind @ EventKind::Substitution { .. })) => with("Substitution cancelled", kind),
        (Some(kind @ EventKind::Goal { own_goal: true, .. }), _) => {
            with("Changed to an own goal", kind)
        }
        (Some(kind @ EventKind::Goal { .. }), _) => with("Scorer changed", kind),
        (Some(kind @ EventKind::Points { points, .. }), _) => {
            with(&format!("Basket changed to {points} points"), kind)
        }
        (Some(kind @ EventKind::Card { .. }), _) => with("Card changed", kind),
        (Some(kind @ EventKind::ShootoutKick { .. }), _) => with("Penalty changed", kind),
        (Some(kind), _) => with("Corrected", kind),
        (None, _) => "Correction".to_owned(),
    }
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
    /// What the x axis counts: game minutes, or games played in tennis.
    pub x_label: &'static str,
    /// What is counted: goals, points or games.
    pub y_label: &'static str,
    /// `[x, count]` for the home side, a step at each score.
    pub home: Vec<[f64; 2]>,
    /// The same for the away side.
    pub away: Vec<[f64; 2]>,
    /// The regular length of the match in the x unit, when the sport has one, so the plot shows
    /// how far into the match the score stands.
    pub full_length: Option<f64>,
}

/// The score progression from the snapshot's timeline: goals against game minutes (football),
/// points against game minutes (basketball), or games won against games played (tennis, whose
/// timeline keeps the game-winning points; wall-clock time would squeeze games published at once
/// into one instant). Voided events do not count; amended ones count as corrected. A timeline
/// cut short by its cap starts from the difference, so the lines always end at the real score.
pub fn progression(snapshot: &MatchSnapshot) -> Progression {
    if snapshot.sport == Sport::Tennis {
        return tennis_progression(snapshot);
    }
    let y_label = match snapshot.sport {
        Sport::Football => "goals",
        Sport::Basketball => "points",
        _ => "score",
    };
    let mut steps: Vec<(f64, Side, u32)> = Vec::new();
    let mut x = 0.0_f64;
    for entry in snapshot.timeline.iter().filter(|entry| !entry.voided) {
        if let Some(secs) = entry.clock_secs
            && snapshot.sport.has_clock_in(entry.period)
        {
            x = x.max(f64::from(game_secs(snapshot, entry.period, secs)) / 60.0);
        }
        let gained = match &entry.kind {
            EventKind::Goal { side, .. } => Some((*side, 1)),
            EventKind::Points { side, points, .. } => Some((*side, u32::from(*points))),
            _ => None,
        };
        if let Some((side, amount)) = gained {
            steps.push((x, side, amount));
        }
    }
    let series = |side: Side| step_series(&steps, side, snapshot.score.get(side), x);
    Progression {
        x_label: "game minutes",
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

fn tennis_progression(snapshot: &MatchSnapshot) -> Progression {
    let games_won = |side: Side| -> u32 {
        snapshot
            .periods
            .iter()
            .map(|set| set.score().get(side))
            .sum()
    };
    let total_games = games_won(Side::Home) + games_won(Side::Away);
    let game_entries: Vec<Side> = snapshot
        .timeline
        .iter()
        .filter_map(|entry| match entry.kind {
            EventKind::Point { side } => Some(side),
            _ => None,
        })
        .collect();
    // A capped timeline lost its oldest games: number the kept ones from where they start.
    let first_kept = total_games.saturating_sub(game_entries.len() as u32);
    let steps: Vec<(f64, Side, u32)> = game_entries
        .iter()
        .enumerate()
        .map(|(index, side)| (f64::from(first_kept + index as u32 + 1), *side, 1))
        .collect();
    let end = f64::from(total_games);
    Progression {
        x_label: "games played",
        y_label: "games",
        home: step_series(&steps, Side::Home, games_won(Side::Home), end),
        away: step_series(&steps, Side::Away, games_won(Side::Away), end),
        full_length: None,
    }
}

/// A step line for `side`: flat, then up by each step's amount at its x, ending at `end_x` on
/// `total` (steps cut off by a capped timeline are counted in from the start).
fn step_series(steps: &[(f64, Side, u32)], side: Side, total: u32, end_x: f64) -> Vec<[f64; 2]> {
    let counted: u32 = steps.iter().filter(|s| s.1 == side).map(|s| s.2).sum();
    let mut count = total.saturating_sub(counted);
    let mut points = vec![[0.0, f64::from(count)]];
    for (x, _, amount) in steps.iter().filter(|s| s.1 == side) {
        points.push([*x, f64::from(count)]);
        count += amount;
        points.push([*x, f64::from(count)]);
    }
    points.push([end_x.max(0.0), f64::from(count)]);
    points
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

/// A whole number with a comma between thousands, as fans read counts: `1,204`.
pub fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// How many fans watch a match, this viewer included: `1,204 watching`.
pub fn watching_label(fans: u64) -> String {
    format!("{} watching", thousands(fans))
}

/// How far behind the stadium the board is, for the status bar; `None` when it is live and
/// meant to be, which needs no words.
pub fn delay_label(status: DelayStatus) -> Option<String> {
    match status {
        DelayStatus::Live => None,
        DelayStatus::Delayed { secs } => Some(format!("Delayed {secs} s")),
        DelayStatus::Changing { to_secs: 0, .. } => Some("Going live…".to_owned()),
        DelayStatus::Changing { to_secs, .. } => Some(format!("Delaying {to_secs} s…")),
        DelayStatus::NotApplied {
            asked_secs,
            shown_secs: 0,
        } => Some(format!("Live: the server did not delay by {asked_secs} s")),
        DelayStatus::NotApplied {
            asked_secs,
            shown_secs,
        } => Some(format!(
            "Delayed {shown_secs} s: the server did not change it to {asked_secs} s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::{
        Clock, MatchTopic, PeriodScore, Score, ScoreEvent, Team, TennisFormat, TennisGame, apply,
    };

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

    fn goal(side: Side, player: &str) -> EventKind {
        EventKind::Goal {
            side,
            player: Some(player.into()),
            own_goal: false,
            penalty: false,
        }
    }

    fn status(snapshot: &MatchSnapshot, now_ms: u64) -> (String, Option<String>) {
        let status = row_status(snapshot, now_ms);
        (status.main, status.small)
    }

    fn main_only(text: &str) -> (String, Option<String>) {
        (text.to_owned(), None)
    }

    #[test]
    fn row_status_follows_the_sport_and_keeps_short() {
        let mut football = snapshot("football/pl/a-b");
        football.status = MatchStatus::Live;
        football.period = 2;
        football.clock = Some(Clock {
            secs: 66 * 60,
            running: true,
            at_ms: 1_000,
        });
        assert_eq!(status(&football, 1_000), main_only("67'"));
        assert_eq!(status(&football, 1_000 + 60_000), main_only("68'"));
        assert_eq!(status_text(&football, 1_000), "67' · 2nd half");
        football.status = MatchStatus::Break;
        football.period = 1;
        assert_eq!(status(&football, 0), main_only("HT"));
        football.period = 2;
        assert_eq!(
            status(&football, 0),
            ("Break".to_owned(), Some("ET next".to_owned()))
        );
        assert_eq!(status_text(&football, 0), "Break · extra time next");
        football.status = MatchStatus::Finished;
        football.shootout = Some(Score::new(4, 3));
        football.period = 5;
        assert_eq!(
            status(&football, 0),
            ("FT".to_owned(), Some("Pens".to_owned()))
        );
        assert_eq!(status_text(&football, 0), "Full time · after penalties");
        assert_eq!(score_label(&football), "0 – 0 (4–3 pens)");

        let mut basketball = snapshot("basketball/nba/a-b");
        basketball.status = MatchStatus::Live;
        basketball.period = 3;
        basketball.clock = Some(Clock {
            secs: 7 * 60 + 48,
            running: false,
            at_ms: 0,
        });
        assert_eq!(
            status(&basketball, 0),
            ("Q3".to_owned(), Some("04:12".to_owned()))
        );
        assert_eq!(status_text(&basketball, 0), "Q3 · 04:12 left");

        let mut tennis = snapshot("tennis/wimbledon/a-b");
        tennis.status = MatchStatus::Live;
        tennis.period = 3;
        assert_eq!(status(&tennis, 0), main_only("Set 3"));

        for state in [
            MatchStatus::Suspended,
            MatchStatus::Abandoned,
            MatchStatus::Postponed,
        ] {
            football.status = state;
            let row = row_status(&football, 0);
            assert!(row.main.chars().count() <= 6, "{row:?}");
            assert!(row.full.len() > row.main.len(), "{row:?}");
        }
    }

    #[test]
    fn a_shootout_shows_no_clock_anywhere() {
        let topic = MatchTopic::parse("football/wc/arg-fra").unwrap();
        let mut snapshot = MatchSnapshot::new(topic.clone());
        let kinds = [
            (None, EventKind::PeriodStarted { period: 1 }),
            (Some(90 * 60), EventKind::PeriodStarted { period: 3 }),
            (Some(120 * 60), EventKind::PeriodEnded { period: 4 }),
            (Some(105 * 60), EventKind::PeriodStarted { period: 5 }),
            (
                Some(106 * 60),
                EventKind::ShootoutKick {
                    side: Side::Home,
                    player: Some("Messi".into()),
                    scored: true,
                },
            ),
        ];
        for (index, (clock_secs, kind)) in kinds.into_iter().enumerate() {
            let event = ScoreEvent {
                match_topic: topic.clone(),
                epoch: 0,
                seq: index as u64 + 1,
                ts_ms: 1_000 * (index as u64 + 1),
                clock_secs,
                prev_critical_seq: None,
                kind,
            };
            apply(&mut snapshot, &event).unwrap();
        }
        assert_eq!(status(&snapshot, 600_000), main_only("Pens"));
        assert_eq!(status_text(&snapshot, 600_000), "Penalty shoot-out");
        let kick = snapshot.timeline.back().unwrap();
        assert_eq!(entry_time(&snapshot, kick), "Pens");
        assert_eq!(entry_text(&snapshot, kick), "Penalty ARG scored — Messi");
        assert_eq!(shootout_kicks(&snapshot, Side::Home), vec![true]);
        assert_eq!(score_label(&snapshot), "0 – 0 (1–0 pens)");
    }

    #[test]
    fn a_match_published_without_its_announcement_reads_as_live_with_names() {
        // The README's redis-cli example: a goal as the first event, no match_scheduled.
        let topic = MatchTopic::parse("football/friendlies/home-away").unwrap();
        let mut snapshot = MatchSnapshot::new(topic.clone());
        let event = ScoreEvent {
            match_topic: topic,
            epoch: 0,
            seq: 1,
            ts_ms: 1_764_000_000_000,
            clock_secs: None,
            prev_critical_seq: None,
            kind: goal(Side::Home, "You"),
        };
        apply(&mut snapshot, &event).unwrap();
        let row = row_status(&snapshot, 1_764_000_000_000);
        assert_eq!((row.main.as_str(), row.live), ("Live", true));
        assert!(!status_text(&snapshot, 0).contains("pre-match"));
        assert_eq!(match_title(&snapshot), "Home v Away");
        assert_eq!(score_label(&snapshot), "1 – 0");
        assert_eq!(last_scorer(&snapshot, Side::Home).as_deref(), Some("You"));
        let mut unnamed = MatchSnapshot::new(MatchTopic::parse("football/x/final").unwrap());
        unnamed.status = MatchStatus::Live;
        assert_eq!(match_title(&unnamed), "Home v Away");
        let coded = MatchSnapshot::new(MatchTopic::parse("football/x/ars-che-2025").unwrap());
        assert_eq!(match_title(&coded), "ARS v CHE");
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
        let mut upcoming = snapshot("football/pl/a-b");
        upcoming.seq = 1;
        upcoming.kickoff_ms = Some(kickoff_ms);
        assert_eq!(
            status(&upcoming, kickoff_ms - 3_600_000),
            ("14:00".to_owned(), Some("UTC".to_owned()))
        );
        assert_eq!(
            status(&upcoming, kickoff_ms - 4 * MILLIS_PER_DAY),
            ("28 Nov".to_owned(), Some("14:00".to_owned()))
        );
        assert_eq!(score_label(&upcoming), "–");
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }

    #[test]
    fn scorers_for_the_row_and_the_detail() {
        let mut football = snapshot("football/wc/arg-fra");
        football.timeline = vec![
            entry(3, 1, Some(22 * 60), {
                let mut kind = goal(Side::Home, "Messi");
                if let EventKind::Goal { penalty, .. } = &mut kind {
                    *penalty = true;
                }
                kind
            }),
            entry(4, 1, Some(35 * 60), goal(Side::Home, "Di María")),
            entry(5, 2, Some(79 * 60), goal(Side::Away, "Mbappé")),
            entry(6, 4, Some(107 * 60), goal(Side::Home, "Messi")),
            entry(7, 4, Some(117 * 60), goal(Side::Home, "Martínez")),
        ]
        .into();
        football.timeline[4].voided = true;
        assert_eq!(
            last_scorer(&football, Side::Home).as_deref(),
            Some("Messi 108'")
        );
        assert_eq!(
            last_scorer(&football, Side::Away).as_deref(),
            Some("Mbappé 80'")
        );
        assert_eq!(
            scorers(&football, Side::Home),
            vec!["Messi 23' (pen), 108'", "Di María 36'"]
        );
        assert_eq!(last_scorer(&snapshot("football/pl/a-b"), Side::Home), None);
    }

    #[test]
    fn tennis_rows_show_the_set_in_play_and_who_serves() {
        let mut tennis = snapshot("tennis/wimbledon/a-b");
        tennis.status = MatchStatus::Live;
        tennis.tennis = Some(TennisFormat {
            first_server: Some(Side::Home),
            ..TennisFormat::default()
        });
        tennis.periods = vec![
            PeriodScore {
                period: 1,
                home: 6,
                away: 4,
                tiebreak: None,
            },
            PeriodScore {
                period: 2,
                home: 2,
                away: 1,
                tiebreak: None,
            },
        ];
        tennis.game = Some(TennisGame {
            home: 2,
            away: 1,
            tiebreak: false,
        });
        assert_eq!(current_set_games(&tennis), Some((2, 1)));
        // Thirteen games played: the away player serves the fourteenth.
        assert_eq!(serving(&tennis), Some(Side::Away));
        tennis.status = MatchStatus::Finished;
        assert_eq!(serving(&tennis), None, "nobody serves after the match");
        tennis.status = MatchStatus::Live;
        tennis.tennis = None;
        assert_eq!(serving(&tennis), None, "unknown without a first server");
    }

    #[test]
    fn timeline_lines_name_team_player_and_corrections_in_plain_words() {
        let mut football = snapshot("football/pl/a-b");
        let mut scored = entry(7, 2, Some(66 * 60), goal(Side::Home, "Saka"));
        assert_eq!(entry_time(&football, &scored), "67'");
        assert_eq!(entry_text(&football, &scored), "Goal ARS — Saka");
        scored.voided = true;
        assert_eq!(
            entry_text(&football, &scored),
            "Goal ARS — Saka — disallowed"
        );
        football.timeline = vec![scored.clone()].into();
        let voiding = entry(
            8,
            2,
            None,
            EventKind::Correction {
                corrects: 7,
                replacement: None,
            },
        );
        assert_eq!(entry_text(&football, &voiding), "Goal disallowed — Saka");
        let rescored = entry(
            9,
            2,
            None,
            EventKind::Correction {
                corrects: 7,
                replacement: Some(Box::new(goal(Side::Home, "Rice"))),
            },
        );
        assert_eq!(entry_text(&football, &rescored), "Scorer changed — Rice");
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
        assert_eq!(stat_name("possession_pct"), "Possession %");
        assert_eq!(stat_name("shots_on_target"), "Shots on target");
    }

    #[test]
    fn progression_steps_at_each_score_and_skips_overturned_goals() {
        let mut football = snapshot("football/pl/a-b");
        football.timeline = vec![
            entry(2, 1, Some(0), EventKind::PeriodStarted { period: 1 }),
            entry(3, 1, Some(10 * 60), goal(Side::Home, "Saka")),
            entry(4, 1, Some(20 * 60), goal(Side::Away, "Palmer")),
            entry(5, 2, Some(70 * 60), goal(Side::Home, "Rice")),
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
    fn tennis_progression_counts_games_by_games_played_not_by_wall_time() {
        let mut tennis = snapshot("tennis/wimbledon/a-b");
        tennis.periods = vec![PeriodScore {
            period: 1,
            home: 3,
            away: 2,
            tiebreak: None,
        }];
        // Five games, all published in the same instant (a replay started with --from), and
        // the timeline's cap dropped the first two.
        let mut kept: Vec<TimelineEntry> = [Side::Home, Side::Away, Side::Home]
            .into_iter()
            .enumerate()
            .map(|(index, side)| entry(10 + index as u64, 1, None, EventKind::Point { side }))
            .collect();
        for game in &mut kept {
            game.ts_ms = 5_000;
        }
        tennis.timeline = kept.into();
        let plot = progression(&tennis);
        assert_eq!((plot.x_label, plot.y_label), ("games played", "games"));
        assert_eq!(
            plot.home,
            vec![
                [0.0, 1.0],
                [3.0, 1.0],
                [3.0, 2.0],
                [5.0, 2.0],
                [5.0, 3.0],
                [5.0, 3.0]
            ]
        );
        assert_eq!(
            plot.away,
            vec![[0.0, 1.0], [4.0, 1.0], [4.0, 2.0], [5.0, 2.0]]
        );
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_204), "1,204");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(watching_label(1_204), "1,204 watching");
        assert_eq!(watching_label(1), "1 watching");
    }

    #[test]
    fn delay_label_says_how_far_behind_the_board_is() {
        assert_eq!(delay_label(DelayStatus::Live), None);
        assert_eq!(
            delay_label(DelayStatus::Delayed { secs: 40 }).as_deref(),
            Some("Delayed 40 s")
        );
        assert_eq!(
            delay_label(DelayStatus::Changing {
                from_secs: 0,
                to_secs: 40
            })
            .as_deref(),
            Some("Delaying 40 s…")
        );
        assert_eq!(
            delay_label(DelayStatus::Changing {
                from_secs: 40,
                to_secs: 0
            })
            .as_deref(),
            Some("Going live…")
        );
        assert_eq!(
            delay_label(DelayStatus::NotApplied {
                asked_secs: 40,
                shown_secs: 0
            })
            .as_deref(),
            Some("Live: the server did not delay by 40 s")
        );
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
