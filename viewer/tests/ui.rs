//! UI tests: drive the real drawing code with egui_kittest, by accessible role and label, on a
//! session fed with plain protocol values (no socket). Each test checks both what the fan sees
//! and the commands the UI produced, applied to the session as the app does. Layout tests lay
//! the window out at several sizes, from a phone-sized column to a wide screen, and check that
//! what matters is on screen, lined up and not overlapping.

use eframe::egui::accesskit::Toggled;
use eframe::egui::{Rect, Role, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use scoreline_protocol::{
    ClientMessage, EventKind, MatchSnapshot, MatchSummary, MatchTopic, ScoreEvent, ServerMessage,
    Side, Team, TennisFormat, Topic, apply,
};
use scoreline_viewer::connection::{Backoff, Jitter, Link};
use scoreline_viewer::follow::{FollowList, TeamFollow};
use scoreline_viewer::session::{Action, Session};
use scoreline_viewer::ui::{ViewState, viewer_ui};

/// 2026-11-24 15:00 UTC.
const NOW_MS: u64 = 1_795_964_400_000;

struct Fixture {
    session: Session,
    view: ViewState,
}

fn harness_sized(session: Session, width: f32, height: f32) -> Harness<'static, Fixture> {
    let fixture = Fixture {
        view: ViewState::new(&session),
        session,
    };
    Harness::builder()
        .with_size(vec2(width, height))
        .build_ui_state(
            |ui, fixture: &mut Fixture| {
                let commands = viewer_ui(ui, &fixture.session, &mut fixture.view, NOW_MS);
                if !commands.is_empty() {
                    // As the app does: the next frame shows the result.
                    ui.ctx().request_repaint();
                }
                for command in commands {
                    fixture.session.command(command, NOW_MS);
                }
            },
            fixture,
        )
}

fn harness(session: Session) -> Harness<'static, Fixture> {
    harness_sized(session, 1280.0, 800.0)
}

fn topic(text: &str) -> Topic {
    Topic::parse(text).expect("valid topic literal")
}

/// A match built by the protocol's own reducer from `kinds` (each with an optional clock
/// reading), numbered from seq 1 after its announcement.
fn played_at(
    topic: &str,
    home: Team,
    away: Team,
    competition: &str,
    tennis: Option<TennisFormat>,
    kinds: Vec<(Option<u32>, EventKind)>,
) -> MatchSnapshot {
    let match_topic = MatchTopic::parse(topic).expect("valid match topic literal");
    let mut snapshot = MatchSnapshot::new(match_topic.clone());
    let schedule = EventKind::MatchScheduled {
        home,
        away,
        kickoff_ms: NOW_MS - 3_600_000,
        competition: Some(competition.into()),
        venue: None,
        period_secs: None,
        tennis,
    };
    for (index, (clock_secs, kind)) in std::iter::once((None, schedule)).chain(kinds).enumerate() {
        let seq = index as u64 + 1;
        let event = ScoreEvent {
            match_topic: match_topic.clone(),
            epoch: 0,
            seq,
            ts_ms: NOW_MS - 3_000_000 + seq * 1_000,
            clock_secs,
            prev_critical_seq: None,
            kind,
        };
        apply(&mut snapshot, &event).expect("fixture events apply in order");
    }
    snapshot
}

/// As [`played_at`], each event's clock reading its seq × 5 minutes.
fn played(
    topic: &str,
    home: Team,
    away: Team,
    competition: &str,
    kinds: Vec<EventKind>,
) -> MatchSnapshot {
    let kinds = kinds
        .into_iter()
        .enumerate()
        .map(|(index, kind)| (Some((index as u32 + 2) * 300), kind))
        .collect();
    played_at(topic, home, away, competition, None, kinds)
}

fn goal(side: Side, player: &str) -> EventKind {
    EventKind::Goal {
        side,
        player: Some(player.into()),
        own_goal: false,
        penalty: false,
    }
}

