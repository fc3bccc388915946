//! The score story check: does replaying a fixture through the protocol's reducer arrive at the
//! result its header records?
//!
//! It replays exactly the events a replay would publish ([`crate::plan::Plan`]), so a fixture
//! that validates is one the service will accept event by event.

use scoreline_protocol::{MatchSnapshot, apply};

use crate::fixture::{Fixture, Problem, RecordedResult};
use crate::plan::Plan;

impl RecordedResult {
    /// Everything a snapshot says about the outcome, as a fixture records it.
    pub fn from_snapshot(snapshot: &MatchSnapshot) -> RecordedResult {
        let cards = snapshot.cards;
        RecordedResult {
            status: snapshot.status,
            score: snapshot.score,
            winner: snapshot.winner,
            shootout: snapshot.shootout,
            periods: Some(snapshot.periods.clone()),
            cards: (cards != Default::default()).then_some(cards),
        }
    }
}

/// Replays the fixture through the reducer and compares the final snapshot with the recorded
/// result. Returns the final snapshot, or the problems (a rejected event stops the replay, as
/// everything after it would be judged against a wrong state).
pub fn check(fixture: &Fixture) -> Result<MatchSnapshot, Vec<Problem>> {
    let snapshot = story(fixture)?;
    let problems = compare(&fixture.header.result, &snapshot);
    if problems.is_empty() {
        Ok(snapshot)
    } else {
        Err(problems)
    }
}

/// Replays the fixture through the reducer, ignoring the recorded result: the final snapshot, or
/// the line of the first event the reducer rejects. Generators and recorders use it to fill in
/// the result.
pub fn story(fixture: &Fixture) -> Result<MatchSnapshot, Vec<Problem>> {
    let plan = Plan::of(fixture).map_err(|problem| vec![problem])?;
    let kickoff_ms = fixture.header.kickoff_ms;
    let mut snapshot = MatchSnapshot::new(plan.match_topic.clone());
    for (index, planned) in plan.events.iter().enumerate() {
        let event = plan.stamp(
            index,
            0,
            kickoff_ms,
            kickoff_ms.saturating_add(planned.offset_ms),
        );
        if let Err(error) = apply(&mut snapshot, &event) {
            return Err(vec![Problem {
                line: planned.line,
                message: format!(
                    "the reducer rejects this {} event: {error}",
                    event.kind.name()
                ),
            }]);
        }
    }
    Ok(snapshot)
}

/// The differences between a recorded result and a snapshot, reported on the header's line.
fn compare(recorded: &RecordedResult, snapshot: &MatchSnapshot) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut differ = |what: &str, recorded: String, derived: String| {
        if recorded != derived {
            problems.push(Problem {
                line: 1,
                message: format!("result.{what} is {recorded} but the events give {derived}"),
            });
        }
    };
    differ(
        "status",
        format!("{:?}", recorded.status),
        format!("{:?}", snapshot.status),
    );
    differ(
        "score",
        score_text(recorded.score),
        score_text(snapshot.score),
    );
    differ(
        "winner",
        format!("{:?}", recorded.winner),
        format!("{:?}", snapshot.winner),
    );
    differ(
        "shootout",
        recorded.shootout.map_or("none".into(), score_text),
        snapshot.shootout.map_or("none".into(), score_text),
    );
    if let Some(periods) = &recorded.periods {
        differ(
            "periods",
            periods_text(periods),
            periods_text(&snapshot.periods),
        );
    }
    if let Some(cards) = recorded.cards {
        differ(
            "cards",
            format!("{cards:?}"),
            format!("{:?}", snapshot.cards),
        );
    }
    problems
}

fn score_text(score: scoreline_protocol::Score) -> String {
    format!("{}-{}", score.home, score.away)
}

