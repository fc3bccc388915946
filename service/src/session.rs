//! One WebSocket connection: a single task that reads client frames, writes queued frames,
//! pings, and closes with a reason.
//!
//! The task owns the socket; the hub only reaches it through the connection's
//! [`Mailbox`]. Every way a connection can end maps to one close code:
//!
//! | why | code |
//! | --- | --- |
//! | the service shuts down | 1001 going away |
//! | a binary frame | 1003 unsupported data |
//! | a request flood | 1008 policy violation |
//! | a text message that is not UTF-8 | 1007 invalid payload |
//! | a frame or message over the size limit | 1009 message too big |
//! | the client stopped reading and its queue overflowed | 1013 try again later |
//! | nothing heard from the client within the idle timeout | 1000 normal, reason `idle timeout` |
//! | a broken WebSocket frame | 1002 protocol error |
//! | the client's close frame | its own code, echoed |

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason};
use futures_util::FutureExt;
use scoreline_protocol::{
    ClientMessage, ErrorCode, MatchTopic, ResumePoint, ServerMessage, Topic, TopicError,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::hub::{Command, HubHandle};
use crate::mailbox::{Mailbox, MailboxLimits, Outbound, QueueState};
use crate::routing::ConnId;
use crate::telemetry;
use crate::websocket::{
    self, FrameReader, FrameWriter, Incoming, ReadError, TextFrame, echo_close, reason,
};

/// How a session behaves; derived from the configuration once.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Interval between pings.
    pub heartbeat: Duration,
    /// Silence after which the connection is closed.
    pub idle_timeout: Duration,
    /// Average requests per second allowed.
    pub max_requests_per_sec: u32,
    /// Outbound queue bounds.
    pub mailbox: MailboxLimits,
}

/// How long a closing connection may take to flush and send its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Longest part of an offending request echoed back in an error.
const ECHO_BYTES: usize = 256;

thread_local! {
    /// The mailboxes of the sessions running on this thread. Shutdown reaches each session
    /// through its own mailbox ([`shut_down_here`]), which it watches anyway, instead of every
    /// session also waiting on the shutdown token at each wake-up: the token takes its lock and
    /// adds and removes a waiter every time, about 400 instructions per frame sent.
    static RUNNING: RefCell<HashMap<ConnId, Arc<Mailbox>>> = RefCell::new(HashMap::new());
}

/// Tells every session on this thread that the service is shutting down: each writes what is
/// queued, briefly, then closes with 1001. Sessions that start later see the shutdown token
/// already cancelled.
pub fn shut_down_here() {
    RUNNING.with(|running| {
        for mailbox in running.borrow().values() {
            mailbox.shut_down();
        }
    });
}

/// A session's entry in [`RUNNING`], for its life.
struct Running(ConnId);

impl Running {
    fn enter(conn: ConnId, mailbox: &Arc<Mailbox>) -> Running {
        RUNNING.with(|running| running.borrow_mut().insert(conn, Arc::clone(mailbox)));
        Running(conn)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The thread's locals may be gone when its runtime drops the last sessions.
        let _ = RUNNING.try_with(|running| running.borrow_mut().remove(&self.0));
    }
}

