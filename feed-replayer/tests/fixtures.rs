//! Every committed fixture validates, and together they cover what the demo promises.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

use std::path::{Path, PathBuf};

use feed_replayer::{fixture, validate};
use scoreline_protocol::{MatchStatus, Sport};

fn fixture_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixtures dir lists") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            fixture_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "jsonl") {
            found.push(path);
        }
    }
}

#[test]
fn every_fixture_validates_and_the_set_covers_three_sports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut files = Vec::new();
    fixture_files(&root, &mut files);
    files.sort();
    assert!(files.len() >= 8, "only {} fixtures", files.len());
    let mut sports = Vec::new();
    let mut topics = std::collections::HashSet::new();
    for file in &files {
        let fixture = fixture::read(file).unwrap_or_else(|error| panic!("{error}"));
        let snapshot = validate::check(&fixture).unwrap_or_else(|problems| {
            panic!("{}: {problems:?}", file.display());
        });
        assert_eq!(
            snapshot.status,
            MatchStatus::Finished,
            "{} is a complete match",
            file.display()
        );
        assert!(
            topics.insert(fixture.header.match_topic.clone()),
            "{} reuses a topic",
            file.display()
        );
        sports.push(fixture.sport());
    }
    for sport in [Sport::Football, Sport::Basketball, Sport::Tennis] {
        assert!(sports.contains(&sport), "no {sport:?} fixture");
    }
    assert!(
        sports
            .iter()
            .filter(|sport| **sport == Sport::Football)
            .count()
            >= 3
    );
}

#[test]
fn every_fixture_with_clock_ticks_is_accepted_event_by_event() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut files = Vec::new();
    fixture_files(&root, &mut files);
    for file in &files {
        let fixture = fixture::read(file).unwrap();
        let plan = feed_replayer::plan::Plan::of(&fixture)
            .unwrap()
            .with_clock_ticks(30);
        let mut snapshot = scoreline_protocol::MatchSnapshot::new(plan.match_topic.clone());
        for index in 0..plan.events.len() {
            let planned = &plan.events[index];
            let event = plan.stamp(index, 1, 0, planned.offset_ms);
            scoreline_protocol::apply(&mut snapshot, &event)
                .unwrap_or_else(|error| panic!("{} seq {}: {error}", file.display(), planned.seq));
        }
        assert_eq!(
            snapshot.score,
            fixture.header.result.score,
            "{}",
            file.display()
        );
        let ticks = plan.events.len() - fixture.events.len() - 1;
        match fixture.sport() {
            Sport::Football | Sport::Basketball => {
                assert!(ticks > 20, "{}: {ticks} ticks", file.display())
            }
            _ => assert_eq!(ticks, 0, "{}", file.display()),
        }
    }
}

#[test]
fn the_historic_finals_keep_their_real_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let check = |file: &str| {
        let fixture = fixture::read(&root.join(file)).unwrap();
        validate::check(&fixture).unwrap()
    };
    let world_cup = check("football/world-cup-2022-final-arg-fra.jsonl");
    assert_eq!((world_cup.score.home, world_cup.score.away), (3, 3));
    assert_eq!(world_cup.shootout.map(|s| (s.home, s.away)), Some((4, 2)));
    let istanbul = check("football/champions-league-2005-final-mil-liv.jsonl");
    assert_eq!(istanbul.shootout.map(|s| (s.home, s.away)), Some((2, 3)));
    let barcelona = check("football/champions-league-1999-final-mun-bay.jsonl");
    assert_eq!((barcelona.score.home, barcelona.score.away), (2, 1));
    let game_seven = check("basketball/nba-finals-2016-game-7-gsw-cle.jsonl");
    assert_eq!((game_seven.score.home, game_seven.score.away), (89, 93));
    let melbourne = check("tennis/australian-open-2012-final-djo-nad.jsonl");
    let sets: Vec<(u32, u32)> = melbourne
        .periods
        .iter()
        .map(|set| (set.home, set.away))
        .collect();
    assert_eq!(sets, [(5, 7), (6, 4), (6, 2), (6, 7), (7, 5)]);
}