fn arsenal_chelsea() -> MatchSnapshot {
    played(
        "football/premier-league/ars-che",
        Team::new("Arsenal", "ARS"),
        Team::new("Chelsea", "CHE"),
        "Premier League",
        vec![
            EventKind::MatchStarted,
            EventKind::PeriodStarted { period: 1 },
            goal(Side::Home, "Saka"),
            goal(Side::Away, "Palmer"),
            goal(Side::Home, "Rice"),
        ],
    )
}

fn madrid_barcelona() -> MatchSnapshot {
    played(
        "football/la-liga/rma-fcb",
        Team::new("Real Madrid", "RMA"),
        Team::new("Barcelona", "FCB"),
        "La Liga",
        vec![],
    )
}

fn lakers_celtics() -> MatchSnapshot {
    played(
        "basketball/nba/lal-bos",
        Team::new("Los Angeles Lakers", "LAL"),
        Team::new("Boston Celtics", "BOS"),
        "NBA",
        vec![
            EventKind::PeriodStarted { period: 1 },
            EventKind::Points {
                side: Side::Home,
                points: 3,
                player: Some("James".into()),
            },
        ],
    )
}

/// Argentina 3-3 France in a live shoot-out, 4-2 on penalties so far.
fn argentina_france_shootout() -> MatchSnapshot {
    let kick = |side, scored| EventKind::ShootoutKick {
        side,
        player: None,
        scored,
    };
    let mut kinds = vec![
        (Some(0), EventKind::PeriodStarted { period: 1 }),
        (Some(22 * 60), goal(Side::Home, "Messi")),
        (Some(35 * 60), goal(Side::Home, "Di María")),
        (Some(45 * 60), EventKind::PeriodStarted { period: 2 }),
        (
            Some(64 * 60),
            EventKind::Substitution {
                side: Side::Away,
                player_on: Some("Eduardo Camavinga".into()),
                player_off: Some("Theo Hernández".into()),
            },
        ),
        (
            Some(66 * 60),
            EventKind::Stat {
                name: "possession_pct".into(),
                home: 61,
                away: 39,
            },
        ),
        (Some(79 * 60), goal(Side::Away, "Mbappé")),
        (Some(80 * 60), goal(Side::Away, "Mbappé")),
        (Some(90 * 60), EventKind::PeriodStarted { period: 3 }),
        (Some(105 * 60), EventKind::PeriodStarted { period: 4 }),
        (Some(107 * 60), goal(Side::Home, "Messi")),
        (Some(117 * 60), goal(Side::Away, "Mbappé")),
        (Some(120 * 60), EventKind::PeriodEnded { period: 4 }),
        (Some(105 * 60), EventKind::PeriodStarted { period: 5 }),
    ];
    for (home, away) in [(true, true), (true, false), (true, false), (true, true)] {
        kinds.push((Some(106 * 60), kick(Side::Home, home)));
        kinds.push((Some(106 * 60), kick(Side::Away, away)));
    }
    played_at(
        "football/world-cup/arg-fra-2022-12-18",
        Team::new("Argentina", "ARG"),
        Team::new("France", "FRA"),
        "FIFA World Cup 2022",
        None,
        kinds,
    )
}

/// A tennis match in its second set, the away player serving.
fn gauff_sabalenka() -> MatchSnapshot {
    let mut kinds = Vec::new();
    // First set 6-2 to the home player, then 1-1 and 15-0.
    for game in 0..8 {
        let side = if game < 6 { Side::Home } else { Side::Away };
        for _ in 0..4 {
            kinds.push((None, EventKind::Point { side }));
        }
    }
    for side in [Side::Home, Side::Away] {
        for _ in 0..4 {
            kinds.push((None, EventKind::Point { side }));
        }
    }
    kinds.push((None, EventKind::Point { side: Side::Home }));
    played_at(
        "tennis/us-open/gau-sab",
        Team::new("Coco Gauff", "GAU"),
        Team::new("Aryna Sabalenka", "SAB"),
        "US Open 2023, women's final",
        Some(TennisFormat {
            first_server: Some(Side::Home),
            ..TennisFormat::default()
        }),
        kinds,
    )
}

fn all_matches() -> Vec<MatchSnapshot> {
    vec![
        arsenal_chelsea(),
        madrid_barcelona(),
        lakers_celtics(),
        argentina_france_shootout(),
        gauff_sabalenka(),
    ]
}