/// Runs a connection until it ends. `welcome` is the first frame sent. `shutdown` is looked at
/// once, as the session starts; after that, shutdown comes through [`shut_down_here`].
pub async fn run<R, W>(
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
    conn: ConnId,
    hub: HubHandle,
    settings: SessionSettings,
    welcome: TextFrame,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mailbox = Arc::new(Mailbox::new(settings.mailbox));
    let _running = Running::enter(conn, &mailbox);
    if shutdown.is_cancelled() {
        mailbox.shut_down();
    }
    drop(shutdown);
    writer.queue_text(welcome);
    let mut connection = Connection {
        conn,
        hub: hub.clone(),
        mailbox: Arc::clone(&mailbox),
        limiter: RateLimiter::new(settings.max_requests_per_sec, Instant::now()),
        registered: false,
    };
    let mut clock = Clock::new(tokio::time::Instant::now(), settings, conn);
    // One timer for the connection's life, for its next ping or its idle deadline, whichever
    // comes first; it is moved only when it fires. A timer per wake-up (a `sleep_until` in the
    // `select!`) was put into and taken out of the timer wheel for every frame sent. Boxed, as
    // the heartbeat's `Interval` boxed its own, so the session future stays small.
    let mut timer = Box::pin(tokio::time::sleep_until(clock.next_due()));
    let sent = SentMetrics::shared();

    let close_with: Option<CloseReason> = loop {
        match flush(
            &mut writer,
            sent,
            &mailbox,
            Watch::Shutdown,
            clock.idle_deadline(),
        )
        .await
        {
            Flushed::Done => {}
            Flushed::PeerGone => break None,
            Flushed::Overflowed => {
                break Some(reason(
                    CloseCode::Again,
                    "too slow: outbound queue overflowed; reconnect",
                ));
            }
            Flushed::ShuttingDown => break Some(reason(CloseCode::Away, "server shutting down")),
            Flushed::Idle => break Some(reason(CloseCode::Normal, "idle timeout")),
        }
        tokio::select! {
            biased;
            () = mailbox.ready() => if mailbox.shutting_down() {
                // Drain what is already queued, briefly, then say goodbye.
                let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
                let _ = flush(&mut writer, sent, &mailbox, Watch::Nothing, deadline).await;
                break Some(reason(CloseCode::Away, "server shutting down"));
            },
            message = reader.next() => {
                clock.heard(tokio::time::Instant::now());
                match message {
                    Ok(message) => match connection.on_message(message, &mut writer).await {
                        Ok(()) => {}
                        Err(close) => break close,
                    },
                    Err(error) => break read_error_close(&error),
                }
            }
            () = &mut timer => match clock.due(tokio::time::Instant::now()) {
                Due::Idle => break Some(reason(CloseCode::Normal, "idle timeout")),
                Due::Ping => {
                    writer.queue_ping();
                    timer.as_mut().reset(clock.next_due());
                }
                Due::Nothing => timer.as_mut().reset(clock.next_due()),
            },
        }
    };

    mailbox.close();
    if connection.registered {
        let _ = hub.send(Command::Disconnect { conn }).await;
    }
    if let Some(close_with) = close_with {
        websocket::close(&mut reader, &mut writer, close_with, CLOSE_GRACE).await;
    }
}

/// The close for a broken client stream, counted as bad input; `None` when the connection itself
/// is gone (reset, or closed without a close frame), which is a client leaving, not bad input.
fn read_error_close(error: &ReadError) -> Option<CloseReason> {
    match error {
        ReadError::Eof | ReadError::Io(_) => {}
        ReadError::TooLarge { .. } => telemetry::bad_input("frame_too_large"),
        ReadError::NotUtf8 => telemetry::bad_input("invalid_utf8"),
        ReadError::Protocol(_) => telemetry::bad_input("websocket_protocol"),
    }
    error.close_reason()
}

/// The handles on the output metrics, looked up once per process: they are the same for every
/// connection, and looking them up in the registry cost each connection about 2,550 instructions,
/// 2.4 % of its connect path (`docs/benchmarks.md`, issue 14, session 5).
struct SentMetrics {
    frames: metrics::Counter,
    bytes: metrics::Counter,
    latency: metrics::Histogram,
    source_latency: metrics::Histogram,
}

impl SentMetrics {
    /// The process's handles. The recorder is installed once per process when the first service
    /// is built (`telemetry::metrics_handle`), before any connection is accepted, so the handles
    /// looked up here at the first connection are the recorder's.
    fn shared() -> &'static SentMetrics {
        static SENT: std::sync::OnceLock<SentMetrics> = std::sync::OnceLock::new();
        SENT.get_or_init(SentMetrics::new)
    }

    fn new() -> SentMetrics {
        SentMetrics {
            frames: metrics::counter!(telemetry::FRAMES_OUT),
            bytes: metrics::counter!(telemetry::BYTES_OUT),
            latency: metrics::histogram!(telemetry::PUBLISH_TO_SEND_SECONDS),
            source_latency: metrics::histogram!(telemetry::SOURCE_TO_SEND_SECONDS),
        }
    }
}