fn periods_text(periods: &[scoreline_protocol::PeriodScore]) -> String {
    let parts: Vec<String> = periods
        .iter()
        .map(|period| match period.tiebreak {
            Some(tiebreak) => format!(
                "{}:{}-{}({})",
                period.period,
                period.home,
                period.away,
                score_text(tiebreak)
            ),
            None => format!("{}:{}-{}", period.period, period.home, period.away),
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::parse;

    const HEADER: &str = r#"{"format":"scoreline-fixture","version":1,"match":"football/test/a-b","sport":"football","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0,"result":RESULT}"#;

    fn story(result: &str, lines: &[&str]) -> Result<MatchSnapshot, Vec<Problem>> {
        let mut text = HEADER.replace("RESULT", result);
        text.push('\n');
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        check(&parse(&text).expect("format is fine"))
    }

    const MATCH: &[&str] = &[
        r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"period_started","period":1}"#,
        r#"{"offset_ms":600000,"seq":2,"clock_secs":600,"kind":"goal","side":"away","player":"Z"}"#,
        r#"{"offset_ms":2800000,"seq":3,"clock_secs":2800,"kind":"period_ended","period":1}"#,
        r#"{"offset_ms":3700000,"seq":4,"clock_secs":2700,"kind":"period_started","period":2}"#,
        r#"{"offset_ms":3800000,"seq":5,"clock_secs":2800,"kind":"card","side":"home","player":"Y","card":"red"}"#,
        r#"{"offset_ms":6600000,"seq":6,"clock_secs":5600,"kind":"period_ended","period":2}"#,
        r#"{"offset_ms":6600000,"seq":7,"clock_secs":5600,"kind":"match_ended"}"#,
    ];

    #[test]
    fn a_consistent_story_validates() {
        let snapshot = story(
            r#"{"status":"finished","score":{"home":0,"away":1},"winner":"away","periods":[{"period":1,"home":0,"away":1},{"period":2,"home":0,"away":0}],"cards":{"home":{"yellow":0,"red":1},"away":{"yellow":0,"red":0}}}"#,
            MATCH,
        )
        .unwrap();
        assert_eq!(snapshot.seq, 8);
    }

    #[test]
    fn each_wrong_claim_is_named() {
        let cases = [
            (
                r#"{"status":"finished","score":{"home":1,"away":1},"winner":"away"}"#,
                "result.score is 1-1 but the events give 0-1",
            ),
            (
                r#"{"status":"live","score":{"home":0,"away":1},"winner":"away"}"#,
                "result.status is Live",
            ),
            (
                r#"{"status":"finished","score":{"home":0,"away":1}}"#,
                "result.winner is None",
            ),
            (
                r#"{"status":"finished","score":{"home":0,"away":1},"winner":"away","shootout":{"home":4,"away":2}}"#,
                "result.shootout",
            ),
            (
                r#"{"status":"finished","score":{"home":0,"away":1},"winner":"away","periods":[{"period":1,"home":1,"away":0}]}"#,
                "result.periods",
            ),
            (
                r#"{"status":"finished","score":{"home":0,"away":1},"winner":"away","cards":{"home":{"yellow":1,"red":0},"away":{"yellow":0,"red":0}}}"#,
                "result.cards",
            ),
        ];
        for (result, expected) in cases {
            let problems = story(result, MATCH).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].line, 1);
            assert!(problems[0].message.contains(expected), "{problems:?}");
        }
    }

    #[test]
    fn an_event_the_reducer_rejects_is_reported_at_its_line() {
        let mut lines = MATCH.to_vec();
        lines.push(r#"{"offset_ms":6700000,"seq":8,"kind":"goal","side":"home"}"#);
        let problems = story(
            r#"{"status":"finished","score":{"home":0,"away":1}}"#,
            &lines,
        )
        .unwrap_err();
        assert_eq!(problems[0].line, 9);
        assert!(
            problems[0].message.contains("match is over"),
            "{problems:?}"
        );

        let mut lines = MATCH.to_vec();
        lines[1] = r#"{"offset_ms":600000,"seq":2,"kind":"point","side":"home"}"#;
        let problems = story(
            r#"{"status":"finished","score":{"home":0,"away":0}}"#,
            &lines,
        )
        .unwrap_err();
        assert_eq!(problems[0].line, 3);
        assert!(
            problems[0].message.contains("does not belong"),
            "{problems:?}"
        );
    }
}
