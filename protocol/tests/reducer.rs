//! The match reducer, from the outside: worked examples per sport through one [`check`] helper,
//! then properties over generated valid matches (resume from a stored snapshot, duplicates and
//! reordering detected, scores that agree with an independent model, all-or-nothing errors).

use proptest::prelude::*;
use proptest::sample::Index;
use scoreline_protocol::test_support::goal_by;
use scoreline_protocol::{
    Applied, ApplyError, CardColour, CardTally, EventKind, FinalSet, MatchSnapshot, MatchStatus,
    MatchTopic, Score, ScoreEvent, Side, Sport, Team, TennisFormat, apply,
};

/// 2026-01-01 15:00 UTC, the kickoff of every example match.
const KICKOFF_MS: u64 = 1_767_279_600_000;

const FOOTBALL: &str = "football/test-league/home-away";
const BASKETBALL: &str = "basketball/test-league/home-away";
const TENNIS: &str = "tennis/test-open/home-away";

// ---------------------------------------------------------------------------------------------
// Building events
// ---------------------------------------------------------------------------------------------

/// Numbers events the way a feed does: seq from 1 without gaps, one second apart.
struct Feed {
    topic: MatchTopic,
    epoch: u64,
    seq: u64,
    ts_ms: u64,
    events: Vec<ScoreEvent>,
}

impl Feed {
    fn new(topic: &str) -> Feed {
        Feed {
            topic: MatchTopic::parse(topic).expect("valid test topic"),
            epoch: 0,
            seq: 0,
            ts_ms: KICKOFF_MS,
            events: Vec::new(),
        }
    }

    /// Appends an event without a clock reading; returns its seq.
    fn push(&mut self, kind: EventKind) -> u64 {
        self.push_at(None, kind)
    }

    /// Appends an event with an optional game-clock reading; returns its seq.
    fn push_at(&mut self, clock_secs: Option<u32>, kind: EventKind) -> u64 {
        self.seq += 1;
        self.ts_ms += 1000;
        self.events.push(ScoreEvent {
            match_topic: self.topic.clone(),
            epoch: self.epoch,
            seq: self.seq,
            ts_ms: self.ts_ms,
            clock_secs,
            prev_critical_seq: None,
            kind,
        });
        self.seq
    }

    /// Tennis: one point per `H` (home) or `A` (away); anything else is ignored.
    fn points(&mut self, pattern: &str) {
        for side in pattern.chars().filter_map(side_of) {
            self.push(EventKind::Point { side });
        }
    }

    /// Tennis: one game to love per `H` or `A`.
    fn games(&mut self, pattern: &str) {
        for side in pattern.chars().filter_map(side_of) {
            for _ in 0..4 {
                self.push(EventKind::Point { side });
            }
        }
    }
}

fn side_of(letter: char) -> Option<Side> {
    match letter {
        'H' => Some(Side::Home),
        'A' => Some(Side::Away),
        _ => None,
    }
}

fn scheduled(tennis: Option<TennisFormat>) -> EventKind {
    EventKind::MatchScheduled {
        home: Team::new("Home", "HOM"),
        away: Team::new("Away", "AWA"),
        kickoff_ms: KICKOFF_MS,
        competition: None,
        venue: None,
        period_secs: None,
        tennis,
    }
}

fn card(side: Side, card: CardColour) -> EventKind {
    EventKind::Card {
        side,
        player: None,
        card,
    }
}

fn points(side: Side, points: u8) -> EventKind {
    EventKind::Points {
        side,
        points,
        player: None,
    }
}

fn kick(side: Side, scored: bool) -> EventKind {
    EventKind::ShootoutKick {
        side,
        player: None,
        scored,
    }
}

fn void(corrects: u64) -> EventKind {
    EventKind::Correction {
        corrects,
        replacement: None,
    }
}

fn replace(corrects: u64, replacement: EventKind) -> EventKind {
    EventKind::Correction {
        corrects,
        replacement: Some(Box::new(replacement)),
    }
}

fn stat(name: &str, home: u32, away: u32) -> EventKind {
    EventKind::Stat {
        name: name.to_owned(),
        home,
        away,
    }
}

// ---------------------------------------------------------------------------------------------
// The data-driven helper
// ---------------------------------------------------------------------------------------------

/// Folds `events` into a fresh snapshot of their match and compares a one-line summary of the
/// result, followed by one line per event that reported a gap or was refused, with `expected`
/// (compared line by line, surrounding white space ignored). Returns the snapshot for any further
/// look.
fn check(events: &[ScoreEvent], expected: &str) -> MatchSnapshot {
    let mut snapshot = MatchSnapshot::new(events[0].match_topic.clone());
    let mut lines = Vec::new();
    for event in events {
        let before = snapshot.clone();
        match apply(&mut snapshot, event) {
            Ok(Applied {
                missed: Some(missed),
                ..
            }) => lines.push(format!("#{} missed {missed:?}", event.seq)),
            Ok(Applied {
                skipped: Some(skipped),
                ..
            }) => lines.push(format!("#{} skipped {skipped:?}", event.seq)),
            Ok(Applied { .. }) => {}
            Err(error) => {
                assert_eq!(
                    snapshot, before,
                    "#{} failed but changed the snapshot",
                    event.seq
                );
                lines.push(format!("#{} {error:?}", event.seq));
            }
        }
    }
    lines.insert(0, summary(&snapshot));
    let actual = lines.join("\n");
    let expected = expected
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(actual, expected, "\nactual:\n{actual}\n");
    snapshot
}