/// When a connection next needs attention without anything happening on it: its next ping,
/// or the moment it has been silent for the idle timeout. Pure, with the time passed in.
#[derive(Debug, Clone, Copy)]
struct Clock {
    heartbeat: Duration,
    idle_timeout: Duration,
    next_ping: tokio::time::Instant,
    last_heard: tokio::time::Instant,
}

/// What [`Clock::due`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// The client has been silent for the idle timeout.
    Idle,
    /// Time for a ping; the next one is a heartbeat later.
    Ping,
    /// Neither (the client spoke since the timer was set).
    Nothing,
}

impl Clock {
    /// Connection `conn`, opened at `now`: its first ping comes between one and one and a half
    /// heartbeats later, at a point its id picks ([`first_ping_after`]), and then every heartbeat.
    fn new(now: tokio::time::Instant, settings: SessionSettings, conn: ConnId) -> Clock {
        Clock {
            heartbeat: settings.heartbeat,
            idle_timeout: settings.idle_timeout,
            next_ping: now + first_ping_after(settings.heartbeat, settings.idle_timeout, conn),
            last_heard: now,
        }
    }

    /// The client sent a frame at `now`.
    fn heard(&mut self, now: tokio::time::Instant) {
        self.last_heard = now;
    }

    /// When the connection is idle if the client stays silent.
    fn idle_deadline(&self) -> tokio::time::Instant {
        self.last_heard + self.idle_timeout
    }

    /// When [`Clock::due`] next has something to say.
    fn next_due(&self) -> tokio::time::Instant {
        self.next_ping.min(self.idle_deadline())
    }

    /// What is due at `now`; a ping moves the next one a heartbeat on.
    fn due(&mut self, now: tokio::time::Instant) -> Due {
        if now >= self.idle_deadline() {
            Due::Idle
        } else if now >= self.next_ping {
            self.next_ping = now + self.heartbeat;
            Due::Ping
        } else {
            Due::Nothing
        }
    }
}

/// How long after it opens connection `conn` is first pinged: somewhere from one heartbeat to
/// one and a half, the same point for the same id, consecutive ids far apart. Never sooner than
/// a heartbeat, as between any two pings (a connection that just opened has just shown it is
/// alive), and never later than halfway from the heartbeat to the idle timeout, so a silent
/// client that answers pings is heard in time however the two are configured (by default 45 s
/// leaves the whole half heartbeat, up to 22.5 s).
///
/// Pings at a fixed heartbeat from the connect would keep fans who connected together (a
/// reconnect storm after a deploy, a goal that brings everyone back) pinged together for as long
/// as they stay: ten thousand writes in one burst every heartbeat, and the next goal's frames
/// queued behind them. S1 showed it: its slowest deliveries bunched in the 250 ms after its
/// 5,000 fans' first pings (`docs/benchmarks.md`, issue 14, session 7).
fn first_ping_after(heartbeat: Duration, idle_timeout: Duration, conn: ConnId) -> Duration {
    // Fibonacci hashing: the id times 2^64 / golden ratio, whose top 53 bits are a fraction
    // in [0, 1) that lands far from its neighbours' for consecutive ids.
    let fraction = (conn.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1_u64 << 53) as f64;
    let spread = (heartbeat / 2).min(idle_timeout.saturating_sub(heartbeat) / 2);
    heartbeat + spread.mul_f64(fraction)
}

/// Whether a flush stuck on a slow client gives up when the service shuts down.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// As usual.
    Shutdown,
    /// The last flush, during shutdown.
    Nothing,
}

/// How a flush ended.
enum Flushed {
    /// Everything queued was written.
    Done,
    /// The client is gone.
    PeerGone,
    /// The client fell too far behind.
    Overflowed,
    /// The service is shutting down.
    ShuttingDown,
    /// The client has been silent past the idle deadline while writes were stuck.
    Idle,
}

