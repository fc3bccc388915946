//! Recording live traffic into fixtures: one pattern subscription, one fixture per match history.
//!
//! [`Recorder`] is the pure part: it takes `(channel, payload)` pairs and hands back finished
//! fixtures, keeping each match's snapshot with the reducer so only events the service would
//! accept are written, and the recorded result is what the reducer made of them (so a recording
//! always validates). [`record`] is the Redis shell around it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use scoreline_protocol::{
    EventKind, MatchSnapshot, MatchTopic, ScoreEvent, Sport, Team, Topic, apply,
};
use tokio_util::sync::CancellationToken;

use crate::fixture::{
    FORMAT_NAME, FORMAT_VERSION, Fixture, FixtureEvent, Header, MAX_EVENTS, RecordedResult,
};

/// How many matches may be recorded at once; more are skipped (and counted) so a flood of topics
/// cannot exhaust memory.
pub const MAX_OPEN_MATCHES: usize = 1_000;

/// What to record and where.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Directory fixtures are written under, as `<sport>/<competition>/<match>.jsonl`.
    pub out_dir: PathBuf,
    /// Only matches this topic covers; all when `None`.
    pub topic: Option<Topic>,
    /// The channel prefix feeds publish under (`scores:`).
    pub channel_prefix: String,
    /// Factor applied to offsets: the `--speed` of a replay being recorded, to get the original
    /// timing back. 1 for a live feed.
    pub time_scale: f64,
    /// Stop once this many fixtures have been written.
    pub stop_after_matches: Option<usize>,
}

/// Why recording stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Redis could not be reached or subscribed to at the start.
    #[error("cannot subscribe to Redis at {addr}: {message}")]
    Redis {
        /// Where Redis is (`host:port db N`, or the Sentinel master and its sentinels).
        addr: String,
        /// Why, as the Redis client tells it (kept as text: its error repeats its own cause).
        message: String,
    },
    /// A fixture could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `time_scale` is not a positive number.
    #[error("time scale must be a number above 0, not {0}")]
    BadTimeScale(f64),
}

/// What a recording session produced.
#[derive(Debug, Clone, Default)]
pub struct RecordSummary {
    /// Fixture files written, in order.
    pub written: Vec<PathBuf>,
    /// Events recorded into fixtures (announcements included).
    pub events: u64,
    /// Messages not recorded: malformed, for another prefix, stale, or rejected by the reducer.
    pub skipped: u64,
}

/// Why one message was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not under the channel prefix or the topic filter.
    #[error("not a recorded topic")]
    NotFollowed,
    /// The payload is not a score event.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The event names another match than its channel.
    #[error("event for {event} published on the channel of {channel}")]
    WrongChannel {
        /// The channel's topic.
        channel: String,
        /// The event's topic.
        event: String,
    },
    /// The event belongs to an older history of the match, or to one already written.
    #[error("stale event of an earlier or finished history")]
    Stale,
    /// The reducer refused it (duplicate, out of order, wrong sport...).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Too many matches or events at once.
    #[error("over the recording limits")]
    OverLimit,
}

/// One match history being recorded.
struct Recording {
    epoch: u64,
    schedule: Option<EventKind>,
    kickoff_ms: Option<u64>,
    events: Vec<FixtureEvent>,
    snapshot: MatchSnapshot,
}

/// The pure recorder: messages in, finished fixtures out.
pub struct Recorder {
    channel_prefix: String,
    topic: Option<Topic>,
    time_scale: f64,
    open: HashMap<MatchTopic, Recording>,
    /// Histories already written, so a late event does not start a headless recording.
    done: HashSet<(MatchTopic, u64)>,
}

impl Recorder {
    /// A recorder for one channel prefix, topic filter and time scale.
    pub fn new(channel_prefix: &str, topic: Option<Topic>, time_scale: f64) -> Recorder {
        Recorder {
            channel_prefix: channel_prefix.to_owned(),
            topic,
            time_scale,
            open: HashMap::new(),
            done: HashSet::new(),
        }
    }

    /// The Redis pattern that covers every followed channel.
    pub fn pattern(&self) -> String {
        match &self.topic {
            // Glob characters cannot occur in a topic (slugs are a-z, 0-9 and '-').
            Some(topic) if topic.is_match() => format!("{}{topic}", self.channel_prefix),
            Some(topic) => format!("{}{topic}/*", self.channel_prefix),
            None => format!("{}*", self.channel_prefix),
        }
    }