/// A connected session following `follows`, holding `snapshots` and a catalogue of them.
fn connected_with(follows: &[&str], snapshots: Vec<MatchSnapshot>) -> Session {
    let mut session = Session::new(
        "ws://127.0.0.1:8080/ws".into(),
        FollowList::new(follows.iter().map(|t| topic(t))),
        Link::new(Backoff::default(), Jitter::new(1)),
    );
    session.start(NOW_MS - 10_000);
    session.opened(NOW_MS - 9_000);
    session.receive(
        ServerMessage::Catalogue {
            matches: snapshots.iter().map(MatchSummary::from).collect(),
            omitted: 0,
        },
        NOW_MS - 8_000,
    );
    session.receive(
        ServerMessage::Subscribed {
            topics: follows.iter().map(|t| topic(t)).collect(),
            snapshots,
            omitted: 0,
            resumed: Vec::new(),
            delay_secs: 0,
        },
        NOW_MS - 8_000,
    );
    session.take_actions();
    session
}

fn connected(follows: &[&str]) -> Session {
    connected_with(
        follows,
        vec![arsenal_chelsea(), madrid_barcelona(), lakers_celtics()],
    )
}

/// Every label inside `rect`, with its text.
fn labels_in(harness: &Harness<'_, Fixture>, rect: Rect) -> Vec<(String, Rect)> {
    harness
        .query_all_by_role(Role::Label)
        .filter_map(|node| {
            let bounds = node.rect();
            // A label's text is its accesskit value; other widgets have a label.
            let node = node.accesskit_node();
            let text = node.label().or_else(|| node.value()).unwrap_or_default();
            rect.expand(0.5)
                .contains_rect(bounds)
                .then_some((text, bounds))
        })
        .collect()
}

fn row(harness: &Harness<'_, Fixture>, title: &str) -> Rect {
    harness.get_by_role_and_label(Role::Button, title).rect()
}

#[test]
fn the_scoreboard_groups_by_competition_and_the_filter_narrows_it() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    let arsenal = row(&harness, "Arsenal v Chelsea");
    let texts: Vec<String> = labels_in(&harness, arsenal)
        .into_iter()
        .map(|l| l.0)
        .collect();
    for expected in ["Arsenal", "Chelsea", "2", "1", "Rice 31'", "Palmer 26'"] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} in {texts:?}"
        );
    }
    harness.get_by_label_contains("Football · Premier League");
    harness.get_by_label_contains("Football · La Liga");
    harness.get_by_role_and_label(Role::Button, "Real Madrid v Barcelona");
    assert!(
        harness
            .query_by_label("Los Angeles Lakers v Boston Celtics")
            .is_none(),
        "basketball is not followed"
    );

    harness.get_by_label("Filter").focus();
    harness.run();
    harness.get_by_label("Filter").type_text("madrid");
    harness.run();
    assert_eq!(harness.state().view.filter, "madrid");
    harness.get_by_role_and_label(Role::Button, "Real Madrid v Barcelona");
    assert!(harness.query_by_label("Arsenal v Chelsea").is_none());

    harness.get_by_label("Clear filter").click();
    harness.run();
    harness.get_by_label("Arsenal v Chelsea");

    // "Live" shows only what is being played.
    harness.get_by_label("Live 1").click();
    harness.run();
    harness.get_by_label("Arsenal v Chelsea");
    assert!(harness.query_by_label("Real Madrid v Barcelona").is_none());
}

#[test]
fn a_goal_shows_a_badge_with_the_scorer_on_the_row() {
    let mut session = connected(&["football"]);
    let scored = ScoreEvent {
        match_topic: MatchTopic::parse("football/premier-league/ars-che").unwrap(),
        epoch: 0,
        seq: 7,
        ts_ms: NOW_MS - 1_000,
        clock_secs: Some(40 * 60),
        prev_critical_seq: None,
        kind: goal(Side::Away, "Jackson"),
    };
    session.receive(ServerMessage::Event(scored), NOW_MS - 1_000);
    let mut harness = harness(session);
    harness.run();
    let arsenal = row(&harness, "Arsenal v Chelsea");
    let texts: Vec<String> = labels_in(&harness, arsenal)
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert!(texts.contains(&"GOAL".to_owned()), "{texts:?}");
    assert!(texts.contains(&"⚽ Jackson 41'".to_owned()), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|text| text.ends_with('\'') && !text.contains(' ')),
        "the badge replaces the clock: {texts:?}"
    );
}

