//! Importing StatsBomb open-data events, from a small sample written by hand in that format
//! (a fictional match: StatsBomb's own files may not be shipped).

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

use std::path::Path;

use feed_replayer::statsbomb::{ImportError, ImportOptions, import, match_info};
use feed_replayer::validate;
use scoreline_protocol::{CardColour, EventKind, MatchTopic, Side};

fn sample(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/statsbomb")
            .join(name),
    )
    .unwrap()
}

fn options() -> ImportOptions {
    ImportOptions {
        match_topic: Some(MatchTopic::parse("football/sample-cup/riv-hil").unwrap()),
        kickoff_ms: 1_700_000_000_000,
        competition: Some("Sample Cup".into()),
        source: "test sample".into(),
        ..ImportOptions::default()
    }
}

#[test]
fn the_sample_imports_to_the_expected_score_story() {
    let fixture = import(
        &sample("events-sample.json"),
        Some(&sample("lineups-sample.json")),
        options(),
    )
    .unwrap();
    let snapshot = validate::check(&fixture).unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(
        (
            fixture.header.home.name.as_str(),
            fixture.header.away.name.as_str()
        ),
        ("Riverside FC", "Hillcrest United")
    );
    assert_eq!((snapshot.score.home, snapshot.score.away), (2, 2));
    assert_eq!(snapshot.shootout.map(|s| (s.home, s.away)), Some((3, 2)));
    assert_eq!(snapshot.winner, Some(Side::Home));
    assert_eq!(
        (snapshot.cards.away.yellow, snapshot.cards.away.red),
        (1, 1)
    );
    let per_period: Vec<(u8, u32, u32)> = snapshot
        .periods
        .iter()
        .map(|p| (p.period, p.home, p.away))
        .collect();
    assert_eq!(
        per_period,
        [(1, 1, 0), (2, 1, 2), (3, 0, 0), (4, 0, 0), (5, 0, 0)]
    );

    let kinds: Vec<&EventKind> = fixture.events.iter().map(|event| &event.kind).collect();
    // The own goal is one goal for the other side, credited to the defender (the "Own Goal For"
    // twin adds nothing).
    let own_goals: Vec<_> = kinds
        .iter()
        .filter(|kind| matches!(kind, EventKind::Goal { own_goal: true, .. }))
        .collect();
    assert_eq!(own_goals.len(), 1);
    assert!(
        matches!(own_goals[0], EventKind::Goal { side: Side::Away, player: Some(player), .. } if player == "Dan Park")
    );
    assert!(kinds.iter().any(|kind| matches!(
        kind,
        EventKind::Goal {
            side: Side::Away,
            penalty: true,
            ..
        }
    )));
    // Lineup nicknames replace full names.
    assert!(kinds.iter().any(
        |kind| matches!(kind, EventKind::Goal { player: Some(player), .. } if player == "Ana Ruiz")
    ));
    assert!(kinds.iter().any(|kind| matches!(kind,
        EventKind::Substitution { side: Side::Away, player_on: Some(on), player_off: Some(off) } if on == "Eli Stone" && off == "Ben Cole")));
    assert!(kinds.iter().any(|kind| matches!(kind, EventKind::Card { card: CardColour::Red, player: Some(player), .. } if player == "Fay Moss")));
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| matches!(kind, EventKind::ShootoutKick { .. }))
            .count(),
        8
    );

    // Timestamps restart every period: the second half's first event comes after the first
    // half's 47:10 plus the 15-minute break, and its clock reads 45:00.
    let second_half = fixture
        .events
        .iter()
        .find(|event| event.kind == EventKind::PeriodStarted { period: 2 })
        .unwrap();
    assert_eq!(second_half.offset_ms, (47 * 60 + 10) * 1000 + 15 * 60_000);
    assert_eq!(second_half.clock_secs, Some(2700));
    let penalty = fixture
        .events
        .iter()
        .find(|event| matches!(event.kind, EventKind::Goal { penalty: true, .. }))
        .unwrap();
    assert_eq!(penalty.offset_ms, second_half.offset_ms + 25 * 60_000 + 500);
    assert_eq!(penalty.clock_secs, Some(70 * 60));
    assert!(
        fixture
            .events
            .windows(2)
            .all(|pair| pair[0].offset_ms <= pair[1].offset_ms)
    );
}

#[test]
fn without_lineups_the_event_names_are_used() {
    let fixture = import(&sample("events-sample.json"), None, options()).unwrap();
    assert!(fixture.events.iter().any(|event| matches!(&event.kind, EventKind::Goal { player: Some(player), .. } if player == "Ana María Ruiz Soto")));
}

