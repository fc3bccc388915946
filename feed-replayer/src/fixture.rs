//! The fixture format: one recorded match per JSON Lines file, as documented in
//! `fixtures/README.md`.
//!
//! Parsing is pure (text in, [`Fixture`] or line-numbered [`Problem`]s out) so every rule is
//! tested without files, and so `validate`, `replay` and the tests all read fixtures the same way.
//! Writing produces exactly what parsing accepts, which keeps `record` → `validate` a round trip.

use std::fmt;
use std::path::Path;

use scoreline_protocol::{
    CardTally, EventKind, MatchStatus, MatchTopic, PeriodScore, Score, Side, Sport, Team,
    TennisFormat,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The value of the header's `format` field, so a stray JSONL file is not mistaken for a fixture.
pub const FORMAT_NAME: &str = "scoreline-fixture";

/// The format version this build reads and writes. Bumped on any incompatible change; older
/// versions are rejected with a clear message instead of being misread.
pub const FORMAT_VERSION: u32 = 1;

/// The largest fixture file accepted. A five-set tennis match is about 100 KiB; the limit keeps a
/// wrong path (a log file, a disk image) from being read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The longest line accepted, in bytes; real lines are under 300.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// The most events one fixture may hold; a tennis marathon has under 1,000.
pub const MAX_EVENTS: usize = 100_000;

/// How many problems are reported per file before the rest are summarised, so a file that is not
/// a fixture at all gives a readable answer.
pub const MAX_PROBLEMS: usize = 20;

/// The first line of a fixture: which match, who plays, and the recorded result that `validate`
/// checks the events against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// The match topic events are published under.
    #[serde(rename = "match")]
    pub match_topic: MatchTopic,
    /// The sport; must agree with the topic's first segment, which is what the service goes by.
    pub sport: Sport,
    /// Display name of the competition, e.g. `FIFA World Cup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competition: Option<String>,
    /// Where it was played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Home team, or first-named player.
    pub home: Team,
    /// Away team, or second-named player.
    pub away: Team,
    /// When the recorded match kicked off, milliseconds since the Unix epoch. A replay announces
    /// its own kickoff instead (the time offset 0 is published).
    pub kickoff_ms: u64,
    /// Regular period length in seconds when not the sport's default (FIBA's 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_secs: Option<u32>,
    /// Tennis: best of 3 or 5 and the final-set rule; the reducer scores by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tennis: Option<TennisFormat>,
    /// Where the facts come from, for the reader (a match report, a generator seed, a recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The result as recorded; `validate` checks the events arrive at exactly this.
    pub result: RecordedResult,
}

/// The outcome a fixture claims. Optional parts are checked only when present, so a hand-written
/// fixture can state just the score while a recorded one states everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResult {
    /// The status at the end of the recording, normally `finished`.
    pub status: MatchStatus,
    /// Goals, points, or sets in tennis.
    pub score: Score,
    /// The winner; absent for a draw or an unfinished recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Side>,
    /// Football: the penalty shoot-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shootout: Option<Score>,
    /// Score per period (halves, quarters, games per set with tie-breaks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<Vec<PeriodScore>>,
    /// Football: cards per side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cards: Option<CardTally>,
}

/// One event line: when it happened relative to kickoff, its number in the recording, and what
/// happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixtureEvent {
    /// Milliseconds after kickoff (replay time scales this by `--speed`).
    pub offset_ms: u64,
    /// The event's number in the recording: strictly increasing, not necessarily gap-free (a
    /// deleted line is fine). Corrections refer to it. Replays renumber gap-free.
    pub seq: u64,
    /// The game clock when it happened, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_secs: Option<u32>,
    /// What happened, in the protocol's own form.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The 1-based line it was read from, for error messages; 0 for events built in memory.
    #[serde(skip)]
    pub line: usize,
}

/// A whole match: the header and its events in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// The first line.
    pub header: Header,
    /// The event lines, in file order.
    pub events: Vec<FixtureEvent>,
}