#[test]
fn a_shootout_row_keeps_its_height_and_everything_inside_it() {
    let mut harness = harness_sized(connected_with(&["football"], all_matches()), 800.0, 600.0);
    harness.run();
    let shootout = row(&harness, "Argentina v France");
    let normal = row(&harness, "Arsenal v Chelsea");
    assert_eq!(
        shootout.height(),
        normal.height(),
        "the pens do not grow the row"
    );
    let labels = labels_in(&harness, shootout);
    let text = |wanted: &str| {
        labels
            .iter()
            .filter(|(text, _)| text == wanted)
            .map(|(_, rect)| *rect)
            .collect::<Vec<Rect>>()
    };
    assert_eq!(text("Pens").len(), 1, "no clock in a shoot-out: {labels:?}");
    assert!(
        !labels
            .iter()
            .any(|(text, _)| text.ends_with('\'') && text.starts_with("10")),
        "no 106' anywhere: {labels:?}"
    );
    assert_eq!(text("3").len(), 2, "{labels:?}");
    assert_eq!(text("(4)").len(), 1, "{labels:?}");
    assert_eq!(text("(2)").len(), 1, "{labels:?}");
    // The penalties sit beside the score, on the same lines, not wrapped under it.
    let (home_pens, away_pens) = (text("(4)")[0], text("(2)")[0]);
    let scores = text("3");
    assert!(scores.iter().all(|score| score.right() <= home_pens.left()));
    assert!((home_pens.center().y - scores[0].center().y).abs() < 1.0);
    assert!((away_pens.center().y - scores[1].center().y).abs() < 1.0);
    // Names keep their column: both start at the same x, and end before the score.
    let (argentina, france) = (text("Argentina")[0], text("France")[0]);
    assert_eq!(argentina.left(), france.left());

    // The detail has one shoot-out, not a "Penalties" period next to a "Pens" column.
    harness
        .get_by_role_and_label(Role::Button, "Argentina v France")
        .click();
    harness.run();
    assert!(harness.get_all_by_label("Penalty shoot-out").count() >= 1);
    assert!(harness.query_by_label("Penalties").is_none());
    assert!(harness.get_all_by_label("Pens").count() >= 1);
    harness.get_by_label("Argentina: 4 of 4 penalties scored");
    harness.get_by_label("France: 2 of 4 penalties scored");
    harness.get_by_label("ET2");
}