/// The parts of a snapshot a fan sees, on one line; empty parts are left out.
fn summary(snapshot: &MatchSnapshot) -> String {
    let mut text = format!(
        "{:?} period {} score {}-{}",
        snapshot.status, snapshot.period, snapshot.score.home, snapshot.score.away
    );
    if !snapshot.periods.is_empty() {
        text.push_str(" periods");
        for period in &snapshot.periods {
            text.push_str(&format!(
                " {}:{}-{}",
                period.period, period.home, period.away
            ));
            if let Some(tiebreak) = period.tiebreak {
                text.push_str(&format!("({}-{})", tiebreak.home, tiebreak.away));
            }
        }
    }
    if let Some(game) = snapshot.game {
        let kind = if game.tiebreak { "tiebreak" } else { "game" };
        text.push_str(&format!(
            " {kind} {}-{}",
            game.call(Side::Home),
            game.call(Side::Away)
        ));
    }
    if let Some(shootout) = snapshot.shootout {
        text.push_str(&format!(" shootout {}-{}", shootout.home, shootout.away));
    }
    if snapshot.cards != CardTally::default() {
        let (home, away) = (snapshot.cards.home, snapshot.cards.away);
        text.push_str(&format!(
            " cards {}y{}r-{}y{}r",
            home.yellow, home.red, away.yellow, away.red
        ));
    }
    if let Some(winner) = snapshot.winner {
        text.push_str(&format!(" winner {winner:?}"));
    }
    let voided: Vec<u64> = snapshot
        .timeline
        .iter()
        .filter(|entry| entry.voided)
        .map(|entry| entry.seq)
        .collect();
    if !voided.is_empty() {
        text.push_str(&format!(" voided {voided:?}"));
    }
    let amended: Vec<u64> = snapshot
        .timeline
        .iter()
        .filter(|entry| entry.amended)
        .map(|entry| entry.seq)
        .collect();
    if !amended.is_empty() {
        text.push_str(&format!(" amended {amended:?}"));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Football
// ---------------------------------------------------------------------------------------------

#[test]
fn football_goals_own_goal_cards_and_shootout_winner() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(scheduled(None));
    feed.push(EventKind::MatchStarted);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push_at(Some(600), goal_by(Side::Home, "Saka"));
    feed.push(card(Side::Away, CardColour::Yellow));
    // An own goal counts for the side named, the scorer's opponents.
    feed.push(EventKind::Goal {
        side: Side::Away,
        player: Some("Saliba".into()),
        own_goal: true,
        penalty: false,
    });
    // A second yellow is one more yellow and a sending-off.
    feed.push(card(Side::Away, CardColour::SecondYellow));
    feed.push(EventKind::PeriodEnded { period: 1 });
    feed.push(EventKind::PeriodStarted { period: 2 });
    feed.push(EventKind::Goal {
        side: Side::Home,
        player: Some("Odegaard".into()),
        own_goal: false,
        penalty: true,
    });
    feed.push(card(Side::Home, CardColour::Red));
    feed.push(EventKind::Substitution {
        side: Side::Home,
        player_on: Some("Havertz".into()),
        player_off: Some("Saka".into()),
    });
    feed.push(goal_by(Side::Away, "Palmer"));
    feed.push(EventKind::PeriodEnded { period: 2 });
    for period in 3..=4 {
        feed.push(EventKind::PeriodStarted { period });
        feed.push(EventKind::PeriodEnded { period });
    }
    feed.push(EventKind::PeriodStarted { period: 5 });
    for (home, away) in [
        (true, true),
        (true, false),
        (false, true),
        (true, true),
        (true, false),
    ] {
        feed.push(kick(Side::Home, home));
        feed.push(kick(Side::Away, away));
    }
    feed.push(EventKind::MatchEnded { winner: None });
    check(
        &feed.events,
        "Finished period 5 score 2-2 periods 1:1-1 2:1-1 3:0-0 4:0-0 5:0-0 shootout 4-3 \
         cards 0y1r-2y1r winner Home",
    );
}

#[test]
fn football_result_without_shootout_and_points_after_the_whistle() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(scheduled(None));
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push(goal_by(Side::Away, "Palmer"));
    feed.push(EventKind::PeriodEnded { period: 2 });
    feed.push(EventKind::MatchEnded { winner: None });
    feed.push(goal_by(Side::Home, "Saka"));
    feed.push(kick(Side::Home, true));
    check(
        &feed.events,
        r#"Finished period 1 score 0-1 periods 1:0-1 winner Away
           #6 MatchOver("goal")
           #7 MatchOver("shootout_kick")"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Basketball
// ---------------------------------------------------------------------------------------------

#[test]
fn basketball_quarter_scores_and_overtime() {
    let mut feed = Feed::new(BASKETBALL);
    feed.push(scheduled(None));
    let plays: [&[(Side, u8)]; 5] = [
        &[(Side::Home, 3), (Side::Away, 2), (Side::Home, 1)],
        &[(Side::Away, 3), (Side::Away, 2)],
        &[(Side::Home, 2), (Side::Home, 2)],
        &[(Side::Away, 1), (Side::Home, 1), (Side::Away, 2)],
        &[(Side::Home, 3), (Side::Away, 1)],
    ];
    for (index, quarter) in plays.iter().enumerate() {
        let period = index as u8 + 1;
        feed.push(EventKind::PeriodStarted { period });
        for &(side, value) in *quarter {
            feed.push(points(side, value));
        }
        feed.push(EventKind::PeriodEnded { period });
    }
    feed.push(EventKind::MatchEnded { winner: None });
    feed.push(points(Side::Away, 4));
    feed.push(points(Side::Away, 2));
    check(
        &feed.events,
        r#"Finished period 5 score 12-11 periods 1:4-2 2:0-5 3:4-0 4:1-3 5:3-1 winner Home
           #25 InvalidPoints(4)
           #26 MatchOver("points")"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Tennis
// ---------------------------------------------------------------------------------------------

fn tennis_feed(format: TennisFormat) -> Feed {
    let mut feed = Feed::new(TENNIS);
    feed.push(scheduled(Some(format)));
    feed.push(EventKind::MatchStarted);
    feed
}

#[test]
fn tennis_game_goes_through_deuce_and_advantage() {
    let cases = [
        ("H", "Live period 1 score 0-0 periods 1:0-0 game 15-0"),
        ("HHA", "Live period 1 score 0-0 periods 1:0-0 game 30-15"),
        ("HHAAA", "Live period 1 score 0-0 periods 1:0-0 game 30-40"),
        ("HHAAAH", "Live period 1 score 0-0 periods 1:0-0 game 40-40"),
        (
            "HHAAAHH",
            "Live period 1 score 0-0 periods 1:0-0 game AD-40",
        ),
        (
            "HHAAAHHA",
            "Live period 1 score 0-0 periods 1:0-0 game 40-40",
        ),
        ("HHAAAHHAAA", "Live period 1 score 0-0 periods 1:0-1"),
    ];
    for (pattern, expected) in cases {
        let mut feed = tennis_feed(TennisFormat::default());
        feed.points(pattern);
        check(&feed.events, expected);
    }
}

#[test]
fn tennis_set_six_four_and_a_tiebreak_seven_six() {
    let mut feed = tennis_feed(TennisFormat::default());
    feed.games("HAHAHAHAHH");
    // 6-5 is not a set; 6-6 starts a tie-break, won 7-5 by the away player.
    feed.games("HAHAHAHAHA H A");
    feed.points("AAAAA HHHHH AA");
    feed.points("H");
    check(
        &feed.events,
        "Live period 3 score 1-1 periods 1:6-4 2:6-7(5-7) 3:0-0 game 15-0",
    );
}

#[test]
fn tennis_deciding_set_follows_each_final_set_rule() {
    let cases = [
        (
            FinalSet::TiebreakTo7,
            "HAHAHAHAHAHA",
            "HHHHHAAAAAHH",
            "Live period 3 score 2-1 periods 1:6-4 2:4-6 3:7-6(7-5)",
        ),
        (
            // Seven points with a lead of two do not end a first-to-10 tie-break.
            FinalSet::TiebreakTo10,
            "HAHAHAHAHAHA",
            "AAAAA HHHHHHH AAA HHH",
            "Live period 3 score 2-1 periods 1:6-4 2:4-6 3:7-6(10-8)",
        ),
        (
            // No tie-break: 7-6 is not a set, 10-8 is.
            FinalSet::Advantage,
            "HAHAHAHAHAHA HAAHHH",
            "",
            "Live period 3 score 2-1 periods 1:6-4 2:4-6 3:10-8",
        ),
        (
            // Games go on past 6-6 to a tie-break at 12-12.
            FinalSet::TiebreakAt12,
            "HAHAHAHAHAHA HAHAHAHAHAHA",
            "HHHHHHH",
            "Live period 3 score 2-1 periods 1:6-4 2:4-6 3:13-12(7-0)",
        ),
    ];
    for (final_set, games, tiebreak, expected) in cases {
        let mut feed = tennis_feed(TennisFormat {
            best_of: 3,
            final_set,
            first_server: None,
        });
        feed.games("HAHAHAHAHH");
        feed.games("AHAHAHAHAA");
        feed.games(games);
        feed.points(tiebreak);
        check(&feed.events, expected);
    }
}

#[test]
fn tennis_points_after_the_match_is_decided_are_refused() {
    let mut feed = tennis_feed(TennisFormat {
        best_of: 3,
        final_set: FinalSet::TiebreakTo10,
        first_server: None,
    });
    feed.games("HAHAHAHAHH HHHHHH");
    let decided_at = feed.seq;
    feed.points("A");
    // The refused point was never applied, so the next event reports its seq as missed.
    feed.push(EventKind::MatchEnded { winner: None });
    feed.points("H");
    check(
        &feed.events,
        &format!(
            r#"Finished period 2 score 2-0 periods 1:6-4 2:6-0 winner Home
               #{} MatchOver("point")
               #{} missed {}..{}
               #{} MatchOver("point")"#,
            decided_at + 1,
            decided_at + 2,
            decided_at + 1,
            decided_at + 2,
            decided_at + 3
        ),
    );
}

#[test]
fn tennis_five_setter_needs_three_sets() {
    let mut feed = tennis_feed(TennisFormat {
        best_of: 5,
        final_set: FinalSet::TiebreakTo10,
        first_server: None,
    });
    feed.games("HHHHHH HHHHHH");
    feed.points("H");
    check(
        &feed.events,
        "Live period 3 score 2-0 periods 1:6-0 2:6-0 3:0-0 game 15-0",
    );
}

// ---------------------------------------------------------------------------------------------
// Corrections
// ---------------------------------------------------------------------------------------------

#[test]
fn voiding_a_goal_takes_it_off_the_score() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let ruled_out = feed.push(goal_by(Side::Home, "Saka"));
    feed.push(goal_by(Side::Away, "Palmer"));
    feed.push(void(ruled_out));
    feed.push(void(ruled_out));
    check(
        &feed.events,
        "Live period 1 score 0-1 periods 1:0-1 voided [2]
         #5 AlreadyVoided(2)",
    );
}

#[test]
fn replacing_a_goal_amends_its_entry() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let first = feed.push(goal_by(Side::Home, "Saka"));
    feed.push(EventKind::PeriodEnded { period: 1 });
    feed.push(EventKind::PeriodStarted { period: 2 });
    // Another scorer: the score stays.
    feed.push(replace(first, goal_by(Side::Home, "Odegaard")));
    // The goal was for the other side after all: it moves, in the half it was scored in.
    let second = feed.push(goal_by(Side::Home, "Rice"));
    feed.push(replace(
        second,
        EventKind::Goal {
            side: Side::Away,
            player: Some("Rice".into()),
            own_goal: true,
            penalty: false,
        },
    ));
    let snapshot = check(
        &feed.events,
        "Live period 2 score 1-1 periods 1:1-0 2:0-1 amended [2, 6]",
    );
    let entry = snapshot.timeline.iter().find(|entry| entry.seq == first);
    assert_eq!(
        entry.map(|entry| &entry.kind),
        Some(&goal_by(Side::Home, "Odegaard"))
    );
}

#[test]
fn a_scorer_or_a_basket_can_be_corrected_after_the_final_whistle() {
    // Regression: the replacement was checked as a new score, so after the match it was refused
    // as MatchOver, while voiding the same goal was accepted.
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let scored = feed.push(goal_by(Side::Home, "Saka"));
    feed.push(EventKind::MatchEnded { winner: None });
    feed.push(replace(scored, goal_by(Side::Home, "Odegaard")));
    feed.push(replace(scored, goal_by(Side::Away, "Saliba")));
    let snapshot = check(
        &feed.events,
        "Finished period 1 score 0-1 periods 1:0-1 winner Away amended [2]",
    );
    assert_eq!(snapshot.timeline[1].kind, goal_by(Side::Away, "Saliba"));

    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::PeriodStarted { period: 4 });
    let basket = feed.push(points(Side::Away, 3));
    feed.push(points(Side::Home, 2));
    feed.push(EventKind::MatchEnded { winner: None });
    feed.push(replace(basket, points(Side::Away, 2)));
    feed.push(replace(basket, points(Side::Away, 5)));
    check(
        &feed.events,
        "Finished period 4 score 2-2 periods 4:2-2 amended [2]
         #6 InvalidPoints(5)",
    );
}

#[test]
fn corrections_that_cannot_be_applied_are_refused() {
    let mut feed = tennis_feed(TennisFormat::default());
    feed.points("HHH");
    let game_point = feed.seq + 1;
    feed.points("H");
    // A tennis point is never correctable; an ordinary point is not even kept in the timeline.
    feed.push(void(game_point));
    feed.push(void(3));
    feed.push(void(99));
    check(
        &feed.events,
        r#"Live period 1 score 0-0 periods 1:1-0
           #7 NotCorrectable("point")
           #8 UnknownCorrectionTarget(3)
           #9 UnknownCorrectionTarget(99)"#,
    );

    let mut feed = Feed::new(FOOTBALL);
    let started = feed.push(EventKind::PeriodStarted { period: 1 });
    let scored = feed.push(goal_by(Side::Home, "Saka"));
    feed.push(void(started));
    feed.push(replace(scored, EventKind::Point { side: Side::Home }));
    feed.push(replace(scored, points(Side::Home, 2)));
    feed.push(replace(scored, EventKind::MatchStarted));
    check(
        &feed.events,
        r#"Live period 1 score 1-0 periods 1:1-0
           #3 NotCorrectable("period_started")
           #4 NotCorrectable("point")
           #5 WrongSport { kind: "points", sport: Football }
           #6 NotCorrectable("match_started")"#,
    );
}

#[test]
fn corrected_cards_and_points_and_a_changed_result() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let booking = feed.push(card(Side::Away, CardColour::SecondYellow));
    feed.push(replace(booking, card(Side::Away, CardColour::Yellow)));
    let winner = feed.push(goal_by(Side::Home, "Saka"));
    feed.push(EventKind::MatchEnded { winner: None });
    feed.push(void(winner));
    check(
        &feed.events,
        "Finished period 1 score 0-0 periods 1:0-0 cards 0y0r-1y0r voided [4] amended [2]",
    );

    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let three = feed.push(points(Side::Home, 3));
    feed.push(EventKind::PeriodStarted { period: 2 });
    feed.push(replace(three, points(Side::Home, 2)));
    check(
        &feed.events,
        "Live period 2 score 2-0 periods 1:2-0 2:0-0 amended [2]",
    );
}

