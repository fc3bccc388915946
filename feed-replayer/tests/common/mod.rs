//! What the end-to-end tests (`no_wrong_score.rs`, `sentinel.rs`) share: the recorded matches, and
//! the one definition of "this fan shows the right result".

use std::path::Path;

use feed_replayer::fixture::{self, Fixture};
use scoreline_protocol::MatchSnapshot;

/// Every recorded match in `fixtures/`, in path order.
pub fn fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut paths = Vec::new();
    for sport in ["football", "basketball", "tennis"] {
        for entry in std::fs::read_dir(root.join(sport)).expect("fixtures directory") {
            let path = entry.expect("fixtures entry").path();
            if path.extension().is_some_and(|ext| ext == "jsonl") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| fixture::read(path).expect("a valid fixture"))
        .collect()
}

/// How a snapshot differs from the fixture's recorded result (names, competition, status, score,
/// winner, shoot-out, and not stale), or `None` when it matches.
pub fn wrong(snapshot: Option<&MatchSnapshot>, fixture: &Fixture) -> Option<String> {
    let Some(snapshot) = snapshot else {
        return Some("no state at all".to_owned());
    };
    let (header, result) = (&fixture.header, &fixture.header.result);
    let shown = (
        snapshot.home.name.as_str(),
        snapshot.away.name.as_str(),
        snapshot.competition.as_deref(),
        snapshot.status,
        snapshot.score,
        snapshot.winner,
        snapshot.shootout,
        snapshot.stale,
    );
    let recorded = (
        header.home.name.as_str(),
        header.away.name.as_str(),
        header.competition.as_deref(),
        result.status,
        result.score,
        result.winner,
        result.shootout,
        false,
    );
    (shown != recorded).then(|| format!("shows {shown:?}, recorded {recorded:?}"))
}
