//! UI tests: drive the real drawing code with egui_kittest, by accessible role and label, on a
//! session fed with plain protocol values (no socket). Each test checks both what the fan sees
//! and the commands the UI produced, applied to the session as the app does.

use eframe::egui::Role;
use eframe::egui::accesskit::Toggled;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use scoreline_protocol::test_support::{self, goal_by};
use scoreline_protocol::{
    ClientMessage, EventKind, MatchSnapshot, MatchSummary, MatchTopic, ScoreEvent, ServerMessage,
    Side, Team, Topic, apply,
};
use scoreline_viewer::connection::{Backoff, Jitter, Link};
use scoreline_viewer::follow::FollowList;
use scoreline_viewer::session::{Action, Session};
use scoreline_viewer::ui::{ViewState, viewer_ui};

/// 2026-11-24 15:00 UTC.
const NOW_MS: u64 = 1_795_964_400_000;

struct Fixture {
    session: Session,
    view: ViewState,
}

fn harness(session: Session) -> Harness<'static, Fixture> {
    let fixture = Fixture {
        view: ViewState::new(&session),
        session,
    };
    Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_ui_state(
            |ui, fixture: &mut Fixture| {
                let commands = viewer_ui(ui, &fixture.session, &mut fixture.view, NOW_MS);
                for command in commands {
                    fixture.session.command(command, NOW_MS);
                }
            },
            fixture,
        )
}

fn topic(text: &str) -> Topic {
    Topic::parse(text).expect("valid topic literal")
}

/// A match built by the protocol's own reducer from `kinds`, numbered from seq 1.
fn played(
    topic: &str,
    home: Team,
    away: Team,
    competition: &str,
    kinds: Vec<EventKind>,
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
        tennis: None,
    };
    for (index, kind) in std::iter::once(schedule).chain(kinds).enumerate() {
        let seq = index as u64 + 1;
        let event = ScoreEvent {
            ts_ms: NOW_MS - 3_000_000 + seq * 60_000,
            clock_secs: Some(seq as u32 * 300),
            ..test_support::event(match_topic.as_str(), seq, kind)
        };
        apply(&mut snapshot, &event).expect("fixture events apply in order");
    }
    snapshot
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
            goal_by(Side::Home, "Saka"),
            goal_by(Side::Away, "Palmer"),
            goal_by(Side::Home, "Rice"),
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
        Team::new("Lakers", "LAL"),
        Team::new("Celtics", "BOS"),
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

/// A connected session following `follows`, holding the three matches and a catalogue of them.
fn connected(follows: &[&str]) -> Session {
    let mut session = Session::new(
        "ws://127.0.0.1:8080/ws".into(),
        FollowList::new(follows.iter().map(|t| topic(t))),
        Link::new(Backoff::default(), Jitter::new(1)),
    );
    session.start(NOW_MS - 10_000);
    session.opened(NOW_MS - 9_000);
    let snapshots = vec![arsenal_chelsea(), madrid_barcelona(), lakers_celtics()];
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
        },
        NOW_MS - 8_000,
    );
    session.take_actions();
    session
}

#[test]
fn scoreboard_groups_live_and_upcoming_and_the_filter_narrows_it() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness.get_by_label("Live (1)");
    harness.get_by_label("Upcoming (1)");
    harness.get_by_label("⚽ Football · Premier League");
    harness.get_by_label("2 – 1");
    harness.get_by_role_and_label(Role::Button, "Arsenal v Chelsea");
    assert!(
        harness.query_by_label("Lakers v Celtics").is_none(),
        "basketball is not followed"
    );

    let filter = harness.get_by_label("Filter");
    filter.focus();
    harness.run();
    harness.get_by_label("Filter").type_text("madrid");
    harness.run();
    assert_eq!(harness.state().view.filter, "madrid");
    harness.get_by_role_and_label(Role::Button, "Real Madrid v Barcelona");
    assert!(harness.query_by_label("Arsenal v Chelsea").is_none());
    assert!(harness.query_by_label("Live (1)").is_none());

    harness.get_by_label("Clear filter").click();
    harness.run();
    harness.get_by_label("Arsenal v Chelsea");
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
        })]
    );
    // The followed list shows it, with a way to stop following.
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
    harness.get_by_label("Lakers v Celtics");
    harness
        .get_by_role_and_label(Role::CheckBox, "Basketball")
        .click();
    harness.run();
    assert!(harness.query_by_label("Lakers v Celtics").is_none());
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
fn opening_a_match_shows_periods_progression_and_timeline_then_closes() {
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
    harness.get_by_label("Arsenal   2 – 1   Chelsea");
    harness.get_by_label("1H");
    harness.get_by_label("Score progression (goals)");
    harness.get_by_label("Timeline");
    harness.get_by_label("Goal ARS — Saka");
    harness.get_by_label("Goal CHE — Palmer");
    harness.get_by_label("Start of 1st half");

    harness.get_by_label("Close").click();
    harness.run();
    assert!(harness.state().session.open_match().is_none());
    assert!(harness.query_by_label("Timeline").is_none());
}

#[test]
fn a_lost_connection_shows_the_countdown_and_marks_every_match_stale() {
    let mut session = connected(&["football"]);
    session.lost(NOW_MS - 1_000, "connection reset by peer");
    assert_eq!(session.take_actions(), vec![Action::Disconnect]);
    let mut harness = harness(session);
    harness.run();
    harness.get_by_label_contains("Reconnecting in");
    harness.get_by_label_contains("connection reset by peer");
    assert_eq!(harness.get_all_by_label("⏳ stale").count(), 2);
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
fn the_server_field_switches_servers() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness.get_by_label("Server").focus();
    harness.run();
    harness.state_mut().view.url_draft.clear();
    harness.run();
    harness
        .get_by_label("Server")
        .type_text("ws://127.0.0.1:9999/ws");
    harness.run();
    harness.get_by_label("Connect").click();
    harness.run();
    let session = &mut harness.state_mut().session;
    assert_eq!(session.url(), "ws://127.0.0.1:9999/ws");
    assert!(
        session
            .take_actions()
            .contains(&Action::Connect("ws://127.0.0.1:9999/ws".into()))
    );
}

#[test]
fn a_topic_typed_by_hand_is_followed_and_a_bad_one_explained() {
    let mut harness = harness(connected(&["football"]));
    harness.run();
    harness.get_by_label("Topic").focus();
    harness.run();
    harness.get_by_label("Topic").type_text("Tennis Finals");
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
        })]
    );
    assert!(harness.state().view.topic_draft.is_empty());
}