/// Writes every queued frame: the mailbox's, and the control frames already in the writer, in
/// one buffer, so a client that fell behind gets its backlog in as few system calls as its socket
/// allows. While a write waits on a client that is not reading, keeps watching for overflow,
/// shutdown and the idle deadline, so a stuck client cannot pin the task.
async fn flush<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    sent: &SentMetrics,
    mailbox: &Mailbox,
    watch: Watch,
    idle_deadline: tokio::time::Instant,
) -> Flushed {
    loop {
        let Some(Batch {
            frames,
            bytes,
            oldest,
            oldest_source_ms,
        }) = queue_waiting(writer, mailbox)
        else {
            return Flushed::Overflowed;
        };
        if frames == 0 && writer.pending() == 0 {
            return Flushed::Done;
        }
        let mut write = std::pin::pin!(writer.flush());
        // Usually the socket takes everything at once; only a write that has to wait needs the
        // watchers below (and their timer).
        let written = match write.as_mut().now_or_never() {
            Some(written) => written,
            None => loop {
                tokio::select! {
                    biased;
                    written = &mut write => break written,
                    () = mailbox.ready() => {
                        if mailbox.overflowed() {
                            return Flushed::Overflowed;
                        }
                        if watch == Watch::Shutdown && mailbox.shutting_down() {
                            return Flushed::ShuttingDown;
                        }
                    }
                    () = tokio::time::sleep_until(idle_deadline) => return Flushed::Idle,
                }
            },
        };
        if written.is_err() {
            return Flushed::PeerGone;
        }
        sent.frames.increment(frames as u64);
        sent.bytes.increment(bytes as u64);
        if let Some(oldest) = oldest {
            sent.latency.record(oldest.elapsed());
        }
        if let Some(source_ms) = oldest_source_ms {
            // A source clock ahead of ours reads as no delay rather than a negative one.
            let behind_ms = crate::now_ms().saturating_sub(source_ms);
            sent.source_latency.record(behind_ms as f64 / 1000.0);
        }
    }
}

/// What [`queue_waiting`] moved from the mailbox to the writer, for the metrics of its write.
struct Batch {
    frames: usize,
    bytes: usize,
    /// When the service received the oldest event among them.
    oldest: Option<Instant>,
    /// The oldest source timestamp among them.
    oldest_source_ms: Option<u64>,
}

/// Moves every frame waiting in the mailbox into the writer; `None` if the mailbox overflowed.
/// Not async, so the frames (one of them inline, see `mailbox::Frames`) never take room in the
/// session's future: only what is left of them, the few figures of [`Batch`], waits for the
/// write. They come with the buffer of a backlog, freed here, so an idle connection keeps none.
fn queue_waiting<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    mailbox: &Mailbox,
) -> Option<Batch> {
    let (waiting, state) = mailbox.take();
    if state == QueueState::Overflowed {
        return None;
    }
    let batch = Batch {
        frames: waiting.len(),
        bytes: 0,
        oldest: waiting.iter().find_map(|frame| frame.received_at),
        oldest_source_ms: waiting.iter().filter_map(|frame| frame.source_ms).min(),
    };
    let before = writer.pending();
    for frame in waiting {
        writer.queue_text(frame.text);
    }
    Some(Batch {
        bytes: writer.pending() - before,
        ..batch
    })
}

/// The request-handling side of a connection.
struct Connection {
    conn: ConnId,
    hub: HubHandle,
    mailbox: Arc<Mailbox>,
    limiter: RateLimiter,
    /// Whether the hub knows this connection. It is told with the first request that needs it,
    /// in the same breath as that request: a connection costs the hub one wake-up, not two, and
    /// nothing at all if it never asks for anything.
    registered: bool,
}