// ---------------------------------------------------------------------------------------------
// Clock, statistics, sports, epochs, gaps
// ---------------------------------------------------------------------------------------------

#[test]
fn clock_runs_on_from_the_last_reading_and_stops_at_breaks() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    let started_ms = feed.ts_ms;
    let mut snapshot = check(&feed.events, "Live period 1 score 0-0 periods 1:0-0");
    let display = |snapshot: &MatchSnapshot, after_secs: u64| {
        snapshot
            .clock_display(started_ms + after_secs * 1000)
            .unwrap_or_default()
    };
    assert_eq!(display(&snapshot, 0), "1'");
    assert_eq!(display(&snapshot, 22 * 60 + 30), "23'");
    assert_eq!(display(&snapshot, 47 * 60), "45+3'");

    // A reading corrects the extrapolation; a stopped clock no longer moves.
    feed.push_at(Some(30 * 60), EventKind::Clock { running: false });
    feed.push(EventKind::Clock { running: true });
    feed.push(EventKind::PeriodEnded { period: 1 });
    feed.push(EventKind::PeriodStarted { period: 2 });
    snapshot = check(&feed.events, "Live period 2 score 0-0 periods 1:0-0 2:0-0");
    let clock = snapshot.clock.expect("a football clock");
    assert_eq!((clock.secs, clock.running), (45 * 60, true));
    assert_eq!(display(&snapshot, 4 + 60), "47'");

    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push_at(Some(600), EventKind::Clock { running: false });
    feed.push(EventKind::PeriodEnded { period: 1 });
    let snapshot = check(&feed.events, "Break period 1 score 0-0 periods 1:0-0");
    assert_eq!(
        snapshot.clock_display(feed.ts_ms + 3_600_000),
        Some("11'".into())
    );

    // FIBA quarters of ten minutes count down from 10:00.
    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::MatchScheduled {
        home: Team::new("Home", "HOM"),
        away: Team::new("Away", "AWA"),
        kickoff_ms: KICKOFF_MS,
        competition: None,
        venue: None,
        period_secs: Some(600),
        tennis: None,
    });
    feed.push(EventKind::PeriodStarted { period: 1 });
    let snapshot = check(&feed.events, "Live period 1 score 0-0 periods 1:0-0");
    assert_eq!(
        snapshot.clock_display(feed.ts_ms + 90_000),
        Some("08:30".into())
    );
}

