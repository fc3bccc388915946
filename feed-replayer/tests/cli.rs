//! The binary as a user runs it: exit codes and messages for bad input and unreachable brokers,
//! dry runs, and the HTTP publish path against a loopback stand-in for the service.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic with the error is the failure report"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use scoreline_protocol::{EventDraft, ScoreEvent};

fn replayer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("SCORELINE_PUBLISH_TOKEN")
        .output()
        .expect("the binary runs")
}

fn fixture_path(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(relative)
        .display()
        .to_string()
}

const SMALL: &str = "football/champions-league-1999-final-mun-bay.jsonl";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The command failed and said `expected` on stderr.
fn assert_fails_saying(output: &Output, expected: &str) {
    assert!(!output.status.success(), "{}", stderr(output));
    assert!(stderr(output).contains(expected), "{}", stderr(output));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn broken_copy(dir: &Path, replace: &str, with: &str) -> PathBuf {
    let text = std::fs::read_to_string(fixture_path(SMALL)).unwrap();
    assert!(text.contains(replace));
    let path = dir.join("broken.jsonl");
    std::fs::write(&path, text.replacen(replace, with, 1)).unwrap();
    path
}

#[test]
fn validate_names_the_file_and_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture_path(SMALL)).unwrap();
    let line = text
        .lines()
        .position(|line| line.contains("Basler\""))
        .unwrap()
        + 1;
    let broken = broken_copy(
        dir.path(),
        "\"player\":\"Mario Basler\"",
        "\"playr\":\"Mario Basler\"",
    );
    let output = replayer(&["validate", broken.to_str().unwrap(), &fixture_path(SMALL)]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("broken.jsonl:{line}: unknown field \"playr\"")),
        "{message}"
    );
    assert!(message.contains("1 of 2 fixtures is invalid"), "{message}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("MUN 2-1 BAY"));
}

#[test]
fn validate_catches_a_wrong_recorded_result() {
    let dir = tempfile::tempdir().unwrap();
    let broken = broken_copy(
        dir.path(),
        "\"score\":{\"home\":2,\"away\":1}",
        "\"score\":{\"home\":2,\"away\":2}",
    );
    let output = replayer(&["validate", broken.to_str().unwrap()]);
    assert_fails_saying(
        &output,
        "broken.jsonl:1: result.score is 2-2 but the events give 2-1",
    );
}