impl Connection {
    /// Handles one client message; `Err` carries the close to send (or `None` to just drop).
    async fn on_message<W: AsyncWrite + Unpin>(
        &mut self,
        message: Incoming,
        writer: &mut FrameWriter<W>,
    ) -> Result<(), Option<CloseReason>> {
        match message {
            Incoming::Text(text) => self.on_text(&text).await,
            Incoming::Binary(_) => {
                telemetry::bad_input("binary_frame");
                Err(Some(reason(
                    CloseCode::Unsupported,
                    "binary frames are not supported; send JSON text frames",
                )))
            }
            Incoming::Ping(payload) => {
                writer.queue_pong(payload);
                Ok(())
            }
            Incoming::Pong => Ok(()),
            Incoming::Close(close) => Err(Some(echo_close(close.map(|close| close.code)))),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Option<CloseReason>> {
        match self.limiter.check(Instant::now()) {
            Verdict::Allowed => {}
            Verdict::Limited => {
                telemetry::bad_input("rate_limited");
                let message = "too many requests; slow down".to_owned();
                self.error(ErrorCode::RateLimited, message, Some(text));
                return Ok(());
            }
            Verdict::Flood => {
                telemetry::bad_input("request_flood");
                return Err(Some(reason(CloseCode::Policy, "request flood")));
            }
        }
        match parse_request(text) {
            Ok(request) => self.on_request(request).await,
            Err((code, message)) => {
                telemetry::bad_input(code.as_str());
                self.error(code, message, Some(text));
                Ok(())
            }
        }
    }

    async fn on_request(&mut self, request: Request) -> Result<(), Option<CloseReason>> {
        let command = match request {
            Request::Subscribe {
                topics,
                resume,
                delay_secs,
            } => Command::Subscribe {
                resume,
                conn: self.conn,
                topics,
                delay_secs,
            },
            Request::Unsubscribe(topics) => Command::Unsubscribe {
                conn: self.conn,
                topics,
            },
            Request::List { prefix, status } => Command::List {
                conn: self.conn,
                prefix,
                status,
            },
            Request::Ping(id) => {
                let pong = ServerMessage::Pong {
                    id,
                    server_ms: crate::now_ms(),
                };
                self.mailbox.push(Outbound::critical(pong.to_json()));
                return Ok(());
            }
        };
        let hub_gone = |_| Some(reason(CloseCode::Away, "server shutting down"));
        if !self.registered {
            let connect = Command::Connect {
                conn: self.conn,
                mailbox: Arc::clone(&self.mailbox),
            };
            self.hub.send(connect).await.map_err(hub_gone)?;
            self.registered = true;
        }
        self.hub.send(command).await.map_err(hub_gone)
    }

    fn error(&self, code: ErrorCode, message: String, request: Option<&str>) {
        let request = request.map(|text| truncate(text, ECHO_BYTES).to_owned());
        let error = ServerMessage::Error {
            code,
            message,
            request,
        };
        self.mailbox.push(Outbound::critical(error.to_json()));
    }
}

/// A validated client request (public for the fuzz target of [`parse_request`]).
#[derive(Debug, PartialEq)]
pub enum Request {
    /// `subscribe`.
    Subscribe {
        /// The topics.
        topics: Vec<Topic>,
        /// Where the client left off in some matches.
        resume: BTreeMap<MatchTopic, ResumePoint>,
        /// The spoiler delay asked for, if any.
        delay_secs: Option<u32>,
    },
    /// `unsubscribe`.
    Unsubscribe(Vec<Topic>),
    /// `ping` with the client's id.
    Ping(u64),
    /// `list`: matches under a prefix, in a status.
    List {
        /// Only matches under this topic.
        prefix: Option<Topic>,
        /// Only matches in this status.
        status: Option<scoreline_protocol::MatchStatus>,
    },
}

/// Parses and validates a client's text message, or says which error to answer with. Never
/// panics, whatever the text (fuzzed: `fuzz/fuzz_targets/client_message.rs`).
pub fn parse_request(text: &str) -> Result<Request, (ErrorCode, String)> {
    let message = serde_json::from_str::<ClientMessage>(text).map_err(|error| {
        #[derive(serde::Deserialize)]
        struct Probe {
            r#type: String,
        }
        const KNOWN: [&str; 4] = ["subscribe", "unsubscribe", "ping", "list"];
        match serde_json::from_str::<Probe>(text) {
            Ok(probe) if !KNOWN.contains(&probe.r#type.as_str()) => (
                ErrorCode::UnknownType,
                format!(
                    "unknown message type {:?}; expected one of {KNOWN:?}",
                    probe.r#type
                ),
            ),
            _ => (ErrorCode::BadRequest, format!("malformed request: {error}")),
        }
    })?;
    let topics = |topics: &[String]| -> Result<Vec<Topic>, (ErrorCode, String)> {
        if topics.is_empty() {
            return Err((
                ErrorCode::BadRequest,
                "`topics` must not be empty".to_owned(),
            ));
        }
        ClientMessage::parse_topics(topics).map_err(|(topic, error)| invalid_topic(&topic, &error))
    };
    Ok(match message {
        ClientMessage::Subscribe {
            topics: list,
            resume,
            delay_secs,
        } => {
            let resume = resume
                .into_iter()
                .map(|(text, point)| match MatchTopic::parse(&text) {
                    Ok(topic) => Ok((topic, point)),
                    Err(error) => Err(invalid_topic(&text, &error)),
                })
                .collect::<Result<_, _>>()?;
            Request::Subscribe {
                topics: topics(&list)?,
                resume,
                delay_secs,
            }
        }
        ClientMessage::Unsubscribe { topics: list } => Request::Unsubscribe(topics(&list)?),
        ClientMessage::Ping { id } => Request::Ping(id),
        ClientMessage::List { prefix, status } => {
            let prefix = prefix
                .map(|text| Topic::parse(&text).map_err(|error| invalid_topic(&text, &error)))
                .transpose()?;
            Request::List { prefix, status }
        }
    })
}

fn invalid_topic(topic: &str, error: &TopicError) -> (ErrorCode, String) {
    (
        ErrorCode::InvalidTopic,
        format!("invalid topic {:?}: {error}", truncate(topic, 80)),
    )
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A token bucket per connection: `rate` requests per second on average, bursts of `2 × rate`.
/// A client that keeps sending after being refused — more than a bucketful of refusals within one
/// second — is flooding and gets disconnected.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
    refused_in_window: u32,
    window_start: Instant,
}

/// What a rate limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Refuse this request with an error.
    Limited,
    /// Refuse and disconnect.
    Flood,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, now: Instant) -> RateLimiter {
        let rate_per_sec = f64::from(rate_per_sec.max(1));
        RateLimiter {
            rate_per_sec,
            capacity: 2.0 * rate_per_sec,
            tokens: 2.0 * rate_per_sec,
            last: now,
            refused_in_window: 0,
            window_start: now,
        }
    }