#[test]
fn a_penalty_shootout_has_no_clock() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push(EventKind::PeriodEnded { period: 1 });
    for period in 2..=4 {
        let start = Sport::Football.period_start_secs(period);
        feed.push_at(Some(start), EventKind::PeriodStarted { period });
        feed.push_at(Some(start + 15 * 60), EventKind::PeriodEnded { period });
    }
    let before_shootout = check(
        &feed.events,
        "Break period 4 score 0-0 periods 1:0-0 2:0-0 3:0-0 4:0-0",
    );
    assert_eq!(
        before_shootout
            .clock
            .map(|clock| (clock.secs, clock.running)),
        Some((120 * 60, false)),
        "extra time ends with the clock stopped at 120:00"
    );

    // Feeds may stamp the shoot-out's events with a clock reading (the end of extra time, or a
    // running count); none of them may start a clock.
    feed.push_at(Some(105 * 60), EventKind::PeriodStarted { period: 5 });
    let started = check(
        &feed.events,
        "Live period 5 score 0-0 periods 1:0-0 2:0-0 3:0-0 4:0-0 5:0-0",
    );
    assert_eq!(started.clock, None, "a shoot-out is played kick by kick");
    assert_eq!(started.clock_display(feed.ts_ms + 60_000), None);

    feed.push_at(Some(106 * 60), kick(Side::Home, true));
    feed.push_at(Some(106 * 60), EventKind::Clock { running: true });
    feed.push(kick(Side::Away, false));
    let kicking = check(
        &feed.events,
        "Live period 5 score 0-0 periods 1:0-0 2:0-0 3:0-0 4:0-0 5:0-0 shootout 1-0",
    );
    assert_eq!(kicking.clock, None);
    assert_eq!(kicking.clock_display(feed.ts_ms + 600_000), None);
}

#[test]
fn statistics_are_capped_but_known_ones_still_update() {
    let mut feed = Feed::new(FOOTBALL);
    for index in 0..32 {
        feed.push(stat(&format!("stat_{index:02}"), index, 0));
    }
    feed.push(stat("one_too_many", 1, 1));
    // A refused event was never applied, so the next one reports its seq as missed.
    feed.push(stat("stat_00", 7, 3));
    let snapshot = check(
        &feed.events,
        "Scheduled period 0 score 0-0
         #33 TooManyStats
         #34 missed 33..34",
    );
    assert_eq!(snapshot.stats.len(), 32);
    assert_eq!(snapshot.stats.get("stat_00"), Some(&Score::new(7, 3)));
}