#[test]
fn the_layout_holds_from_a_narrow_column_to_a_wide_screen() {
    for (width, height) in [
        (400.0, 800.0),
        (800.0, 600.0),
        (1440.0, 900.0),
        (1920.0, 1080.0),
    ] {
        let mut harness = harness_sized(
            connected_with(&["football", "basketball", "tennis"], all_matches()),
            width,
            height,
        );
        harness.run();
        let window = Rect::from_min_size(eframe::egui::Pos2::ZERO, vec2(width, height));
        // Nothing drawn past the window's edges.
        for node in harness.query_all_by(|_| true) {
            let Some(bounds) = node.accesskit_node().bounding_box() else {
                continue;
            };
            let rect = Rect::from_min_max(
                eframe::egui::pos2(bounds.x0 as f32, bounds.y0 as f32),
                eframe::egui::pos2(bounds.x1 as f32, bounds.y1 as f32),
            );
            if rect.is_positive() && rect.width() < width {
                assert!(
                    rect.left() >= -0.5 && rect.right() <= width + 0.5,
                    "{width}x{height}: {:?} at {rect:?} leaves the window",
                    node.accesskit_node().label()
                );
            }
        }
        let rows = [
            "Arsenal v Chelsea",
            "Los Angeles Lakers v Boston Celtics",
            "Argentina v France",
            "Coco Gauff v Aryna Sabalenka",
        ];
        let mut score_columns = Vec::new();
        for title in rows {
            let rect = row(&harness, title);
            if !window.contains_rect(rect) {
                continue; // scrolled out of view at this height
            }
            let labels = labels_in(&harness, rect);
            // Both names are visible (not cut to nothing) and do not overlap anything else.
            for (text, label) in &labels {
                assert!(
                    label.width() >= 8.0,
                    "{width}: {text:?} in {title} squeezed to {label:?}"
                );
                for (other, other_rect) in &labels {
                    if other != text && label.intersects(*other_rect) {
                        let overlap = label.intersect(*other_rect);
                        assert!(
                            overlap.width() < 1.0 || overlap.height() < 1.0,
                            "{width}: {text:?} overlaps {other:?} in {title}"
                        );
                    }
                }
            }
            let scores: Vec<&Rect> = labels
                .iter()
                .filter(|(text, _)| text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty())
                .map(|(_, rect)| rect)
                .collect();
            if let Some(score) = scores.iter().max_by(|a, b| a.right().total_cmp(&b.right())) {
                score_columns.push((title, rect.right() - score.right()));
            }
        }
        // Scores line up: every row's score column ends at the same distance from the row's
        // end, whatever the sport, the shoot-out or the column the row is in.
        let first = score_columns.first().map(|(_, x)| *x);
        assert!(
            score_columns.iter().all(|(_, x)| Some(*x) == first),
            "{width}: score columns {score_columns:?}"
        );
        assert!(
            score_columns.len() >= 2,
            "{width}: rows on screen {score_columns:?}"
        );

        // The menu sits beside the scores only where there is room; below that a button opens it.
        let menu_visible = harness.query_by_label("Following").is_some();
        assert_eq!(
            menu_visible,
            width >= 1180.0,
            "{width}: menu shown {menu_visible}"
        );
        if width >= 1180.0 {
            // A wide screen uses its width: the first live match is shown beside the scores,
            // its header centred in its panel (nothing pushes the panel wider than it is).
            let live_now = harness.get_by_label("LIVE NOW").rect();
            let context = harness
                .get_all_by_label("FIFA World Cup 2022")
                .map(|node| node.rect())
                .max_by(|a, b| a.right().total_cmp(&b.right()))
                .unwrap();
            let score = harness.get_by_label("3 – 3").rect();
            let middle = (live_now.left() + context.right()) / 2.0;
            assert!(
                (score.center().x - middle).abs() < 2.0,
                "{width}: score at {score:?}, panel content {live_now:?}..{context:?}"
            );
            assert!(context.right() <= width - 8.0, "{width}: {context:?}");
        }
    }
}

#[test]
fn in_a_narrow_window_the_menu_and_a_match_take_the_whole_window_in_turn() {
    let mut harness = harness_sized(connected_with(&["football"], all_matches()), 400.0, 800.0);
    harness.run();
    assert!(
        harness.query_by_label("Following").is_none(),
        "scores first"
    );
    harness.get_by_label("Menu").click();
    harness.run();
    harness.get_by_label("Following");
    assert!(harness.query_by_label("Arsenal v Chelsea").is_none());
    harness.get_by_label("‹ Scores").click();
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Arsenal v Chelsea")
        .click();
    harness.run();
    harness.get_by_label("‹ Back");
    harness.get_by_label("Timeline");
    harness.get_by_label("‹ Back").click();
    harness.run();
    assert!(harness.state().session.open_match().is_none());
}

#[test]
fn ticking_a_competition_in_the_catalogue_follows_and_subscribes_it() {
    let mut harness = harness(connected(&["basketball"]));
    harness.run();
    let checkbox = harness.get_by_role_and_label(Role::CheckBox, "Premier League");
    assert_eq!(checkbox.accesskit_node().toggled(), Some(Toggled::False));
    checkbox.click();
    harness.run();

    let session = &mut harness.state_mut().session;
    assert!(
        session
            .follows()
            .contains(&topic("football/premier-league"))
    );
    assert_eq!(
        session.take_actions(),
        vec![Action::Send(ClientMessage::Subscribe {
            topics: vec!["football/premier-league".into()],
            resume: Default::default(),
            delay_secs: None,
        })]
    );
    // The followed list shows it by name, with a way to stop following.
    harness.get_by_label("Premier League (Football)");

    // A competition under a followed sport is ticked and cannot be unticked on its own.
    let nba = harness.get_by_role_and_label(Role::CheckBox, "NBA");
    assert_eq!(nba.accesskit_node().toggled(), Some(Toggled::True));
    assert!(nba.accesskit_node().is_disabled());
}