    /// Takes a token for a request arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed_secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed_secs * self.rate_per_sec).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.refused_in_window = 0;
        }
        self.refused_in_window += 1;
        if f64::from(self.refused_in_window) > self.capacity {
            Verdict::Flood
        } else {
            Verdict::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_name_their_problem() {
        let check = |text: &str| parse_request(text).map_err(|(code, _)| code);
        assert_eq!(
            check(r#"{"type":"subscribe","topics":["football/pl"]}"#),
            Ok(Request::Subscribe {
                topics: vec![Topic::parse("football/pl").unwrap()],
                resume: BTreeMap::new(),
                delay_secs: None,
            })
        );
        let resume = check(
            r#"{"type":"subscribe","topics":["football"],"resume":{"football/pl/a-b":{"epoch":2,"seq":7}}}"#,
        );
        let Ok(Request::Subscribe { resume, .. }) = resume else {
            panic!("{resume:?}")
        };
        let point = ResumePoint { epoch: 2, seq: 7 };
        assert_eq!(resume.get("football/pl/a-b"), Some(&point));
        assert_eq!(
            check(
                r#"{"type":"subscribe","topics":["football"],"resume":{"football":{"epoch":2,"seq":7}}}"#
            ),
            Err(ErrorCode::InvalidTopic)
        );
        assert_eq!(check(r#"{"type":"ping","id":7}"#), Ok(Request::Ping(7)));
        assert_eq!(check("not json"), Err(ErrorCode::BadRequest));
        assert_eq!(check(r#"{"type":"subscribe"}"#), Err(ErrorCode::BadRequest));
        assert_eq!(
            check(r#"{"type":"subscribe","topics":[]}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(check(r#"{"type":"dance"}"#), Err(ErrorCode::UnknownType));
        assert_eq!(
            check(r#"{"type":"subscribe","topics":["ok","Not OK"]}"#),
            Err(ErrorCode::InvalidTopic)
        );
        assert_eq!(
            check(r#"{"type":"list","prefix":"a/b/c/d"}"#),
            Err(ErrorCode::InvalidTopic)
        );
        assert_eq!(check(r#"[1,2]"#), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn rate_limiter_allows_bursts_then_limits_then_detects_floods() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(5, start);
        for _ in 0..10 {
            assert_eq!(limiter.check(start), Verdict::Allowed);
        }
        for _ in 0..10 {
            assert_eq!(limiter.check(start), Verdict::Limited);
        }
        assert_eq!(limiter.check(start), Verdict::Flood);
        let later = start + Duration::from_secs(2);
        assert_eq!(limiter.check(later), Verdict::Allowed);
    }

    #[test]
    fn steady_traffic_at_the_rate_is_never_limited() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, start);
        for step in 0..1000 {
            let now = start + Duration::from_millis(100 * step);
            assert_eq!(limiter.check(now), Verdict::Allowed, "step {step}");
        }
    }

    fn clock_settings() -> SessionSettings {
        SessionSettings {
            heartbeat: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            max_requests_per_sec: 1,
            mailbox: MailboxLimits {
                max_critical: 1,
                max_frames: 1,
            },
        }
    }

    /// A clock opened at `start` whose first ping is due a whole heartbeat (15 s) later, the
    /// soonest any connection's is.
    fn clock_from(start: tokio::time::Instant) -> Clock {
        Clock {
            next_ping: start + Duration::from_secs(15),
            ..Clock::new(start, clock_settings(), ConnId(1))
        }
    }

    #[test]
    fn the_clock_pings_every_heartbeat_while_the_client_answers() {
        let start = tokio::time::Instant::now();
        let secs = |n| start + Duration::from_secs(n);
        let mut clock = clock_from(start);
        assert_eq!(clock.next_due(), secs(15));
        assert_eq!(clock.due(secs(15)), Due::Ping);
        // The pong comes back.
        clock.heard(secs(16));
        assert_eq!(clock.next_due(), secs(30));
        assert_eq!(clock.due(secs(30)), Due::Ping);
        clock.heard(secs(31));
        assert_eq!(clock.due(secs(45)), Due::Ping);
        assert_eq!(clock.next_due(), secs(60));
    }

    #[test]
    fn the_clock_calls_a_silent_client_idle_at_the_timeout_and_not_before() {
        let start = tokio::time::Instant::now();
        let secs = |n| start + Duration::from_secs(n);
        let mut clock = clock_from(start);
        assert_eq!(clock.due(secs(15)), Due::Ping);
        assert_eq!(clock.due(secs(30)), Due::Ping);
        // The next ping and the deadline coincide: idle wins.
        assert_eq!(clock.next_due(), secs(45));
        assert_eq!(clock.due(secs(45)), Due::Idle);

        // A timer set for a deadline the client then moved finds nothing to do.
        let mut clock = Clock {
            heartbeat: Duration::from_secs(60),
            ..clock_from(start)
        };
        clock.next_ping = secs(60);
        assert_eq!(clock.next_due(), secs(45));
        clock.heard(secs(40));
        assert_eq!(clock.due(secs(45)), Due::Nothing);
        assert_eq!(clock.next_due(), secs(60));
        assert_eq!(clock.due(secs(60)), Due::Ping);
        assert_eq!(clock.due(secs(84)), Due::Nothing);
        assert_eq!(clock.due(secs(85)), Due::Idle);
    }

    #[test]
    fn a_first_ping_leaves_a_silent_client_time_to_answer_before_the_idle_timeout() {
        let heartbeat = Duration::from_secs(15);
        for id in 1..=1_000 {
            // 20 s: half of the 5 s past the heartbeat.
            let after = first_ping_after(heartbeat, Duration::from_secs(20), ConnId(id));
            assert!(
                after >= heartbeat && after < Duration::from_millis(17_500),
                "{after:?}"
            );
            // No room past the heartbeat: at the heartbeat, as before pings were spread.
            assert_eq!(
                first_ping_after(heartbeat, heartbeat, ConnId(id)),
                heartbeat
            );
        }
    }

    #[test]
    fn fans_who_connect_together_are_first_pinged_spread_over_half_a_heartbeat_after_one() {
        let heartbeat = Duration::from_secs(15);
        let start = tokio::time::Instant::now();
        // 10,000 connections opened in the same instant, as in a reconnect storm.
        let mut per_second = [0_usize; 23];
        for id in 1..=10_000 {
            let clock = Clock::new(start, clock_settings(), ConnId(id));
            let after = clock.next_ping - start;
            assert!(
                after >= heartbeat && after < heartbeat * 3 / 2,
                "connection {id} first pinged after {after:?}"
            );
            assert_eq!(
                Clock::new(start, clock_settings(), ConnId(id)).next_ping,
                clock.next_ping,
                "the same id, the same moment"
            );
            per_second[after.as_secs() as usize] += 1;
        }
        // Nobody within the first heartbeat; each second of the next half heartbeat within 10 %
        // of its share (10,000 over 7.5 s: 1,333 in a whole second, 667 in the half second
        // from 22 s).
        assert_eq!(per_second[..15].iter().sum::<usize>(), 0, "{per_second:?}");
        for count in &per_second[15..22] {
            assert!((1_200..=1_467).contains(count), "{per_second:?}");
        }
        assert!((600..=734).contains(&per_second[22]), "{per_second:?}");
    }
}
#[cfg(test)]
mod footprint {
    use crate::hub::{self, HubLimits};
    use crate::mailbox::{Mailbox, MailboxLimits};
    use crate::matches::StoreLimits;
    use crate::websocket::{FrameReader, FrameWriter};

    /// Every open connection holds one session future for its whole life, so its size is paid
    /// 10,000 times over by 10,000 idle fans (issue 6 allows 8 KB each in all). Big, rarely
    /// needed states (waiting for room in the hub's queue) are boxed instead of inlined; this
    /// catches one creeping back.
    #[tokio::test]
    async fn a_session_future_stays_small() {
        let (socket, _peer) = tokio::io::duplex(64);
        let (read, write) = tokio::io::split(socket);
        let limits = HubLimits {
            max_topics: 10,
            max_snapshots: 10,
            store: StoreLimits {
                max_matches: 10,
                finished_retention_ms: 0,
                recent_events: 10,
            },
            max_delay_secs: 0,
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (hub, _task) = hub::start(limits, 10, None, None, shutdown.clone());
        let settings = super::SessionSettings {
            heartbeat: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
            max_requests_per_sec: 1,
            mailbox: MailboxLimits {
                max_critical: 1,
                max_frames: 1,
            },
        };
        let session = super::run(
            FrameReader::new(read, &[], 100),
            FrameWriter::new(write),
            hub.new_conn_id(),
            hub.clone(),
            settings,
            "welcome".into(),
            shutdown,
        );
        let bytes = std::mem::size_of_val(&session);
        assert!(bytes <= 1536, "a session future takes {bytes} bytes");
        // One waiting frame is held inline (`mailbox::Frames`): larger than an empty `VecDeque`,
        // but an idle connection then holds no queue buffer at all.
        let mailbox = std::mem::size_of::<Mailbox>();
        assert!(mailbox <= 224, "a mailbox takes {mailbox} bytes");
    }
}