    /// Takes one message; returns the fixtures it completed (a match that ended, or the previous
    /// history of a match that restarted in a new epoch).
    pub fn accept(&mut self, channel: &str, payload: &[u8]) -> Result<Vec<Fixture>, Skip> {
        let topic_text = channel
            .strip_prefix(&self.channel_prefix)
            .ok_or(Skip::NotFollowed)?;
        let event =
            ScoreEvent::from_json(payload).map_err(|error| Skip::Malformed(error.to_string()))?;
        if event.match_topic.as_str() != topic_text {
            return Err(Skip::WrongChannel {
                channel: topic_text.to_owned(),
                event: event.match_topic.to_string(),
            });
        }
        if let Some(filter) = &self.topic
            && !filter.covers(event.match_topic.topic())
        {
            return Err(Skip::NotFollowed);
        }
        let key = (event.match_topic.clone(), event.epoch);
        if self.done.contains(&key) {
            return Err(Skip::Stale);
        }
        let mut finished = Vec::new();
        if let Some(recording) = self.open.get(&event.match_topic) {
            if event.epoch < recording.epoch {
                return Err(Skip::Stale);
            }
            if event.epoch > recording.epoch
                && let Some(old) = self.open.remove(&event.match_topic)
            {
                finished.extend(self.close(event.match_topic.clone(), old));
            }
        }
        if !self.open.contains_key(&event.match_topic) && self.open.len() >= MAX_OPEN_MATCHES {
            return Err(Skip::OverLimit);
        }
        let time_scale = self.time_scale;
        let recording = self
            .open
            .entry(event.match_topic.clone())
            .or_insert_with(|| Recording {
                epoch: event.epoch,
                schedule: None,
                kickoff_ms: None,
                events: Vec::new(),
                snapshot: MatchSnapshot::new(event.match_topic.clone()),
            });
        if recording.events.len() >= MAX_EVENTS {
            return Err(Skip::OverLimit);
        }
        apply(&mut recording.snapshot, &event)
            .map_err(|error| Skip::Rejected(error.to_string()))?;
        match &event.kind {
            EventKind::MatchScheduled { kickoff_ms, .. } => {
                recording.schedule = Some(event.kind.clone());
                recording.kickoff_ms = Some(*kickoff_ms);
            }
            kind => {
                let kickoff_ms = *recording.kickoff_ms.get_or_insert(event.ts_ms);
                let since_kickoff_ms = event.ts_ms.saturating_sub(kickoff_ms) as f64;
                let offset_ms = (since_kickoff_ms * time_scale).round() as u64;
                let previous_ms = recording.events.last().map_or(0, |last| last.offset_ms);
                recording.events.push(FixtureEvent {
                    offset_ms: offset_ms.max(previous_ms),
                    seq: event.seq,
                    clock_secs: event.clock_secs,
                    kind: kind.clone(),
                    line: 0,
                });
            }
        }
        if matches!(event.kind, EventKind::MatchEnded { .. })
            && let Some(done) = self.open.remove(&event.match_topic)
        {
            finished.extend(self.close(event.match_topic, done));
        }
        Ok(finished)
    }

    /// Closes every open recording, for shutdown: matches still in progress are written as they
    /// stand (their result says `live`).
    pub fn finish_all(&mut self) -> Vec<Fixture> {
        let open: Vec<(MatchTopic, Recording)> = self.open.drain().collect();
        let mut fixtures: Vec<Fixture> = open
            .into_iter()
            .filter_map(|(topic, recording)| self.close(topic, recording))
            .collect();
        fixtures.sort_by(|a, b| a.header.match_topic.cmp(&b.header.match_topic));
        fixtures
    }