#[test]
fn events_of_another_sport_or_match_are_refused() {
    let mut feed = Feed::new(FOOTBALL);
    feed.push(EventKind::Point { side: Side::Home });
    feed.push(points(Side::Home, 2));
    feed.push(EventKind::PeriodStarted { period: 0 });
    feed.push(EventKind::PeriodEnded { period: 21 });
    check(
        &feed.events,
        r#"Scheduled period 0 score 0-0
           #1 WrongSport { kind: "point", sport: Football }
           #2 WrongSport { kind: "points", sport: Football }
           #3 InvalidPeriod(0)
           #4 InvalidPeriod(21)"#,
    );

    let mut feed = Feed::new(TENNIS);
    feed.push(goal_by(Side::Home, "Saka"));
    feed.push(card(Side::Home, CardColour::Red));
    check(
        &feed.events,
        r#"Scheduled period 0 score 0-0
           #1 WrongSport { kind: "goal", sport: Tennis }
           #2 WrongSport { kind: "card", sport: Tennis }"#,
    );

    // A sport the reducer does not model keeps a plain score of goals and points.
    let mut feed = Feed::new("curling/test-league/home-away");
    feed.push(goal_by(Side::Home, "Skip"));
    feed.push(points(Side::Away, 3));
    check(&feed.events, "Live period 0 score 1-3 periods 1:1-3");

    let mut snapshot = MatchSnapshot::new(MatchTopic::parse(FOOTBALL).expect("topic"));
    let mut other = Feed::new("football/test-league/other-match");
    other.push(EventKind::MatchStarted);
    assert!(matches!(
        apply(&mut snapshot, &other.events[0]),
        Err(ApplyError::WrongMatch { .. })
    ));
}

#[test]
fn epochs_separate_histories() {
    let mut feed = Feed::new(FOOTBALL);
    feed.epoch = 3;
    feed.push(EventKind::MatchStarted);
    feed.push(goal_by(Side::Home, "Saka"));
    feed.epoch = 4;
    feed.push(goal_by(Side::Home, "Saka"));
    feed.epoch = 2;
    feed.push(goal_by(Side::Home, "Saka"));
    feed.epoch = 3;
    feed.push(goal_by(Side::Away, "Palmer"));
    feed.push(goal_by(Side::Away, "Palmer"));
    feed.events[5].seq = 5;
    let snapshot = check(
        &feed.events,
        "Live period 0 score 1-1 periods 1:1-1
         #3 EpochChanged { current: 3, got: 4 }
         #4 StaleEpoch { current: 3, got: 2 }
         #5 missed 3..5
         #5 NotNewer { current: 5, got: 5 }",
    );
    assert_eq!(snapshot.epoch, 3);
}

#[test]
fn gaps_are_reported_and_the_state_still_moves_on() {
    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push(points(Side::Home, 2));
    feed.push(points(Side::Home, 3));
    feed.push(points(Side::Away, 1));
    feed.push(points(Side::Away, 2));
    let mut events = feed.events.clone();
    events.remove(1);
    events.remove(1);
    events.push(events[1].clone());
    check(
        &events,
        "Live period 1 score 0-3 periods 1:0-3
         #4 missed 2..4
         #4 NotNewer { current: 5, got: 4 }",
    );
}

#[test]
fn a_skip_of_clock_readings_only_is_proven_harmless_by_prev_critical_seq() {
    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push(points(Side::Home, 2));
    feed.push_at(Some(60), EventKind::Clock { running: true });
    feed.push_at(Some(120), EventKind::Clock { running: true });
    feed.push(points(Side::Away, 3));
    feed.push_at(Some(180), EventKind::Clock { running: true });
    feed.push(points(Side::Away, 2));
    // What a lagging client gets: the service coalesced #3, #4 and #6 away and stamped every
    // event with its match's previous critical seq.
    let stamp = |seq: u64, previous: u64| {
        let mut event = feed.events[seq as usize - 1].clone();
        event.prev_critical_seq = Some(previous);
        event
    };
    let lagging = [stamp(1, 0), stamp(2, 1), stamp(5, 2), stamp(7, 5)];
    let snapshot = check(
        &lagging,
        "Live period 1 score 2-5 periods 1:2-5
         #5 skipped 3..5
         #7 skipped 6..7",
    );
    assert_eq!((snapshot.seq, snapshot.critical_seq), (7, 7));
    // A skip over a critical event is a loss, whatever else the event says.
    let lost = [stamp(1, 0), stamp(2, 1), stamp(7, 5)];
    check(
        &lost,
        "Live period 1 score 2-2 periods 1:2-2
         #7 missed 3..7",
    );
}