#[test]
fn unticking_a_sport_unfollows_it_and_clears_its_matches() {
    let mut harness = harness(connected(&["football", "basketball"]));
    harness.run();
    harness.get_by_label("Los Angeles Lakers v Boston Celtics");
    harness
        .get_by_role_and_label(Role::CheckBox, "🏀 Basketball")
        .click();
    harness.run();
    assert!(
        harness
            .query_by_label("Los Angeles Lakers v Boston Celtics")
            .is_none()
    );
    let session = &mut harness.state_mut().session;
    assert_eq!(session.follows().to_strings(), vec!["football"]);
    assert_eq!(
        session.take_actions(),
        vec![Action::Send(ClientMessage::Unsubscribe {
            topics: vec!["basketball".into()]
        })]
    );
}

#[test]
fn a_team_is_found_by_name_and_followed() {
    let mut harness = harness(connected(&["basketball"]));
    harness.run();
    harness.get_by_label("Search teams").focus();
    harness.run();
    harness.get_by_label("Search teams").type_text("arsen");
    harness.run();
    harness.get_by_label("Arsenal");
    harness.get_by_label("Follow").click();
    harness.run();
    let session = &mut harness.state_mut().session;
    let arsenal = TeamFollow::new(topic("football"), "Arsenal").unwrap();
    assert!(session.follows().follows_team(&arsenal));
    assert_eq!(
        session.take_actions(),
        vec![Action::Send(ClientMessage::Subscribe {
            topics: vec!["football/premier-league/ars-che".into()],
            resume: Default::default(),
            delay_secs: None,
        })]
    );
    harness.get_by_role_and_label(Role::Button, "Following");
    // A team of a sport already followed needs no follow of its own.
    harness.state_mut().view.team_query = "lakers".into();
    harness.run();
    assert!(
        harness
            .get_by_role_and_label(Role::Button, "Following")
            .accesskit_node()
            .is_disabled()
    );
}

#[test]
fn opening_a_match_shows_scorers_periods_progression_and_timeline_then_closes() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Arsenal v Chelsea")
        .click();
    harness.run();
    assert_eq!(
        harness
            .state()
            .session
            .open_match()
            .map(|open| open.snapshot.match_topic.as_str()),
        Some("football/premier-league/ars-che")
    );
    harness.get_by_label("2 – 1");
    harness.get_by_label("Saka 21'");
    harness.get_by_label("1H");
    harness.get_by_label("Score progression (goals)");
    harness.get_by_label("Timeline");
    harness.get_by_label("Goal ARS — Saka");
    harness.get_by_label("Goal CHE — Palmer");
    harness.get_by_label("Start of 1st half");

    harness.get_by_label("Close").click();
    harness.run();
    assert!(harness.state().session.open_match().is_none());
}

#[test]
fn a_lost_connection_shows_the_countdown_and_marks_live_matches_only() {
    let mut session = connected(&["football"]);
    session.lost(
        NOW_MS - 1_000,
        "read: Connection reset without closing handshake",
    );
    assert_eq!(session.take_actions(), vec![Action::Disconnect]);
    let mut harness = harness(session);
    harness.run();
    harness.get_by_label_contains("Reconnecting in");
    harness.get_by_label("Connection lost: reset by the network or the server");
    // The live match may be behind; the upcoming one too (it may have started).
    assert_eq!(harness.get_all_by_label("⏳").count(), 2);
    harness.get_by_label("2 not up to date");

    harness.get_by_label("Retry now").click();
    harness.run();
    assert_eq!(
        harness.state_mut().session.take_actions(),
        vec![Action::Connect("ws://127.0.0.1:8080/ws".into())]
    );
    harness.get_by_label("Connecting…");
}