/// One thing wrong with a fixture, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number; 0 when the problem is with the whole file.
    pub line: usize,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why a fixture could not be used: its file and every problem found, each with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FixtureError {
    /// The file as given on the command line.
    pub path: String,
    /// What is wrong, at most [`MAX_PROBLEMS`] (plus a summary line).
    pub problems: Vec<Problem>,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: {}", self.path, problem.line, problem.message)?;
        }
        Ok(())
    }
}

impl FixtureError {
    /// An error about the whole file (line 0), e.g. it cannot be read.
    pub fn whole_file(path: impl Into<String>, message: impl Into<String>) -> FixtureError {
        FixtureError {
            path: path.into(),
            problems: vec![Problem {
                line: 0,
                message: message.into(),
            }],
        }
    }
}

impl Fixture {
    /// The match's sport.
    pub fn sport(&self) -> Sport {
        self.header.sport
    }

    /// The last event's offset: how long the match lasts in recording time.
    pub fn duration_ms(&self) -> u64 {
        self.events.last().map_or(0, |event| event.offset_ms)
    }

    /// The `match_scheduled` event the header stands for, announcing kickoff at `kickoff_ms`.
    pub fn schedule_kind(&self, kickoff_ms: u64) -> EventKind {
        let header = &self.header;
        EventKind::MatchScheduled {
            home: header.home.clone(),
            away: header.away.clone(),
            kickoff_ms,
            competition: header.competition.clone(),
            venue: header.venue.clone(),
            period_secs: header.period_secs,
            tennis: header.tennis,
        }
    }

    /// The fixture as JSON Lines text, in the form [`parse`] reads.
    pub fn to_jsonl(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        let mut text = serde_json::to_string(&self.header).unwrap_or_default();
        text.push('\n');
        for event in &self.events {
            text.push_str(&serde_json::to_string(event).unwrap_or_default());
            text.push('\n');
        }
        text
    }
}

/// Reads and parses a fixture file, refusing files too large to be one.
pub fn read(path: &Path) -> Result<Fixture, FixtureError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path)
        .map_err(|error| FixtureError::whole_file(&shown, format!("cannot read: {error}")))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(FixtureError::whole_file(
            &shown,
            format!(
                "file is {} bytes; a fixture is at most {MAX_FILE_BYTES}",
                metadata.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| FixtureError::whole_file(&shown, format!("cannot read: {error}")))?;
    parse(&text).map_err(|problems| FixtureError {
        path: shown,
        problems,
    })
}

/// Parses fixture text: the header, then every event line. Checks the format and the ordering
/// rules (seq strictly increasing, offsets non-decreasing), not the score story; see
/// [`crate::validate`] for that. Blank lines and lines starting with `#` are comments.
pub fn parse(text: &str) -> Result<Fixture, Vec<Problem>> {
    let mut problems = Problems::default();
    let mut header = None;
    let mut events: Vec<FixtureEvent> = Vec::new();
    let mut previous: Option<(u64, u64)> = None;

    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw_line.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if problems.full() {
            break;
        }
        if content.len() > MAX_LINE_BYTES {
            problems.add(
                line,
                format!("line is {} bytes; at most {MAX_LINE_BYTES}", content.len()),
            );
            continue;
        }
        if header.is_none() && !problems.header_failed {
            match parse_header(content) {
                Ok(parsed) => header = Some(parsed),
                Err(message) => {
                    problems.add(line, message);
                    problems.header_failed = true;
                }
            }
            continue;
        }
        if events.len() >= MAX_EVENTS {
            problems.add(line, format!("more than {MAX_EVENTS} events"));
            break;
        }
        match parse_event(content, line) {
            Ok(event) => {
                if let Some((previous_seq, previous_offset)) = previous {
                    if event.seq <= previous_seq {
                        problems.add(
                            line,
                            format!(
                                "seq {} is not greater than the previous event's seq {previous_seq}",
                                event.seq
                            ),
                        );
                    }
                    if event.offset_ms < previous_offset {
                        problems.add(
                            line,
                            format!(
                                "offset_ms {} is before the previous event's offset_ms {previous_offset}",
                                event.offset_ms
                            ),
                        );
                    }
                }
                previous = Some((event.seq, event.offset_ms));
                events.push(event);
            }
            Err(message) => problems.add(line, message),
        }
    }
    match header {
        _ if !problems.list.is_empty() => Err(problems.finish()),
        None => Err(vec![Problem {
            line: 1,
            message: "empty file: expected a header line".into(),
        }]),
        Some(header) if events.is_empty() => Err(vec![Problem {
            line: 0,
            message: format!("{} has no events", header.match_topic),
        }]),
        Some(header) => Ok(Fixture { header, events }),
    }
}