    fn close(&mut self, topic: MatchTopic, recording: Recording) -> Option<Fixture> {
        if self.done.len() > 100_000 {
            self.done.clear();
        }
        self.done.insert((topic.clone(), recording.epoch));
        if recording.events.is_empty() {
            return None;
        }
        let sport = Sport::from_slug(topic.sport_slug());
        let (home, away, competition, venue, period_secs, tennis) = match recording.schedule {
            Some(EventKind::MatchScheduled {
                home,
                away,
                competition,
                venue,
                period_secs,
                tennis,
                ..
            }) => (home, away, competition, venue, period_secs, tennis),
            _ => (
                Team::new("Home", "HOM"),
                Team::new("Away", "AWY"),
                None,
                None,
                None,
                None,
            ),
        };
        let announced = if recording.kickoff_ms.is_some() && recording.snapshot.kickoff_ms.is_some()
        {
            ""
        } else {
            " (joined after the announcement: teams unknown)"
        };
        Some(Fixture {
            header: Header {
                format: FORMAT_NAME.into(),
                version: FORMAT_VERSION,
                match_topic: topic,
                sport,
                competition,
                venue,
                home,
                away,
                kickoff_ms: recording.kickoff_ms.unwrap_or(0),
                period_secs,
                tennis,
                source: Some(format!(
                    "recorded by feed-replayer record, epoch {}{announced}",
                    recording.epoch
                )),
                result: RecordedResult::from_snapshot(&recording.snapshot),
            },
            events: recording.events,
        })
    }
}

/// Where a fixture of `topic` is written under `out_dir`: `<sport>/<competition>/<match>.jsonl`,
/// or `<match>-<n>.jsonl` when that exists already (a looped replay recorded twice).
pub fn fixture_path(out_dir: &Path, topic: &MatchTopic) -> PathBuf {
    let dir = out_dir
        .join(topic.sport_slug())
        .join(topic.competition_slug());
    let first = dir.join(format!("{}.jsonl", topic.match_slug()));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("{}-{n}.jsonl", topic.match_slug())))
        .find(|path| !path.exists())
        .unwrap_or(first)
}