#[test]
fn the_server_field_switches_servers_and_refuses_a_bad_address() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness.state_mut().view.url_draft = "127.0.0.1:9999/ws".into();
    harness.run();
    harness.get_by_label("Connect").click();
    harness.run();
    harness.get_by_label(
        "Not a server address: it must start with ws:// (for example ws://127.0.0.1:9999/ws)",
    );
    assert!(harness.state_mut().session.take_actions().is_empty());
    assert!(harness.state().session.is_connected());

    harness.state_mut().view.url_draft = "ws://127.0.0.1:9999/ws".into();
    harness.run();
    harness.get_by_label("Connect").click();
    harness.run();
    let session = &mut harness.state_mut().session;
    assert_eq!(session.url(), "ws://127.0.0.1:9999/ws");
    assert!(
        session.scoreboard().is_empty(),
        "the old server's matches are gone"
    );
    assert!(
        session
            .take_actions()
            .contains(&Action::Connect("ws://127.0.0.1:9999/ws".into()))
    );
}

#[test]
fn a_fan_who_follows_nothing_is_offered_everything() {
    let mut harness = harness(connected(&[]));
    harness.run();
    harness.get_by_label("Follow teams, competitions or sports to see their scores here.");
    harness
        .get_all_by_label("Show everything")
        .next()
        .unwrap()
        .click();
    harness.run();
    let session = &mut harness.state_mut().session;
    assert_eq!(
        session.take_actions(),
        vec![Action::Send(ClientMessage::Subscribe {
            topics: vec!["basketball".into(), "football".into()],
            resume: Default::default(),
            delay_secs: None,
        })]
    );
}

#[test]
fn a_topic_typed_by_hand_is_followed_and_a_bad_one_explained() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness.get_by_label("Follow by topic").click();
    harness.run();
    harness.state_mut().view.topic_draft = "Tennis Finals".into();
    harness.run();
    harness.get_by_label_contains("Not a topic");
    assert!(harness.get_by_label("Add").accesskit_node().is_disabled());

    harness.state_mut().view.topic_draft = "tennis/atp-finals".into();
    harness.run();
    assert!(harness.query_by_label_contains("Not a topic").is_none());
    harness.get_by_label("Add").click();
    harness.run();
    let session = &mut harness.state_mut().session;
    assert!(session.follows().contains(&topic("tennis/atp-finals")));
    assert_eq!(
        session.take_actions(),
        vec![Action::Send(ClientMessage::Subscribe {
            topics: vec!["tennis/atp-finals".into()],
            resume: Default::default(),
            delay_secs: None,
        })]
    );
    assert!(harness.state().view.topic_draft.is_empty());
}

fn welcome(max_delay_secs: u32) -> ServerMessage {
    ServerMessage::Welcome {
        protocol: scoreline_protocol::PROTOCOL_VERSION,
        server: "scoreline/test".into(),
        heartbeat_secs: 15,
        idle_timeout_secs: 45,
        limits: scoreline_protocol::Limits {
            max_topics: 64,
            max_frame_bytes: 16_384,
            max_requests_per_sec: 20,
            max_snapshots: 100,
            max_delay_secs,
        },
    }
}

#[test]
fn the_open_match_says_how_many_fans_watch_it_and_the_list_does_not() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Arsenal v Chelsea")
        .click();
    harness.run();
    // Opening it subscribed its own topic: the server counts this fan and says how many.
    let sent = harness.state_mut().session.take_actions();
    assert_eq!(
        sent,
        vec![Action::Send(ClientMessage::Subscribe {
            topics: vec!["football/premier-league/ars-che".into()],
            resume: Default::default(),
            delay_secs: None,
        })]
    );
    assert!(harness.query_by_label_contains("watching").is_none());
    let arsenal = MatchTopic::parse("football/premier-league/ars-che").expect("valid topic");
    harness.state_mut().session.receive(
        ServerMessage::Watching {
            match_topic: arsenal.clone(),
            fans: 1_204,
        },
        NOW_MS,
    );
    // Counts of other matches, should a server send them, are not kept: no one keeps them
    // current for this viewer.
    harness.state_mut().session.receive(
        ServerMessage::Watching {
            match_topic: MatchTopic::parse("football/la-liga/rma-fcb").expect("valid topic"),
            fans: 99,
        },
        NOW_MS,
    );
    harness.run();
    let count = harness.get_by_label("1,204 watching").rect();
    assert_eq!(harness.get_all_by_label_contains("watching").count(), 1);
    let row = row(&harness, "Arsenal v Chelsea");
    assert!(
        !row.intersects(count),
        "in the detail, not on the row: {row:?} {count:?}"
    );
    let score = harness.get_by_label("2 – 1").rect();
    assert!(count.top() > score.bottom(), "beneath the score");

    harness.get_by_label("Close").click();
    harness.run();
    assert!(harness.query_by_label_contains("watching").is_none());
    assert_eq!(harness.state().session.watching(&arsenal), None);
}

