//! Where a replay's events go: Redis through the atomic numbering script (`scoreline_feed`, the
//! default), Redis by plain best-effort `PUBLISH` (`--plain`), the service's HTTP publish API,
//! stdout (`--dry-run`), or an in-process channel (tests and embedding).
//!
//! The replay driver hands every way the same thing: the event as the replayer's plan numbers it,
//! and whether it starts a new history. Every way answers with the event as subscribers received
//! it. Through the script (and through a service that numbers HTTP drafts) that is Redis's own
//! `epoch` and `seq`; the other ways keep the plan's numbering.
//!
//! Each way is a thin shell around one call; the replay driver decides when to publish and what
//! to do with a failure, using [`PublishError::is_transient`].

use std::io::Write;
use std::time::Duration;

use scoreline_feed::{ConnectionSettings, Layout, RedisConnection};
use scoreline_protocol::ScoreEvent;
use tokio::sync::mpsc;

/// The channel prefix the service subscribes under by default.
pub const DEFAULT_CHANNEL_PREFIX: &str = "scores:";

/// Where an event stands in its match's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// The first event of a replay or of a `--loop` round: it starts a new history (a new epoch,
    /// seq 1), so every round is a clean match rather than a continuation of the last one.
    StartNew,
    /// Any later event: the next seq of the current history.
    Continue,
}