#[test]
fn broken_input_is_refused_with_a_reason() {
    let error = import("[{\"period\": 1,", None, options()).unwrap_err();
    assert!(matches!(error, ImportError::Json { what: "events", .. }));
    let cause = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(cause.contains("line 1"), "{cause}");

    let events = sample("events-sample.json");
    let error = import(
        &events.replacen(
            "\"timestamp\": \"00:12:30.250\"",
            "\"timestamp\": \"12:30\"",
            1,
        ),
        None,
        options(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("timestamp \"12:30\""), "{error}");

    let error = import(
        &events.replacen("\"period\": 3", "\"period\": 7", 1),
        None,
        options(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("period 7"), "{error}");

    // The away Starting XI (its possession team and team) names a third team.
    let three_teams = events.replacen(
        "\"name\": \"Hillcrest United\"",
        "\"name\": \"Someone Else\"",
        2,
    );
    assert!(matches!(
        import(&three_teams, None, options()).unwrap_err(),
        ImportError::Teams(3)
    ));

    let mut tennis = options();
    tennis.match_topic = Some(MatchTopic::parse("tennis/x/y").unwrap());
    assert!(matches!(
        import(&events, None, tennis).unwrap_err(),
        ImportError::NotFootball(_)
    ));

    assert!(matches!(
        import(&events, Some("{}"), options()).unwrap_err(),
        ImportError::Json {
            what: "lineups",
            ..
        }
    ));
}

#[test]
fn the_cli_writes_a_fixture_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("riv-hil.jsonl");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/statsbomb");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(["import", "statsbomb"])
        .arg(data.join("events-sample.json"))
        .arg("--lineups")
        .arg(data.join("lineups-sample.json"))
        .args(["--topic", "football/sample-cup/riv-hil", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let validated = std::process::Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .arg("validate")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&validated.stdout)
            .contains("Riverside FC 2-2 Hillcrest United (3-2 pens)")
    );
}

#[test]
fn without_a_topic_one_is_made_from_the_competition_teams_and_date() {
    let events = sample("events-sample.json");
    let plain = import(
        &events,
        None,
        ImportOptions {
            source: "test sample".into(),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        plain.header.match_topic.as_str(),
        "football/statsbomb/riverside-fc-hillcrest-united"
    );

    let info = match_info(&sample("matches-sample.json"), 7001).unwrap();
    assert_eq!(info.date, "2024-05-18");
    assert_eq!(info.competition.as_deref(), Some("Sample Cup 2023/2024"));
    assert_eq!(info.home, "Riverside FC");
    // 2024-05-18 17:30 UTC.
    assert_eq!(info.kickoff_ms, Some(1_716_053_400_000));
    let dated = import(
        &events,
        None,
        ImportOptions {
            kickoff_ms: info.kickoff_ms.unwrap(),
            competition: info.competition.clone(),
            topic_competition: info.competition_name.clone(),
            venue: info.venue.clone(),
            home_team: Some(info.home.clone()),
            date: Some(info.date.clone()),
            source: "test sample".into(),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        dated.header.match_topic.as_str(),
        "football/sample-cup/riverside-fc-hillcrest-united-2024-05-18"
    );
    assert_eq!(dated.header.venue.as_deref(), Some("Riverside Park"));
    assert_eq!(dated.header.kickoff_ms, 1_716_053_400_000);

    // The matches file's home team wins over the order of the Starting XI events.
    let other_way = match_info(&sample("matches-sample.json"), 7002).unwrap();
    let swapped = import(
        &events,
        None,
        ImportOptions {
            home_team: Some(other_way.home.clone()),
            date: Some(other_way.date.clone()),
            source: "test sample".into(),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(swapped.header.home.name, "Hillcrest United");
    assert_eq!(
        swapped.header.match_topic.as_str(),
        "football/statsbomb/hillcrest-united-riverside-fc-2024-05-25"
    );
    let snapshot = validate::check(&swapped).unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!((snapshot.score.home, snapshot.score.away), (2, 2));
    assert_eq!(snapshot.shootout.map(|s| (s.home, s.away)), Some((2, 3)));

    assert!(matches!(
        match_info(&sample("matches-sample.json"), 1).unwrap_err(),
        ImportError::NotListed(1)
    ));
}

#[test]
fn the_cli_imports_without_a_topic_using_the_matches_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported.jsonl");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/statsbomb");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(["import", "statsbomb"])
        .arg(data.join("events-sample.json"))
        .arg("--matches")
        .arg(data.join("matches-sample.json"))
        .args(["--match-id", "7001", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{message}");
    assert!(
        message.contains("topic football/sample-cup/riverside-fc-hillcrest-united-2024-05-18"),
        "{message}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(r#""competition":"Sample Cup 2023/2024""#),
        "{text}"
    );

    // Without --match-id the events file's name must say which match it is.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(["import", "statsbomb"])
        .arg(data.join("events-sample.json"))
        .arg("--matches")
        .arg(data.join("matches-sample.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--match-id"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