#[test]
fn critical_seq_follows_the_last_critical_event() {
    let mut feed = Feed::new(BASKETBALL);
    feed.push(EventKind::PeriodStarted { period: 1 });
    feed.push_at(Some(60), EventKind::Clock { running: true });
    let snapshot = check(&feed.events, "Live period 1 score 0-0 periods 1:0-0");
    assert_eq!((snapshot.seq, snapshot.critical_seq), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// Generated matches
// ---------------------------------------------------------------------------------------------

/// A valid event sequence and what an independent model expects of its end state.
#[derive(Debug, Clone)]
struct Generated {
    events: Vec<ScoreEvent>,
    expected: Expected,
}

#[derive(Debug, Clone)]
enum Expected {
    Football { score: Score, cards: CardTally },
    Basketball { score: Score },
    Tennis { sets: Score, games: Vec<Score> },
}

/// One generated football or basketball action: a choice, a side, and a number to draw details
/// from.
type Action = (u8, bool, u16);

fn actions(max: usize) -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec((0u8..12, any::<bool>(), any::<u16>()), 0..max)
}

fn side(home: bool) -> Side {
    if home { Side::Home } else { Side::Away }
}

/// Splits `actions` over `periods` periods, as evenly as it goes.
fn per_period(actions: &[Action], periods: u8) -> Vec<&[Action]> {
    let size = actions.len().div_ceil(usize::from(periods)).max(1);
    let mut chunks: Vec<&[Action]> = actions.chunks(size).collect();
    chunks.resize(usize::from(periods), &[]);
    chunks
}

fn football() -> impl Strategy<Value = Generated> {
    (
        actions(60),
        prop_oneof![Just(2u8), Just(4u8)],
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(actions, periods, kicks, ended)| {
            let mut feed = Feed::new(FOOTBALL);
            feed.push(scheduled(None));
            feed.push(EventKind::MatchStarted);
            let mut score = Score::default();
            let mut cards = CardTally::default();
            // Goals and cards by seq, with whether a correction voided them, for corrections.
            let mut goals: Vec<(u64, Side, bool)> = Vec::new();
            let mut bookings: Vec<(u64, Side, CardColour, bool)> = Vec::new();
            for (index, chunk) in per_period(&actions, periods).into_iter().enumerate() {
                let period = index as u8 + 1;
                let mut clock_secs = Sport::Football.period_start_secs(period);
                feed.push_at(Some(clock_secs), EventKind::PeriodStarted { period });
                for &(choice, home, detail) in chunk {
                    clock_secs += 1 + u32::from(detail % 120);
                    let at = Some(clock_secs);
                    let live_goals: Vec<usize> =
                        (0..goals.len()).filter(|&i| !goals[i].2).collect();
                    let live_cards: Vec<usize> =
                        (0..bookings.len()).filter(|&i| !bookings[i].3).collect();
                    match choice {
                        7 | 8 if !live_goals.is_empty() => {
                            let index = live_goals[usize::from(detail) % live_goals.len()];
                            let (seq, scored_for, _) = goals[index];
                            *score.get_mut(scored_for) -= 1;
                            if choice == 7 {
                                feed.push_at(at, void(seq));
                                goals[index].2 = true;
                            } else {
                                let now_for = side(home);
                                let replacement = goal_by(now_for, "Corrected");
                                feed.push_at(at, replace(seq, replacement));
                                *score.get_mut(now_for) += 1;
                                goals[index].1 = now_for;
                            }
                        }
                        9 if !live_cards.is_empty() => {
                            let index = live_cards[usize::from(detail) % live_cards.len()];
                            let (seq, booked, colour, _) = bookings[index];
                            feed.push_at(at, void(seq));
                            bookings[index].3 = true;
                            let tally = cards.get_mut(booked);
                            tally.yellow -= u32::from(colour != CardColour::Red);
                            tally.red -= u32::from(colour != CardColour::Yellow);
                        }
                        0..=2 | 7..=9 => {
                            let scored_for = side(home);
                            let seq = feed.push_at(
                                at,
                                EventKind::Goal {
                                    side: scored_for,
                                    player: Some(format!("Player {}", detail % 11)),
                                    own_goal: detail.is_multiple_of(5),
                                    penalty: detail.is_multiple_of(7),
                                },
                            );
                            *score.get_mut(scored_for) += 1;
                            goals.push((seq, scored_for, false));
                        }
                        3 => {
                            let colour = [
                                CardColour::Yellow,
                                CardColour::SecondYellow,
                                CardColour::Red,
                            ][usize::from(detail % 3)];
                            let booked = side(home);
                            let seq = feed.push_at(at, card(booked, colour));
                            bookings.push((seq, booked, colour, false));
                            let tally = cards.get_mut(booked);
                            tally.yellow += u32::from(colour != CardColour::Red);
                            tally.red += u32::from(colour != CardColour::Yellow);
                        }
                        4 => {
                            feed.push_at(
                                at,
                                EventKind::Substitution {
                                    side: side(home),
                                    player_on: Some(format!("Sub {}", detail % 5)),
                                    player_off: None,
                                },
                            );
                        }
                        5 => {
                            feed.push_at(at, EventKind::Clock { running: home });
                        }
                        6 => {
                            let name = format!("stat_{}", detail % 6);
                            feed.push_at(
                                at,
                                stat(&name, u32::from(detail % 50), u32::from(detail / 50 % 50)),
                            );
                        }
                        10 => {
                            feed.push_at(
                                at,
                                EventKind::StatusChanged {
                                    status: MatchStatus::Suspended,
                                    reason: Some("floodlights".into()),
                                },
                            );
                            feed.push_at(
                                at,
                                EventKind::StatusChanged {
                                    status: MatchStatus::Live,
                                    reason: None,
                                },
                            );
                        }
                        _ => {
                            feed.push_at(None, EventKind::Clock { running: true });
                        }
                    }
                }
                feed.push_at(Some(clock_secs), EventKind::PeriodEnded { period });
            }
            if ended {
                if score.home == score.away {
                    feed.push(EventKind::PeriodStarted { period: 5 });
                    for kick_number in 0..10 {
                        let scored = kicks & (1 << kick_number) != 0;
                        feed.push(kick(side(kick_number % 2 == 0), scored));
                    }
                }
                feed.push(EventKind::MatchEnded { winner: None });
                // Sometimes a goal is credited to the other side after the final whistle.
                let live_goal = goals.iter_mut().find(|(_, _, voided)| !voided);
                if let Some((seq, scored_for, _)) = live_goal
                    && kicks & (1 << 15) != 0
                {
                    let now_for = scored_for.opponent();
                    feed.push(replace(*seq, goal_by(now_for, "Corrected")));
                    *score.get_mut(*scored_for) -= 1;
                    *score.get_mut(now_for) += 1;
                    *scored_for = now_for;
                }
            }
            Generated {
                events: feed.events,
                expected: Expected::Football { score, cards },
            }
        })
}

fn basketball() -> impl Strategy<Value = Generated> {
    (actions(80), 4u8..=6, any::<Option<u16>>()).prop_map(|(actions, periods, late_fix)| {
        let mut feed = Feed::new(BASKETBALL);
        feed.push(scheduled(None));
        feed.push(EventKind::MatchStarted);
        let mut score = Score::default();
        // Scoring plays by seq, for corrections: side and points as they now count.
        let mut plays: Vec<(u64, Side, u8)> = Vec::new();
        for (index, chunk) in per_period(&actions, periods).into_iter().enumerate() {
            let period = index as u8 + 1;
            feed.push(EventKind::PeriodStarted { period });
            let mut clock_secs = 0;
            for &(choice, home, detail) in chunk {
                clock_secs += u32::from(detail % 30);
                let at = Some(clock_secs);
                match choice {
                    9 | 10 if !plays.is_empty() => {
                        let index = usize::from(detail) % plays.len();
                        let (seq, scored_for, value) = plays[index];
                        let now_for = side(home);
                        let now_value = (detail % 3) as u8 + 1;
                        feed.push_at(at, replace(seq, points(now_for, now_value)));
                        *score.get_mut(scored_for) -= u32::from(value);
                        *score.get_mut(now_for) += u32::from(now_value);
                        plays[index] = (seq, now_for, now_value);
                    }
                    11 => {
                        feed.push_at(at, EventKind::Clock { running: home });
                    }
                    _ => {
                        let scored_for = side(home);
                        let value = (detail % 3) as u8 + 1;
                        let seq = feed.push_at(at, points(scored_for, value));
                        *score.get_mut(scored_for) += u32::from(value);
                        plays.push((seq, scored_for, value));
                    }
                }
            }
            feed.push(EventKind::PeriodEnded { period });
        }
        feed.push(EventKind::MatchEnded { winner: None });
        // Sometimes a play is corrected after the final buzzer.
        if let Some(detail) = late_fix
            && !plays.is_empty()
        {
            let (seq, scored_for, value) = plays[usize::from(detail) % plays.len()];
            let now_value = (detail % 3) as u8 + 1;
            feed.push(replace(seq, points(scored_for, now_value)));
            *score.get_mut(scored_for) -= u32::from(value);
            *score.get_mut(scored_for) += u32::from(now_value);
        }
        Generated {
            events: feed.events,
            expected: Expected::Basketball { score },
        }
    })
}

/// Tennis scoring written out from the rules, independently of the reducer, so that the two can
/// be compared.
#[derive(Debug, Clone)]
struct TennisModel {
    format: TennisFormat,
    /// Games per set, the current set last.
    games: Vec<Score>,
    sets: Score,
    /// Points in the current game or tie-break.
    points: Score,
    tiebreak: bool,
    set_over: bool,
}

impl TennisModel {
    fn new(format: TennisFormat) -> TennisModel {
        TennisModel {
            format,
            games: Vec::new(),
            sets: Score::default(),
            points: Score::default(),
            tiebreak: false,
            set_over: true,
        }
    }

    fn decided(&self) -> bool {
        let needed = u32::from(self.format.best_of / 2 + 1);
        self.sets.home == needed || self.sets.away == needed
    }

    fn point(&mut self, side: Side) {
        if self.set_over {
            self.games.push(Score::default());
            self.set_over = false;
        }
        let set_number = self.games.len();
        let deciding = set_number == usize::from(self.format.best_of);
        *self.points.get_mut(side) += 1;
        let target = match (self.tiebreak, deciding, self.format.final_set) {
            (false, _, _) => 4,
            (true, true, FinalSet::TiebreakTo10) => 10,
            (true, _, _) => 7,
        };
        let (mine, theirs) = (self.points.get(side), self.points.get(side.opponent()));
        if mine < target || mine < theirs + 2 {
            return;
        }
        let was_tiebreak = self.tiebreak;
        self.points = Score::default();
        self.tiebreak = false;
        let games = self.games.last_mut().expect("a set in play");
        *games.get_mut(side) += 1;
        let (mine, theirs) = (games.get(side), games.get(side.opponent()));
        if was_tiebreak || (mine >= 6 && mine >= theirs + 2) {
            *self.sets.get_mut(side) += 1;
            self.set_over = true;
            return;
        }
        let tiebreak_at = match (deciding, self.format.final_set) {
            (false, _) | (true, FinalSet::TiebreakTo7 | FinalSet::TiebreakTo10) => Some(6),
            (true, FinalSet::TiebreakAt12) => Some(12),
            (true, FinalSet::Advantage) => None,
        };
        self.tiebreak = tiebreak_at == Some(mine) && mine == theirs;
    }
}

fn tennis() -> impl Strategy<Value = Generated> {
    let final_set = prop_oneof![
        Just(FinalSet::TiebreakTo7),
        Just(FinalSet::TiebreakTo10),
        Just(FinalSet::Advantage),
        Just(FinalSet::TiebreakAt12),
    ];
    (
        prop_oneof![Just(3u8), Just(5u8)],
        final_set,
        prop::collection::vec(any::<bool>(), 0..600),
        any::<bool>(),
    )
        .prop_map(|(best_of, final_set, winners, announces_sets)| {
            let format = TennisFormat {
                best_of,
                final_set,
                first_server: None,
            };
            let mut feed = tennis_feed(format);
            let mut model = TennisModel::new(format);
            // Once the drawn winners run out the home player takes every point, so the match
            // always ends.
            let mut winners = winners.into_iter().chain(std::iter::repeat(true));
            while !model.decided() {
                // Some feeds also announce each set's start and end; the points alone decide.
                if announces_sets && model.set_over {
                    let period = model.games.len() as u8 + 1;
                    feed.push(EventKind::PeriodStarted { period });
                }
                let side = side(winners.next().unwrap_or(true));
                model.point(side);
                feed.push(EventKind::Point { side });
                if announces_sets && model.set_over {
                    let period = model.games.len() as u8;
                    feed.push(EventKind::PeriodEnded { period });
                }
            }
            feed.push(EventKind::MatchEnded { winner: None });
            Generated {
                events: feed.events,
                expected: Expected::Tennis {
                    sets: model.sets,
                    games: model.games,
                },
            }
        })
}

/// Folds a valid sequence into a fresh snapshot; every event must apply without a gap.
fn fold(snapshot: &mut MatchSnapshot, events: &[ScoreEvent]) -> Result<(), TestCaseError> {
    for event in events {
        let applied = apply(snapshot, event);
        prop_assert_eq!(applied, Ok(Applied::default()), "event {:?}", event);
    }
    Ok(())
}

fn fresh(events: &[ScoreEvent]) -> MatchSnapshot {
    MatchSnapshot::new(events[0].match_topic.clone())
}

/// (a) Folding up to `split`, storing the snapshot as JSON and reading it back, then folding the
/// rest gives the state of folding everything.
fn resume_equivalence(events: &[ScoreEvent], split: usize) -> Result<(), TestCaseError> {
    let mut whole = fresh(events);
    fold(&mut whole, events)?;
    let mut stored = fresh(events);
    fold(&mut stored, &events[..split])?;
    let json = stored.to_json();
    let mut resumed: MatchSnapshot = serde_json::from_str(&json)
        .map_err(|error| TestCaseError::fail(format!("{error}: {json}")))?;
    prop_assert_eq!(&resumed, &stored);
    fold(&mut resumed, &events[split..])?;
    prop_assert_eq!(resumed, whole);
    Ok(())
}

/// (b) An event applied again is refused as not newer and changes nothing.
fn duplicates_detected(
    events: &[ScoreEvent],
    applied: usize,
    again: Index,
) -> Result<(), TestCaseError> {
    let applied = applied.max(1);
    let mut snapshot = fresh(events);
    fold(&mut snapshot, &events[..applied])?;
    let before = snapshot.clone();
    let event = &events[again.index(applied)];
    prop_assert_eq!(
        apply(&mut snapshot, event),
        Err(ApplyError::NotNewer {
            current: events[applied - 1].seq,
            got: event.seq
        })
    );
    prop_assert_eq!(snapshot, before);
    Ok(())
}

/// (c) With two neighbours swapped, one application reports a gap or is refused as not newer.
fn reordering_detected(events: &[ScoreEvent], at: Index) -> Result<(), TestCaseError> {
    let mut events = events.to_vec();
    let at = at.index(events.len() - 1);
    events.swap(at, at + 1);
    let mut snapshot = fresh(&events);
    let mut detected = false;
    for event in &events {
        match apply(&mut snapshot, event) {
            Ok(Applied {
                missed: Some(_), ..
            })
            | Err(ApplyError::NotNewer { .. }) => detected = true,
            Ok(_) | Err(_) => {}
        }
    }
    prop_assert!(
        detected,
        "swapping seq {} and {} went unnoticed",
        at + 1,
        at + 2
    );
    Ok(())
}

/// What must hold of every snapshot of a generated match, whatever its progress.
fn invariants(snapshot: &MatchSnapshot) -> Result<(), TestCaseError> {
    match snapshot.sport {
        Sport::Football => {
            let mut goals = Score::default();
            for entry in &snapshot.timeline {
                if let EventKind::Goal { side, .. } = entry.kind
                    && !entry.voided
                {
                    *goals.get_mut(side) += 1;
                }
            }
            prop_assert_eq!(snapshot.score, goals);
        }
        Sport::Basketball => {
            let mut sum = Score::default();
            for period in &snapshot.periods {
                sum.home += period.home;
                sum.away += period.away;
            }
            prop_assert_eq!(snapshot.score, sum);
        }
        Sport::Tennis => {
            // A set is won by a tie-break or by six or more games with a lead of two.
            let mut sets = Score::default();
            for set in &snapshot.periods {
                let Some(leader) = set.score().leader() else {
                    continue;
                };
                let (mine, theirs) = (set.score().get(leader), set.score().get(leader.opponent()));
                if set.tiebreak.is_some() || (mine >= 6 && mine >= theirs + 2) {
                    *sets.get_mut(leader) += 1;
                }
            }
            prop_assert_eq!(snapshot.score, sets);
        }
        Sport::Other => {}
    }
    Ok(())
}

/// (d) Every intermediate snapshot keeps the invariants, and the end state is the model's.
fn model_check(generated: &Generated) -> Result<(), TestCaseError> {
    let events = &generated.events;
    let mut snapshot = fresh(events);
    for event in events {
        prop_assert_eq!(apply(&mut snapshot, event), Ok(Applied::default()));
        invariants(&snapshot)?;
    }
    match &generated.expected {
        Expected::Football { score, cards } => {
            prop_assert_eq!(snapshot.score, *score);
            prop_assert_eq!(snapshot.cards, *cards);
        }
        Expected::Basketball { score } => prop_assert_eq!(snapshot.score, *score),
        Expected::Tennis { sets, games } => {
            prop_assert_eq!(snapshot.score, *sets);
            let played: Vec<Score> = snapshot.periods.iter().map(|set| set.score()).collect();
            prop_assert_eq!(&played, games);
            prop_assert_eq!(snapshot.winner, sets.leader());
        }
    }
    if snapshot.status == MatchStatus::Finished {
        let expected_winner = snapshot
            .score
            .leader()
            .or_else(|| snapshot.shootout.and_then(|shootout| shootout.leader()));
        prop_assert_eq!(snapshot.winner, expected_winner);
    }
    Ok(())
}

/// An event that may well be invalid here, drawn from `choice`: a wrong seq, epoch or match, a
/// kind of another sport, an out-of-range value, a correction of something it cannot correct.
fn doubtful_event(snapshot: &MatchSnapshot, choice: u64) -> ScoreEvent {
    let detail = choice >> 8;
    let any_side = side(detail.is_multiple_of(2));
    let mut match_topic = snapshot.match_topic.clone();
    let (mut seq, mut epoch) = (snapshot.seq + 1, snapshot.epoch);
    match choice % 8 {
        0 => seq = snapshot.seq,
        1 => seq = snapshot.seq.saturating_sub(detail % 3),
        2 => epoch += 1,
        3 => epoch = epoch.wrapping_sub(1),
        4 => match_topic = MatchTopic::parse("tennis/other/match").expect("topic"),
        _ => seq += detail % 3,
    }
    let small = detail % 25;
    let kind = match (choice >> 3) % 13 {
        0 => EventKind::Point { side: any_side },
        1 => goal_by(any_side, "Doubt"),
        2 => points(any_side, (small % 5) as u8),
        3 => EventKind::PeriodStarted {
            period: [0, 21, 255, 1][(small % 4) as usize],
        },
        4 => EventKind::PeriodEnded {
            period: (small * 11) as u8,
        },
        5 => void(small),
        6 => replace(small, EventKind::Point { side: any_side }),
        7 => replace(small, goal_by(any_side, "Doubt")),
        8 => replace(small, points(any_side, (small % 5) as u8)),
        9 => stat(&format!("doubt_{small}"), 1, 2),
        10 => kick(any_side, detail.is_multiple_of(3)),
        11 => card(any_side, CardColour::SecondYellow),
        _ => replace(small, EventKind::MatchEnded { winner: None }),
    };
    ScoreEvent {
        match_topic,
        epoch,
        seq,
        ts_ms: snapshot.updated_ms + 10,
        clock_secs: detail.is_multiple_of(4).then_some(small as u32),
        prev_critical_seq: None,
        kind,
    }
}

/// (e) Before each event of a valid match, some doubtful events are tried on the snapshot: any
/// that is refused must leave it exactly as it was.
fn all_or_nothing(events: &[ScoreEvent], doubts: &[u64]) -> Result<(), TestCaseError> {
    let mut snapshot = fresh(events);
    for (index, event) in events.iter().enumerate() {
        for &choice in doubts
            .iter()
            .filter(|&&choice| (choice >> 40) as usize % events.len() == index)
        {
            let doubtful = doubtful_event(&snapshot, choice);
            let mut trial = snapshot.clone();
            if let Err(error) = apply(&mut trial, &doubtful) {
                prop_assert_eq!(&trial, &snapshot, "{} changed the snapshot", error);
            }
        }
        prop_assert_eq!(apply(&mut snapshot, event), Ok(Applied::default()));
    }
    Ok(())
}

/// The five properties for one sport's generator, in a module named after the sport.
macro_rules! properties {
    ($sport:ident, $generator:expr, $cases:expr) => {
        mod $sport {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases($cases))]

                #[test]
                fn resuming_from_a_stored_snapshot_equals_folding_everything(
                    generated in $generator,
                    split in any::<Index>(),
                ) {
                    let events = &generated.events;
                    resume_equivalence(events, split.index(events.len() + 1))?;
                }

                #[test]
                fn duplicates_are_refused_and_change_nothing(
                    generated in $generator,
                    applied in any::<Index>(),
                    again in any::<Index>(),
                ) {
                    let events = &generated.events;
                    duplicates_detected(events, applied.index(events.len() + 1), again)?;
                }

                #[test]
                fn swapped_neighbours_are_detected(
                    generated in $generator,
                    at in any::<Index>(),
                ) {
                    reordering_detected(&generated.events, at)?;
                }

                #[test]
                fn score_agrees_with_the_model(generated in $generator) {
                    model_check(&generated)?;
                }

                #[test]
                fn refused_events_leave_the_snapshot_unchanged(
                    generated in $generator,
                    doubts in prop::collection::vec(any::<u64>(), 1..40),
                ) {
                    all_or_nothing(&generated.events, &doubts)?;
                }
            }
        }
    };
}

properties!(football_properties, football(), 256);
properties!(basketball_properties, basketball(), 256);
properties!(tennis_properties, tennis(), 64);