/// How long connecting to Redis or the service may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one publish may take; a stuck broker must not freeze the schedule silently.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis refused the connection or the command, or timed out.
    #[error("Redis at {addr}: {message}")]
    Redis {
        /// `host:port` (never the URL, which may hold a password).
        addr: String,
        /// What went wrong, as the Redis client tells it. Kept as text: the client's error
        /// repeats its own cause, which would print twice in an error chain.
        message: String,
        /// Whether the failure was of the connection (worth retrying) rather than the command.
        transient: bool,
    },
    /// The Redis URL is not one Scoreline can use.
    #[error("the Redis URL cannot be used")]
    BadRedisUrl(#[from] scoreline_feed::RedisUrlError),
    /// The service could not be reached over HTTP.
    #[error("service at {url} unreachable: {reason}")]
    HttpUnreachable {
        /// The base URL given with `--http`.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The service answered 503: its broker is down for now.
    #[error("service at {url} is unavailable (503): {body}")]
    ServiceUnavailable {
        /// The base URL.
        url: String,
        /// The service's explanation.
        body: String,
    },
    /// The token was missing or wrong (401), or publishing is disabled (403, 404).
    #[error("service at {url} refused the token (HTTP {status}): {body}")]
    Unauthorized {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's explanation.
        body: String,
    },
    /// The service rejected the event itself (400) or answered something unexpected.
    #[error("service at {url} rejected the event (HTTP {status}): {body}")]
    Rejected {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's explanation.
        body: String,
    },
    /// Writing to stdout failed (a closed pipe in `--dry-run | head`).
    #[error("writing to stdout: {0}")]
    Stdout(#[from] std::io::Error),
    /// The receiving end of a channel publisher is gone.
    #[error("the event channel is closed")]
    ChannelClosed,
}

impl PublishError {
    /// Whether trying again later may succeed: a broker or service that is down for now.
    /// A rejected token or event will be rejected again, so those end the replay.
    pub fn is_transient(&self) -> bool {
        match self {
            PublishError::Redis { transient, .. } => *transient,
            PublishError::HttpUnreachable { .. } | PublishError::ServiceUnavailable { .. } => true,
            _ => false,
        }
    }
}

/// Where events go.
pub enum Publisher {
    /// Redis, the production path: numbered by the script, or plain `PUBLISH` (boxed: it is much
    /// larger than the others).
    Redis(Box<RedisPublisher>),
    /// The service's `POST /api/publish`, with drafts the service numbers.
    Http(HttpPublisher),
    /// One JSON line per event on stdout, numbered by the plan, for `--dry-run`.
    Stdout,
    /// An in-process channel, for tests and for embedding the replayer; events keep the plan's
    /// numbering. It is bounded, so a slow receiver holds publishing up the way a slow broker
    /// would.
    Channel(mpsc::Sender<ScoreEvent>),
}

impl Publisher {
    /// Publishes one event (numbered by the plan) and returns it as subscribers receive it.
    pub async fn publish(
        &self,
        event: &ScoreEvent,
        history: History,
    ) -> Result<ScoreEvent, PublishError> {
        match self {
            Publisher::Redis(redis) => redis.publish(event, history).await,
            Publisher::Http(http) => http.publish(event, history).await,
            Publisher::Stdout => {
                let mut line = event.to_json();
                line.push('\n');
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(line.as_bytes())?;
                stdout.flush()?;
                Ok(event.clone())
            }
            Publisher::Channel(sender) => sender
                .send(event.clone())
                .await
                .map(|()| event.clone())
                .map_err(|_| PublishError::ChannelClosed),
        }
    }

    /// Before a retry: whether the failed attempt went through after all, i.e. whether the
    /// match's newest history entry is this very event, numbered after `confirmed` (the last
    /// event of this round known to be published; `None` before the round's first). Only the
    /// numbering script keeps a history to look in; every other way answers `None`, and a retry
    /// there may publish the event twice.
    pub async fn find_published(
        &self,
        event: &ScoreEvent,
        confirmed: Option<(u64, u64)>,
    ) -> Option<ScoreEvent> {
        match self {
            Publisher::Redis(redis) => redis.find_published(event, confirmed).await,
            _ => None,
        }
    }
}

/// How events go into Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisMode {
    /// Through `scoreline_feed`'s atomic script: Redis assigns `epoch` and `seq`, keeps the
    /// match's history in a Stream, and publishes. Subscribers and the service can detect and
    /// fill any gap.
    Numbered(Layout),
    /// Plain `PUBLISH <prefix><topic> <event>` with the replayer's own `epoch` and `seq`:
    /// best-effort, nothing is kept for whoever was not listening.
    Plain {
        /// Events go to `<channel_prefix><topic>`.
        channel_prefix: String,
    },
}

/// Publishes into Redis over one connection shared by every match, which reconnects after a
/// failure (the next publish tries again) and, under Sentinel, finds the current master.
pub struct RedisPublisher {
    /// Where Redis is, for messages (never the URL, which may hold a password).
    addr: String,
    mode: RedisMode,
    connection: RedisConnection,
    /// What each match's history holds as Redis confirmed it, kept across reconnections, so a
    /// Redis that lost its data (or failed over to a replica that missed writes) gets each
    /// match's numbering and history back before the next event, instead of starting the match
    /// over mid-way.
    ledgers: scoreline_feed::Ledgers,
}

impl RedisPublisher {
    /// Connects and checks Redis answers, so an unreachable Redis is reported before any match
    /// starts rather than as a stream of failed publishes.
    pub async fn connect(url: &str, mode: RedisMode) -> Result<RedisPublisher, PublishError> {
        let settings = ConnectionSettings {
            connect_timeout: CONNECT_TIMEOUT,
            response_timeout: PUBLISH_TIMEOUT,
        };
        let connection = RedisConnection::open(url, settings)?;
        let publisher = RedisPublisher {
            addr: connection.target().to_string(),
            mode,
            connection,
            ledgers: scoreline_feed::Ledgers::default(),
        };
        let mut connection = publisher.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(|source| publisher.error(source))?;
        Ok(publisher)
    }

    /// The channel an event goes to.
    pub fn channel(&self, event: &ScoreEvent) -> String {
        match &self.mode {
            RedisMode::Numbered(layout) => layout.channel(&event.match_topic),
            RedisMode::Plain { channel_prefix } => format!("{channel_prefix}{}", event.match_topic),
        }
    }

    async fn connection(&self) -> Result<RedisConnection, PublishError> {
        // Connecting now reports an unreachable Redis as such, before any command is tried.
        self.connection
            .connect()
            .await
            .map_err(|source| self.error(source))?;
        Ok(self.connection.clone())
    }

    async fn publish(
        &self,
        event: &ScoreEvent,
        history: History,
    ) -> Result<ScoreEvent, PublishError> {
        let connection = self.connection().await?;
        let result = match &self.mode {
            RedisMode::Numbered(layout) => {
                let mut feed = scoreline_feed::Publisher::with_ledgers(
                    connection,
                    layout.clone(),
                    self.ledgers.clone(),
                );
                let draft = event.draft();
                let recoveries_before = self.ledgers.recoveries().len();
                let published = match history {
                    History::StartNew => feed.publish_new_history(&draft).await,
                    History::Continue => feed.publish(&draft).await,
                };
                for recovery in self.ledgers.recoveries().iter().skip(recoveries_before) {
                    // Rare and worth seeing in the operator's terminal or log, progress or not.
                    eprintln!("{}", describe_recovery(recovery));
                }
                published
            }
            RedisMode::Plain { .. } => {
                let mut connection = connection;
                redis::cmd("PUBLISH")
                    .arg(self.channel(event))
                    .arg(event.to_json())
                    .query_async::<i64>(&mut connection)
                    .await
                    .map(|_| event.clone())
                    .map_err(scoreline_feed::FeedError::Redis)
            }
        };
        match result {
            Ok(published) => Ok(published),
            // The connection has dropped itself if it broke: the next attempt connects afresh.
            Err(scoreline_feed::FeedError::Redis(source)) => Err(self.error(source)),
            // Redis lost the match again while it was being put back: worth another try.
            Err(error @ scoreline_feed::FeedError::KeepsForgetting(_)) => {
                Err(PublishError::Redis {
                    addr: self.addr.clone(),
                    message: error.to_string(),
                    transient: true,
                })
            }
            // An answer this version does not understand: the same call would fail again.
            Err(other) => Err(PublishError::Redis {
                addr: self.addr.clone(),
                message: other.to_string(),
                transient: false,
            }),
        }
    }

    /// The times a match was found forgotten by Redis and put back, oldest first.
    pub fn recoveries(&self) -> Vec<scoreline_feed::Recovery> {
        self.ledgers.recoveries()
    }

    /// See [`Publisher::find_published`].
    async fn find_published(
        &self,
        event: &ScoreEvent,
        confirmed: Option<(u64, u64)>,
    ) -> Option<ScoreEvent> {
        let RedisMode::Numbered(layout) = &self.mode else {
            return None;
        };
        let mut connection = self.connection().await.ok()?;
        let newest =
            scoreline_feed::read_recent_history(&mut connection, layout, &event.match_topic, 1)
                .await
                .ok()?
                .pop()?;
        let after_confirmed = match confirmed {
            Some((epoch, seq)) => newest.epoch == epoch && newest.seq > seq,
            None => true,
        };
        // `ts_ms` is the publishing time of this attempt's event, so an equal draft numbered
        // after the last confirmed event is this event and not an earlier one like it.
        (after_confirmed && newest.draft() == event.draft()).then_some(newest)
    }

    fn error(&self, source: redis::RedisError) -> PublishError {
        PublishError::Redis {
            addr: self.addr.clone(),
            message: source.to_string(),
            transient: source.is_io_error()
                || source.is_connection_dropped()
                || source.is_connection_refusal()
                || source.is_timeout(),
        }
    }
}

/// Publishes through the service's HTTP API, for feeds that cannot reach Redis.
///
/// Events go as drafts, without `epoch` and `seq`: the service numbers them through the same
/// script. The first event of a round adds `?new_history=true`, so the round starts a new epoch
/// at seq 1.
pub struct HttpPublisher {
    base_url: String,
    token: String,
    agent: ureq::Agent,
}

/// One HTTP request as the publisher sends it; built separately so it is tested without a
/// network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// Full URL of the publish endpoint.
    pub url: String,
    /// The `Authorization` header value.
    pub authorization: String,
    /// The JSON body: the event's draft, without `epoch` and `seq`.
    pub body: String,
}