#[test]
fn sync_with_my_stream_delays_the_board_and_the_status_bar_says_so() {
    let mut session = connected(&["football"]);
    session.receive(welcome(300), NOW_MS - 7_000);
    let mut harness = harness(session);
    harness.run();
    harness.get_by_role_and_label(Role::Label, "Sync with my stream");
    let control = harness.get_by_role_and_label(Role::Slider, "Sync with my stream");
    assert!(!control.accesskit_node().is_disabled());
    control.set_value_accesskit(40.0);
    harness.run();
    assert_eq!(harness.state().session.delay_secs(), 40);
    harness.get_by_label("Delaying 40 s…");

    // Once the control rests, one subscribe moves every topic to the delay.
    let fixture = harness.state_mut();
    fixture.session.take_actions();
    fixture
        .session
        .tick(NOW_MS + scoreline_viewer::session::DELAY_SETTLE_MILLIS);
    let sent: Vec<ClientMessage> = fixture
        .session
        .take_actions()
        .into_iter()
        .filter_map(|action| match action {
            Action::Send(message @ ClientMessage::Subscribe { .. }) => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![ClientMessage::subscribe([&topic("football")]).delayed(40)]
    );
    // The server's state 40 s ago: Rice's goal had not happened yet. The board goes back to
    // 1-1 without a "NO GOAL", and says it is delayed.
    let before = played(
        "football/premier-league/ars-che",
        Team::new("Arsenal", "ARS"),
        Team::new("Chelsea", "CHE"),
        "Premier League",
        vec![
            EventKind::MatchStarted,
            EventKind::PeriodStarted { period: 1 },
            goal(Side::Home, "Saka"),
            goal(Side::Away, "Palmer"),
        ],
    );
    fixture.session.receive(
        ServerMessage::Subscribed {
            topics: vec![topic("football")],
            snapshots: vec![before, madrid_barcelona(), lakers_celtics()],
            omitted: 0,
            resumed: Vec::new(),
            delay_secs: 40,
        },
        NOW_MS + 1_000,
    );
    harness.run();
    harness.get_by_label("Delayed 40 s");
    let arsenal = row(&harness, "Arsenal v Chelsea");
    let texts: Vec<String> = labels_in(&harness, arsenal)
        .into_iter()
        .map(|label| label.0)
        .collect();
    assert_eq!(
        texts.iter().filter(|text| *text == "1").count(),
        2,
        "1-1: {texts:?}"
    );
    assert!(!texts.contains(&"2".to_owned()), "{texts:?}");
    assert!(!texts.iter().any(|text| text.contains("GOAL")), "{texts:?}");
    assert!(!texts.iter().any(|text| text.contains("Rice")), "{texts:?}");
}

#[test]
fn the_delay_control_is_disabled_on_a_server_without_one() {
    let mut session = connected(&["football"]);
    session.receive(welcome(0), NOW_MS - 7_000);
    let mut harness = harness(session);
    harness.run();
    let control = harness.get_by_role_and_label(Role::Slider, "Sync with my stream");
    assert!(control.accesskit_node().is_disabled());
    control.hover();
    harness.run();
    harness.get_by_label("This server has no spoiler delay.");
    assert!(harness.query_by_label_contains("Delayed").is_none());
}