#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    header_failed: bool,
}

impl Problems {
    fn add(&mut self, line: usize, message: String) {
        self.list.push(Problem { line, message });
    }

    fn full(&self) -> bool {
        self.list.len() >= MAX_PROBLEMS
    }

    fn finish(mut self) -> Vec<Problem> {
        if self.full() {
            self.list.push(Problem {
                line: 0,
                message: format!("stopped after {MAX_PROBLEMS} problems"),
            });
        }
        self.list
    }
}

fn parse_header(content: &str) -> Result<Header, String> {
    let value: Value =
        serde_json::from_str(content).map_err(|error| format!("header is not JSON: {error}"))?;
    let object = value.as_object().ok_or("header must be a JSON object")?;
    match object.get("format").and_then(Value::as_str) {
        Some(FORMAT_NAME) => {}
        Some(other) => return Err(format!("format is {other:?}; expected {FORMAT_NAME:?}")),
        None => {
            return Err(format!(
                "the first line must be a header with \"format\":\"{FORMAT_NAME}\""
            ));
        }
    }
    match object.get("version").and_then(Value::as_u64) {
        Some(version) if version == u64::from(FORMAT_VERSION) => {}
        Some(version) => {
            return Err(format!(
                "format version {version} is not supported; this feed-replayer reads version {FORMAT_VERSION}"
            ));
        }
        None => return Err("header needs a numeric \"version\"".into()),
    }
    let header: Header =
        serde_json::from_value(value).map_err(|error| format!("header: {error}"))?;
    let topic_sport = Sport::from_slug(header.match_topic.sport_slug());
    if topic_sport != header.sport {
        return Err(format!(
            "sport {:?} disagrees with the topic {}, whose sport is {:?}",
            header.sport, header.match_topic, topic_sport
        ));
    }
    if header.tennis.is_some() && header.sport != Sport::Tennis {
        return Err("\"tennis\" format given for a match that is not tennis".into());
    }
    if let Some(format) = header.tennis
        && !matches!(format.best_of, 3 | 5)
    {
        return Err(format!(
            "tennis best_of is {}; it must be 3 or 5",
            format.best_of
        ));
    }
    Ok(header)
}

/// Fields of an event line that belong to the envelope the replayer builds, with the reason a
/// fixture must not carry them.
const ENVELOPE_FIELDS: &[(&str, &str)] = &[
    ("match", "the match topic comes from the header"),
    ("epoch", "the replayer chooses the epoch"),
    (
        "ts_ms",
        "the replayer stamps the publishing time; use offset_ms",
    ),
];