impl HttpPublisher {
    /// A publisher for the service at `base_url` (e.g. `http://127.0.0.1:8080`) with a bearer
    /// token.
    pub fn new(base_url: &str, token: &str) -> HttpPublisher {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(PUBLISH_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        HttpPublisher {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            agent,
        }
    }

    /// The request that publishes `event`'s draft.
    pub fn request(&self, event: &ScoreEvent, history: History) -> PublishRequest {
        let query = match history {
            History::StartNew => "?new_history=true",
            History::Continue => "",
        };
        PublishRequest {
            url: format!("{}/api/publish{query}", self.base_url),
            authorization: format!("Bearer {}", self.token),
            body: event.draft().to_json(),
        }
    }

    /// Checks that something answers HTTP at the base URL (`GET /healthz`; any status will do),
    /// so a wrong URL or a stopped service is reported before any match starts.
    pub async fn check_reachable(&self) -> Result<(), PublishError> {
        let agent = self.agent.clone();
        let url = format!("{}/healthz", self.base_url);
        let outcome = tokio::task::spawn_blocking(move || agent.get(&url).call().map(|_| ())).await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(PublishError::HttpUnreachable {
                url: self.base_url.clone(),
                reason: error.to_string(),
            }),
            Err(join_error) => Err(PublishError::HttpUnreachable {
                url: self.base_url.clone(),
                reason: join_error.to_string(),
            }),
        }
    }

    /// Sends one event and maps the answer: 2xx is success; see [`PublishError`] for the rest.
    /// The event comes back numbered as the service's answer says (`epoch` and `seq`), or as
    /// the plan numbered it when the answer does not say.
    async fn publish(
        &self,
        event: &ScoreEvent,
        history: History,
    ) -> Result<ScoreEvent, PublishError> {
        let request = self.request(event, history);
        let agent = self.agent.clone();
        let base_url = self.base_url.clone();
        // ureq is blocking and light; a blocking thread per request keeps the runtime free.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut response = agent
                .post(&request.url)
                .header("Authorization", &request.authorization)
                .content_type("application/json")
                .send(request.body.as_bytes())?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            Ok::<_, ureq::Error>((status, body))
        })
        .await;
        let (status, body) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                return Err(PublishError::HttpUnreachable {
                    url: base_url,
                    reason: error.to_string(),
                });
            }
            Err(join_error) => {
                return Err(PublishError::HttpUnreachable {
                    url: base_url,
                    reason: join_error.to_string(),
                });
            }
        };
        classify(&base_url, status, body.trim().to_owned())?;
        Ok(numbered_as_answered(event, &body))
    }
}