#[test]
fn replay_refuses_invalid_fixtures_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let broken = broken_copy(dir.path(), "\"kind\":\"goal\"", "\"kind\":\"gaol\"");
    let output = replayer(&["replay", "--dry-run", broken.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing published");
    let message = stderr(&output);
    assert!(
        message.contains("broken.jsonl:") && message.contains("unknown variant `gaol`"),
        "{message}"
    );
    assert!(message.contains("nothing was published"), "{message}");
}

#[test]
fn replay_with_unreachable_redis_fails_clearly() {
    let port = free_port();
    let output = replayer(&[
        "replay",
        "--redis-url",
        &format!("redis://127.0.0.1:{port}/"),
        &fixture_path(SMALL),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("cannot reach Redis"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}

#[test]
fn bad_flags_are_refused() {
    let output = replayer(&["replay", "--speed", "0", "--dry-run", &fixture_path(SMALL)]);
    assert_fails_saying(&output, "speed must be a number above 0");
    let output = replayer(&[
        "replay",
        "--from",
        "soon",
        "--dry-run",
        &fixture_path(SMALL),
    ]);
    assert_fails_saying(&output, "not a match time");
    let output = replayer(&[
        "replay",
        "--plain",
        "--http",
        "http://127.0.0.1:9",
        "--token",
        "t",
        &fixture_path(SMALL),
    ]);
    assert_fails_saying(&output, "cannot be used with");
    let output = replayer(&["replay", "--dry-run", "/no/such/fixture.jsonl"]);
    assert_fails_saying(&output, "/no/such/fixture.jsonl");
}

#[test]
fn dry_run_prints_every_event_as_published_json() {
    let output = replayer(&[
        "replay",
        "--dry-run",
        "--clock-every-secs",
        "0",
        "--speed",
        "1000000",
        &fixture_path(SMALL),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let events: Vec<ScoreEvent> = stdout
        .lines()
        .map(|line| ScoreEvent::from_json(line.as_bytes()).unwrap())
        .collect();
    let fixture_lines = std::fs::read_to_string(fixture_path(SMALL))
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("{\"offset_ms\""))
        .count();
    assert_eq!(
        events.len(),
        fixture_lines + 1,
        "the announcement and every line"
    );
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(index, event)| event.seq == index as u64 + 1)
    );
    assert!(stderr(&output).contains(&format!("published {} events of 1 match", events.len())));
}

#[test]
fn generate_is_deterministic_and_validates() {
    let first = replayer(&["generate", "--sport", "tennis", "--seed", "42"]);
    let second = replayer(&["generate", "--sport", "tennis", "--seed", "42"]);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    std::fs::write(&path, &first.stdout).unwrap();
    assert!(
        replayer(&["validate", path.to_str().unwrap()])
            .status
            .success()
    );
    let impossible = replayer(&["generate", "--sport", "tennis", "--sets", "6-5,6-0"]);
    assert!(!impossible.status.success());
    assert!(
        stderr(&impossible).contains("cannot end 6-5"),
        "{}",
        stderr(&impossible)
    );
}

/// One request as the stand-in service saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    authorization: Option<String>,
    body: String,
}

/// A loopback HTTP server answering every request with `status`, recording what it got.
fn stand_in_service(status: &'static str) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let (mut length, mut authorization) = (0, None);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((&header, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(Seen {
                request_line: request_line.trim().to_owned(),
                authorization,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{{\"error\":\"nope\"}}"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (port, seen)
}

#[test]
fn http_mode_posts_every_event_with_the_token() {
    let (port, seen) = stand_in_service("202 Accepted");
    let output = replayer(&[
        "replay",
        "--http",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        "s3cret",
        "--clock-every-secs",
        "0",
        "--speed",
        "1000000",
        &fixture_path(SMALL),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let seen = seen.lock().unwrap().clone();
    let fixture_lines = std::fs::read_to_string(fixture_path(SMALL))
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("{\"offset_ms\""))
        .count();
    // The reachability probe, then one POST per event.
    assert_eq!(seen[0].request_line, "GET /healthz HTTP/1.1");
    let seen = &seen[1..];
    assert_eq!(seen.len(), fixture_lines + 1);
    for (index, request) in seen.iter().enumerate() {
        // The first event starts a new history; the service numbers every draft.
        let expected_line = if index == 0 {
            "POST /api/publish?new_history=true HTTP/1.1"
        } else {
            "POST /api/publish HTTP/1.1"
        };
        assert_eq!(request.request_line, expected_line);
        assert_eq!(request.authorization.as_deref(), Some("Bearer s3cret"));
        let draft: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert!(
            draft.get("seq").is_none() && draft.get("epoch").is_none(),
            "a draft, not a numbered event: {}",
            request.body
        );
        serde_json::from_value::<EventDraft>(draft).unwrap();
    }
}

#[test]
fn without_a_terminal_progress_comes_as_plain_lines() {
    let (port, _seen) = stand_in_service("202 Accepted");
    let output = replayer(&[
        "replay",
        "--http",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        "t",
        "--clock-every-secs",
        "0",
        "--speed",
        "2500",
        "--progress-every-secs",
        "1",
        &fixture_path(SMALL),
    ]);
    let message = stderr(&output);
    assert!(output.status.success(), "{message}");
    // The whole topic, 45 characters: nothing cut at 40.
    let lines: Vec<&str> = message
        .lines()
        .filter(|line| line.starts_with("football/champions-league/mun-bay-1999-05-26 "))
        .collect();
    assert!(
        lines.len() >= 2,
        "periodic lines and a last one expected:\n{message}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.contains("100%") && last.contains("MUN 2-1 BAY"),
        "{last}"
    );
    assert!(lines[0].contains('%'), "{}", lines[0]);
}

#[test]
fn http_mode_stops_at_a_rejected_token() {
    let (port, seen) = stand_in_service("401 Unauthorized");
    let output = replayer(&[
        "replay",
        "--http",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        "wrong",
        "--speed",
        "1000000",
        &fixture_path(SMALL),
    ]);
    assert_fails_saying(&output, "refused the token (HTTP 401)");
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "the probe and one POST: no retries of a rejected token"
    );
}

#[test]
fn http_mode_without_a_token_is_refused_by_the_cli() {
    let output = replayer(&[
        "replay",
        "--http",
        "http://127.0.0.1:9",
        &fixture_path(SMALL),
    ]);
    assert_fails_saying(&output, "--token");
}

#[test]
fn http_mode_with_nothing_listening_fails_at_once() {
    let port = free_port();
    let output = replayer(&[
        "replay",
        "--http",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        "t",
        &fixture_path(SMALL),
    ]);
    assert_fails_saying(&output, "cannot reach the service");
}

#[test]
fn ctrl_c_and_sigterm_stop_a_replay_cleanly() {
    for signal in ["-INT", "-TERM"] {
        stops_cleanly_on(signal);
    }
}

fn stops_cleanly_on(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args(["replay", "--dry-run", "--speed", "1", &fixture_path(SMALL)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the replay is under way (kickoff is published at once), then interrupt it the
    // way a terminal does.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("match_scheduled"), "{first}");
    let interrupted = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "a clean exit: {:?}", output.status);
    let message = stderr(&output);
    assert!(message.contains("stopped by a signal after"), "{message}");
}

#[test]
fn two_fixtures_for_one_match_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(fixture_path(SMALL), &copy).unwrap();
    let output = replayer(&[
        "replay",
        "--dry-run",
        &fixture_path(SMALL),
        copy.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output)
            .contains("two fixtures publish to football/champions-league/mun-bay-1999-05-26"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn record_then_validate_round_trips_through_the_binary() {
    let server = scoreline_testkit::RedisServer::start().unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Command::new(env!("CARGO_BIN_EXE_feed-replayer"))
        .args([
            "record",
            "--out",
            out.path().to_str().unwrap(),
            "--redis-url",
            &server.url(),
        ])
        .args([
            "--topic",
            "football/champions-league",
            "--time-scale",
            "100000",
            "--matches",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Publish only once the recorder's pattern subscription is in place.
    let mut connection = server.client().get_connection().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query::<i64>(&mut connection)
        .unwrap()
        < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorder never subscribed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let replayed = replayer(&[
        "replay",
        "--redis-url",
        &server.url(),
        "--speed",
        "100000",
        &fixture_path(SMALL),
    ]);
    assert!(replayed.status.success(), "{}", stderr(&replayed));
    // The recorder stops by itself after one match; never let a bug hang the test run.
    let mut recorder = recorder;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = recorder.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            recorder.kill().unwrap();
            panic!("the recorder did not stop after one match");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut message = String::new();
    recorder
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut message)
        .unwrap();
    assert!(status.success(), "{message}");
    assert!(message.contains("recorded 1 match ("), "{message}");
    let file = out
        .path()
        .join("football/champions-league/mun-bay-1999-05-26.jsonl");
    let validated = replayer(&["validate", file.to_str().unwrap()]);
    assert!(validated.status.success(), "{}", stderr(&validated));
    assert!(String::from_utf8_lossy(&validated.stdout).contains("MUN 2-1 BAY"));
}