fn parse_event(content: &str, line: usize) -> Result<FixtureEvent, String> {
    let value: Value =
        serde_json::from_str(content).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(mut object) = value else {
        return Err("an event line must be a JSON object".into());
    };
    for (field, reason) in ENVELOPE_FIELDS {
        if object.contains_key(*field) {
            return Err(format!("field {field:?} is not allowed here: {reason}"));
        }
    }
    let offset_ms = take_u64(&mut object, "offset_ms")?
        .ok_or("missing \"offset_ms\" (milliseconds after kickoff)")?;
    let seq = take_u64(&mut object, "seq")?.ok_or("missing \"seq\"")?;
    let clock_secs = match take_u64(&mut object, "clock_secs")? {
        None => None,
        Some(secs) => {
            Some(u32::try_from(secs).map_err(|_| format!("clock_secs {secs} is out of range"))?)
        }
    };
    if !object.contains_key("kind") {
        return Err("missing \"kind\" (e.g. \"goal\", \"point\", \"period_started\")".into());
    }
    let rest = Value::Object(object);
    let kind: EventKind =
        serde_json::from_value(rest.clone()).map_err(|error| format!("event: {error}"))?;
    if matches!(kind, EventKind::MatchScheduled { .. }) {
        return Err("match_scheduled belongs in the header, not in an event line".into());
    }
    // Serde ignores unknown fields inside a tagged enum; a misspelt field ("playr") would be lost
    // silently. Compare against what the parsed event writes back to find them.
    let written = serde_json::to_value(&kind).map_err(|error| error.to_string())?;
    if let Some(field) = dropped_field(&rest, &written) {
        return Err(format!(
            "unknown field {field:?} for a {} event",
            kind.name()
        ));
    }
    Ok(FixtureEvent {
        offset_ms,
        seq,
        clock_secs,
        kind,
        line,
    })
}

fn take_u64(object: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            format!("\"{field}\" must be a whole number of at least 0, not {value}")
        }),
    }
}