/// `event` with the `epoch` and `seq` a publish answer such as
/// `{"accepted":true,"match":"...","epoch":1764,"seq":7}` gives; each one the answer lacks stays
/// as it was.
pub fn numbered_as_answered(event: &ScoreEvent, answer: &str) -> ScoreEvent {
    let answer: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    let field = |name: &str| answer.get(name).and_then(serde_json::Value::as_u64);
    ScoreEvent {
        epoch: field("epoch").unwrap_or(event.epoch),
        seq: field("seq").unwrap_or(event.seq),
        ..event.clone()
    }
}

/// One line about a match Redis had forgotten and the replayer put back.
pub fn describe_recovery(recovery: &scoreline_feed::Recovery) -> String {
    let had = match recovery.redis_had {
        Some(position) => format!("epoch {} seq {}", position.epoch, position.seq),
        None => "nothing".to_owned(),
    };
    let how = match recovery.how {
        scoreline_feed::RecoveryKind::Restored { entries } => format!(
            "put its numbering back at seq {} with {entries} history entries",
            recovery.position.seq
        ),
        scoreline_feed::RecoveryKind::Republished { events } => {
            format!("published its {events} events again as a new history")
        }
    };
    format!(
        "{}: Redis held {had} instead of epoch {} seq {}; {how}",
        recovery.topic, recovery.position.epoch, recovery.position.seq
    )
}

/// Maps a publish answer's status to success or the matching error.
pub fn classify(url: &str, status: u16, body: String) -> Result<(), PublishError> {
    let url = url.to_owned();
    match status {
        200..=299 => Ok(()),
        401 | 403 | 404 => Err(PublishError::Unauthorized { url, status, body }),
        503 => Err(PublishError::ServiceUnavailable { url, body }),
        _ => Err(PublishError::Rejected { url, status, body }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scoreline_protocol::EventKind;

    fn event() -> ScoreEvent {
        ScoreEvent {
            epoch: 3,
            ts_ms: 5,
            ..scoreline_protocol::test_support::event(
                "football/test/a-b",
                1,
                EventKind::MatchStarted,
            )
        }
    }

    #[test]
    fn http_request_carries_token_and_draft() {
        let publisher = HttpPublisher::new("http://127.0.0.1:9/", "s3cret");
        let request = publisher.request(&event(), History::Continue);
        assert_eq!(request.url, "http://127.0.0.1:9/api/publish");
        assert_eq!(request.authorization, "Bearer s3cret");
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert!(body.get("seq").is_none() && body.get("epoch").is_none());
        assert_eq!(
            serde_json::from_value::<scoreline_protocol::EventDraft>(body).unwrap(),
            event().draft()
        );
    }

    #[test]
    fn the_first_event_of_a_round_asks_for_a_new_history() {
        let publisher = HttpPublisher::new("http://127.0.0.1:9", "t");
        assert_eq!(
            publisher.request(&event(), History::StartNew).url,
            "http://127.0.0.1:9/api/publish?new_history=true"
        );
    }

    #[test]
    fn the_answer_numbers_the_event_when_it_says_how() {
        let numbered = numbered_as_answered(
            &event(),
            r#"{"accepted":true,"match":"football/test/a-b","epoch":99,"seq":12}"#,
        );
        assert_eq!((numbered.epoch, numbered.seq), (99, 12));
        let seq_only = numbered_as_answered(&event(), r#"{"accepted":true,"seq":4}"#);
        assert_eq!((seq_only.epoch, seq_only.seq), (3, 4));
        assert_eq!(numbered_as_answered(&event(), "not json"), event());
    }

    #[test]
    fn http_answers_map_to_errors() {
        assert!(classify("u", 202, String::new()).is_ok());
        let unauthorized = classify("u", 401, "no".into()).unwrap_err();
        assert!(matches!(
            unauthorized,
            PublishError::Unauthorized { status: 401, .. }
        ));
        assert!(!unauthorized.is_transient());
        let rejected = classify("u", 400, "{\"error\":\"bad\"}".into()).unwrap_err();
        assert!(matches!(
            rejected,
            PublishError::Rejected { status: 400, .. }
        ));
        assert!(!rejected.is_transient());
        assert!(
            classify("u", 503, String::new())
                .unwrap_err()
                .is_transient()
        );
    }
}