/// Writes a fixture through a temporary file, so a crash never leaves half a fixture behind.
pub fn write_fixture(out_dir: &Path, fixture: &Fixture) -> Result<PathBuf, RecordError> {
    let path = fixture_path(out_dir, &fixture.header.match_topic);
    let error = |source| RecordError::Write {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let temporary = path.with_extension("jsonl.partial");
    std::fs::write(&temporary, fixture.to_jsonl()).map_err(error)?;
    std::fs::rename(&temporary, &path).map_err(error)?;
    Ok(path)
}

/// Subscribes to the channels and records until cancelled (or `stop_after_matches` fixtures are
/// written), then writes what is still open. Reconnects by itself if Redis goes away mid-way (to
/// the new master, under Sentinel); fails at once if it cannot subscribe at the start.
pub async fn record(
    redis: &scoreline_feed::RedisConnection,
    options: &RecordOptions,
    cancel: CancellationToken,
    mut on_written: impl FnMut(&Path),
) -> Result<RecordSummary, RecordError> {
    if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
        return Err(RecordError::BadTimeScale(options.time_scale));
    }
    let addr = redis.target().to_string();
    let mut recorder = Recorder::new(
        &options.channel_prefix,
        options.topic.clone(),
        options.time_scale,
    );
    let mut summary = RecordSummary::default();
    let pattern = recorder.pattern();
    let mut connected_once = false;
    let mut backoff = Duration::from_millis(250);
    'session: while !cancel.is_cancelled() {
        let subscribed = async {
            let mut pubsub = redis.open_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(Duration::from_secs(5), subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            failure => {
                if !connected_once {
                    let message = match failure {
                        Ok(Err(source)) => source.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    return Err(RecordError::Redis { addr, message });
                }
                eprintln!(
                    "record: Redis at {addr} unreachable; retrying in {}ms",
                    backoff.as_millis()
                );
                tokio::select! {
                    () = cancel.cancelled() => break 'session,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        connected_once = true;
        backoff = Duration::from_millis(250);
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => break 'session,
                message = messages.next() => message,
            };
            let Some(message) = message else {
                eprintln!("record: lost Redis at {addr}; reconnecting");
                continue 'session;
            };
            match recorder.accept(message.get_channel_name(), message.get_payload_bytes()) {
                Ok(fixtures) => {
                    summary.events += 1;
                    for fixture in fixtures {
                        let path = write_fixture(&options.out_dir, &fixture)?;
                        on_written(&path);
                        summary.written.push(path);
                    }
                    if options
                        .stop_after_matches
                        .is_some_and(|limit| summary.written.len() >= limit)
                    {
                        return Ok(summary);
                    }
                }
                Err(_) => summary.skipped += 1,
            }
        }
    }
    for fixture in recorder.finish_all() {
        let path = write_fixture(&options.out_dir, &fixture)?;
        on_written(&path);
        summary.written.push(path);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::validate::check;
    use scoreline_protocol::MatchStatus;

    fn replayed(fixture: &Fixture, epoch: u64, speed: u64) -> Vec<ScoreEvent> {
        let plan = Plan::of(fixture).unwrap();
        (0..plan.events.len())
            .map(|index| {
                let ts = 1_000_000 + plan.events[index].offset_ms / speed;
                plan.stamp(index, epoch, 1_000_000, ts)
            })
            .collect()
    }

    #[test]
    fn a_recorded_replay_validates_and_keeps_every_event() {
        let original = crate::generate::football(&crate::generate::Request {
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let mut recorder = Recorder::new("scores:", None, 10.0);
        let mut written = Vec::new();
        for event in replayed(&original, 5, 10) {
            let channel = format!("scores:{}", event.match_topic);
            written.extend(
                recorder
                    .accept(&channel, event.to_json().as_bytes())
                    .unwrap(),
            );
        }
        assert_eq!(written.len(), 1, "match_ended closes the recording");
        let recorded = &written[0];
        let reparsed = crate::fixture::parse(&recorded.to_jsonl()).unwrap();
        check(&reparsed).unwrap();
        assert_eq!(recorded.header.result.score, original.header.result.score);
        assert_eq!(recorded.header.home, original.header.home);
        let kinds = |fixture: &Fixture| {
            fixture
                .events
                .iter()
                .map(|event| event.kind.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(recorded), kinds(&original));
        // Offsets come back within the rounding of the speed-up.
        for (a, b) in recorded.events.iter().zip(&original.events) {
            assert!(
                a.offset_ms.abs_diff(b.offset_ms) <= 10,
                "{} vs {}",
                a.offset_ms,
                b.offset_ms
            );
        }
    }

    #[test]
    fn skips_what_it_should_and_splits_epochs() {
        let fixture = crate::generate::tennis(
            &crate::generate::Request {
                seed: 1,
                ..Default::default()
            },
            Default::default(),
            None,
        )
        .unwrap();
        let events = replayed(&fixture, 1, 1);
        let channel = format!("scores:{}", events[0].match_topic);
        let mut recorder = Recorder::new("scores:", Some(Topic::parse("tennis").unwrap()), 1.0);
        assert_eq!(recorder.accept("other:x", b"{}"), Err(Skip::NotFollowed));
        assert!(matches!(
            recorder.accept(&channel, b"not json"),
            Err(Skip::Malformed(_))
        ));
        assert!(matches!(
            recorder.accept("scores:tennis/x/y", events[0].to_json().as_bytes()),
            Err(Skip::WrongChannel { .. })
        ));
        for event in &events[..10] {
            recorder
                .accept(&channel, event.to_json().as_bytes())
                .unwrap();
        }
        assert!(
            matches!(
                recorder.accept(&channel, events[5].to_json().as_bytes()),
                Err(Skip::Rejected(_))
            ),
            "duplicate"
        );
        // The match restarts in a new epoch: the first history is written as it stood.
        let restarted = replayed(&fixture, 2, 1);
        let closed = recorder
            .accept(&channel, restarted[0].to_json().as_bytes())
            .unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].events.len(), 9);
        assert_eq!(closed[0].header.result.status, MatchStatus::Live);
        check(&closed[0]).unwrap();
        assert_eq!(
            recorder.accept(&channel, events[11].to_json().as_bytes()),
            Err(Skip::Stale)
        );
        let mut football = Recorder::new("scores:", Some(Topic::parse("football").unwrap()), 1.0);
        assert_eq!(
            football.accept(&channel, events[0].to_json().as_bytes()),
            Err(Skip::NotFollowed)
        );
        assert_eq!(football.pattern(), "scores:football/*");
        assert_eq!(Recorder::new("scores:", None, 1.0).pattern(), "scores:*");
    }

    #[test]
    fn paths_mirror_topics_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let topic = MatchTopic::parse("football/world-cup/arg-fra").unwrap();
        let first = fixture_path(dir.path(), &topic);
        assert!(first.ends_with("football/world-cup/arg-fra.jsonl"));
        std::fs::create_dir_all(first.parent().unwrap()).unwrap();
        std::fs::write(&first, "").unwrap();
        assert!(fixture_path(dir.path(), &topic).ends_with("football/world-cup/arg-fra-2.jsonl"));
    }
}