/// The first field of `given` that parsing dropped: absent from `written` while holding more than
/// a default (`false` or `null`, which serialisation leaves out). Nested objects are compared too.
fn dropped_field(given: &Value, written: &Value) -> Option<String> {
    let (Value::Object(given), Value::Object(written)) = (given, written) else {
        return None;
    };
    for (key, value) in given {
        match written.get(key) {
            Some(written_value) => {
                if let Some(inner) = dropped_field(value, written_value) {
                    return Some(format!("{key}.{inner}"));
                }
            }
            None if matches!(value, Value::Null | Value::Bool(false)) => {}
            None => return Some(key.clone()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"format":"scoreline-fixture","version":1,"match":"football/test/a-b","sport":"football","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0,"result":{"status":"finished","score":{"home":1,"away":0}}}"#;

    fn with_events(lines: &[&str]) -> String {
        let mut text = format!("{HEADER}\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses `text` and returns the first problem as `line: message`, failing if it parses.
    fn first_problem(text: &str) -> (usize, String) {
        let problems = parse(text).expect_err("should be rejected");
        (problems[0].line, problems[0].message.clone())
    }

    #[test]
    fn reads_header_events_and_comments() {
        let text = with_events(&[
            "# kickoff",
            r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"match_started"}"#,
            "",
            r#"{"offset_ms":60000,"seq":3,"clock_secs":60,"kind":"goal","side":"home","player":"X","penalty":true}"#,
        ]);
        let fixture = parse(&text).unwrap();
        assert_eq!(fixture.events.len(), 2);
        assert_eq!(fixture.events[1].line, 5);
        assert_eq!(fixture.events[1].seq, 3);
        assert!(matches!(
            fixture.events[1].kind,
            EventKind::Goal { penalty: true, .. }
        ));
    }

    #[test]
    fn written_text_parses_back_identically() {
        let text = with_events(&[
            r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"period_started","period":1}"#,
            r#"{"offset_ms":5,"seq":2,"kind":"correction","corrects":1,"replacement":{"kind":"goal","side":"away"}}"#,
        ]);
        let fixture = parse(&text).unwrap();
        let again = parse(&fixture.to_jsonl()).unwrap();
        assert_eq!(fixture.header, again.header);
        assert_eq!(fixture.events.len(), again.events.len());
        for (a, b) in fixture.events.iter().zip(&again.events) {
            assert_eq!(
                (a.offset_ms, a.seq, a.clock_secs, &a.kind),
                (b.offset_ms, b.seq, b.clock_secs, &b.kind)
            );
        }
        // Keys come in the documented order, envelope first.
        assert!(
            fixture
                .to_jsonl()
                .lines()
                .nth(1)
                .unwrap()
                .starts_with(r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"period_started""#)
        );
    }

    #[test]
    fn rejects_each_kind_of_broken_line_at_its_line() {
        let start = r#"{"offset_ms":1000,"seq":5,"kind":"match_started"}"#;
        let cases: &[(&str, &str)] = &[
            (
                r#"{"offset_ms":0,"seq":6,"kind":"goal","side":"home""#,
                "not JSON",
            ),
            (r#"[1,2]"#, "JSON object"),
            (
                r#"{"seq":6,"kind":"match_started"}"#,
                "missing \"offset_ms\"",
            ),
            (
                r#"{"offset_ms":2000,"kind":"match_started"}"#,
                "missing \"seq\"",
            ),
            (
                r#"{"offset_ms":-5,"seq":6,"kind":"match_started"}"#,
                "whole number",
            ),
            (r#"{"offset_ms":2000,"seq":6}"#, "missing \"kind\""),
            (
                r#"{"offset_ms":2000,"seq":6,"kind":"goall","side":"home"}"#,
                "unknown variant",
            ),
            (
                r#"{"offset_ms":2000,"seq":6,"kind":"goal","side":"home","playr":"X"}"#,
                "unknown field \"playr\"",
            ),
            (
                r#"{"offset_ms":2000,"seq":6,"kind":"goal","side":"middle"}"#,
                "unknown variant",
            ),
            (
                r#"{"offset_ms":2000,"seq":5,"kind":"match_started"}"#,
                "seq 5 is not greater",
            ),
            (
                r#"{"offset_ms":999,"seq":6,"kind":"match_started"}"#,
                "offset_ms 999 is before",
            ),
            (
                r#"{"offset_ms":2000,"seq":6,"ts_ms":9,"kind":"match_started"}"#,
                "\"ts_ms\" is not allowed",
            ),
            (
                r#"{"offset_ms":2000,"seq":6,"kind":"match_scheduled","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0}"#,
                "belongs in the header",
            ),
            (
                r#"{"offset_ms":2000,"seq":6,"kind":"correction","corrects":5,"replacement":{"kind":"goal","side":"home","scorer":"X"}}"#,
                "replacement.scorer",
            ),
        ];
        for (bad, expected) in cases {
            let text = with_events(&[start, "# a comment", bad]);
            let (line, message) = first_problem(&text);
            assert_eq!(line, 4, "for {bad}: {message}");
            assert!(
                message.contains(expected),
                "for {bad}: got {message:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn rejects_broken_headers_on_line_one() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"offset_ms":0,"seq":1,"kind":"match_started"}"#,
                "must be a header",
            ),
            (
                &HEADER.replace("\"version\":1", "\"version\":2"),
                "version 2 is not supported",
            ),
            (&HEADER.replace("a-b\"", "A B\""), "lowercase slug"),
            (
                &HEADER.replace("\"sport\":\"football\"", "\"sport\":\"tennis\""),
                "disagrees with the topic",
            ),
            (
                &HEADER.replace("\"kickoff_ms\"", "\"kickof_ms\""),
                "unknown field `kickof_ms`",
            ),
            (
                &HEADER.replace(
                    ",\"result\":{\"status\":\"finished\",\"score\":{\"home\":1,\"away\":0}}",
                    "",
                ),
                "missing field `result`",
            ),
        ];
        for (header, expected) in cases {
            let text =
                format!("{header}\n{{\"offset_ms\":0,\"seq\":1,\"kind\":\"match_started\"}}\n");
            let (line, message) = first_problem(&text);
            assert_eq!(line, 1, "for {header}");
            assert!(
                message.contains(expected),
                "got {message:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn empty_files_and_files_without_events_are_rejected() {
        assert_eq!(first_problem("").0, 1);
        assert!(first_problem(&with_events(&[])).1.contains("no events"));
    }

    #[test]
    fn reports_every_broken_line_up_to_the_cap() {
        let bad = vec!["nonsense"; 50];
        let problems = parse(&with_events(&bad)).unwrap_err();
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(problems[0].line, 2);
        assert_eq!(problems[1].line, 3);
    }
}
