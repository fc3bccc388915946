//! The I/O of a run: connect everyone, publish on schedule, drain, collect.
//!
//! A run goes through fixed stages, each bounded in time:
//! 1. sample the server, then connect and subscribe every client (at most `connect_concurrency`
//!    handshakes in flight) within `connect_timeout`;
//! 2. with no phases, hold the idle connections for `hold_secs`; sample the server;
//! 3. publish each phase's events on schedule, numbered per topic;
//! 4. wait until readers have everything or `drain_timeout` passes, then stop every client;
//! 5. sample the server and add up what each client received.
//!
//! A run can be shared by several processes following the same topics ([`SharedRun`]): C100k
//! needs 100,000 fans of one match and a process holds at most 20,000 sockets here. They meet in
//! Redis between stages 2 and 3: each says it is subscribed, the one publisher waits for all of
//! them, publishes, and leaves what it published for the others to account their losses by.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{FutureExt, SinkExt, StreamExt};
use scoreline_protocol::{ClientMessage, EventDraft, EventKind, MatchTopic, Side};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use scoreline_feed::{self as feed, Layout};

use crate::plan::{Plan, PublishMode, Scenario, Sequencer, run_prefix, topic_names};
use crate::report::{PhaseReport, Report, ServerReport};
use crate::server_stats;
use crate::source_ports::SourcePorts;
use crate::tally::{
    ClientTally, LatencyRecorder, LatencySummary, Observed, PublishTimes, expected_for,
    histogram_buckets, latency_since_stamp,
};

/// How long a client waits for its close handshake before dropping the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The scenario the plan came from (reported only).
    pub scenario: Scenario,
    /// Clients, topics and phases.
    pub plan: Plan,
    /// The service's WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws`; loopback only.
    pub ws_url: String,
    /// The Redis the service listens on; loopback only.
    pub redis_url: String,
    /// Prepended to the topic to make the Redis channel (the service's `--channel-prefix`).
    pub channel_prefix: String,
    /// How events are published.
    pub publish: PublishMode,
    /// The service's `--key-prefix`, where numbered publishing keeps each match's history.
    pub key_prefix: String,
    /// The service's process, for CPU and RSS; `None` skips server figures.
    pub server_pid: Option<u32>,
    /// Longest time for every client to connect and subscribe.
    pub connect_timeout: Duration,
    /// Longest wait after the last publish for deliveries to arrive.
    pub drain_timeout: Duration,
    /// How long slow clients spend at the end reading what piled up for them (megabytes of kernel
    /// buffers each), to reach the close frame if the server disconnected them.
    pub slow_drain: Duration,
    /// Receive buffer of slow clients' sockets; small, so they fill up quickly as a phone on a
    /// bad network would.
    pub slow_recv_buffer_bytes: u32,
    /// Names the run's topics; unique per run so repeated runs on one service never collide,
    /// and the same in every process of a [`SharedRun`].
    pub run_id: String,
    /// Set when several load generator processes follow the same topics.
    pub shared: Option<SharedRun>,
    /// Deliveries slower than this are each printed to stderr with when they arrived, to find
    /// out what a tail is made of (a bunch right after some burst, or single late events).
    pub log_slower_than: Option<Duration>,
}

/// A run whose topics several load generator processes follow at once, all with the same plan and
/// `run_id`: exactly one publishes; the others measure each delivery's latency from the event's
/// own `ts_ms`, stamped by the publisher with the wall clock of this same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SharedRun {
    /// Processes taking part, this one included; the publisher waits until all are subscribed.
    pub processes: usize,
    /// Whether this process is the one that publishes.
    pub publishes: bool,
}

/// How long the publisher of a shared run waits for the other processes beyond its own connect
/// timeout (they started at about the same time, each bounded by the same timeout).
const SHARED_READY_GRACE: Duration = Duration::from_secs(30);

/// What the publisher of a shared run leaves in Redis for the others: the figures their loss and
/// throughput are accounted by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PublishedNotice {
    per_topic: Vec<u64>,
    /// Wall-clock start of each phase, in milliseconds since the Unix epoch.
    phase_starts_unix_ms: Vec<u64>,
    unheard: u64,
    max_lag_ms: f64,
}

/// A client's part in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reads everything, and is measured.
    Reader,
    /// Subscribes to the whole run, then stops reading.
    Slow,
}

/// What one client task ends with.
#[derive(Debug)]
struct ClientOutcome {
    role: Role,
    /// Topic indices whose events it must receive.
    topics: Vec<usize>,
    /// When it got its `subscribed` reply, after the run epoch; `None` if it never did.
    subscribed_after: Option<Duration>,
    connect_error: Option<String>,
    tally: ClientTally,
    /// The close code the server sent, or 1006 when the connection just dropped.
    closed: Option<u16>,
}

/// State shared by the publisher and every client.
struct Shared {
    plan: Plan,
    epoch: Instant,
    topic_index: HashMap<String, usize>,
    publish_times: PublishTimes,
    /// One latency histogram per phase.
    latency: Vec<LatencyRecorder>,
    /// Deliveries per phase.
    delivered: Vec<AtomicU64>,
    /// Nanoseconds after `epoch` of the last delivery of each phase's events.
    last_delivery_nanos: Vec<AtomicU64>,
    delivered_total: AtomicU64,
    subscribed: AtomicUsize,
    /// Clients done connecting, successfully or not.
    connect_settled: AtomicUsize,
    connect_progress: Notify,
    stop: CancellationToken,
    /// Every client's local port.
    source_ports: SourcePorts,
    /// See [`RunConfig::log_slower_than`].
    log_slower_than: Option<Duration>,
}

/// The first fields of a server frame; the rest is skipped without being built, because at a
/// million deliveries per second the load generator's own parsing competes with the server.
#[derive(Deserialize)]
struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "match", borrow, default)]
    match_topic: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    /// The publisher's wall-clock stamp, for latency when another process published the event.
    #[serde(default)]
    ts_ms: Option<u64>,
    /// In a `resync`: the match's state, whose `seq` the stream continues from.
    #[serde(borrow, default)]
    snapshot: Option<SnapshotHead<'a>>,
}

/// The fields of a snapshot a `resync` is accounted by.
#[derive(Deserialize)]
struct SnapshotHead<'a> {
    #[serde(rename = "match", borrow)]
    match_topic: Cow<'a, str>,
    seq: u64,
}

/// Runs a whole scenario and reports what it measured.
pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    let server_addr = loopback_addr(&config.ws_url)?;
    check_loopback_redis(&config.redis_url)?;
    let plan = config.plan.clone();
    if plan.topics == 0 || plan.readers + plan.slow == 0 {
        bail!("a run needs at least one topic and one client");
    }
    let load_before = server_stats::load_average_1m();
    let own_before = server_stats::sample(None)?;
    let topics = topic_names(&config.run_id, plan.topics);
    let epoch = Instant::now();
    let shared = Arc::new(Shared {
        epoch,
        topic_index: topics.iter().cloned().zip(0..).collect(),
        publish_times: PublishTimes::new(epoch, plan.topics, plan.max_seq()),
        latency: plan.phases.iter().map(|_| LatencyRecorder::new()).collect(),
        delivered: plan.phases.iter().map(|_| AtomicU64::new(0)).collect(),
        last_delivery_nanos: plan.phases.iter().map(|_| AtomicU64::new(0)).collect(),
        delivered_total: AtomicU64::new(0),
        subscribed: AtomicUsize::new(0),
        connect_settled: AtomicUsize::new(0),
        connect_progress: Notify::new(),
        stop: CancellationToken::new(),
        source_ports: SourcePorts::ephemeral(),
        log_slower_than: config.log_slower_than,
        plan: plan.clone(),
    });

    // Stage 1: connect and subscribe everyone.
    let server_before = sample_server(config.server_pid)?;
    let tcp_before = server_stats::tcp_buffer_bytes();
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let clients = plan.readers + plan.slow;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (role, request, indices) = if client < plan.readers {
            let topic = plan.reader_topic(client);
            (Role::Reader, vec![topics[topic].clone()], vec![topic])
        } else {
            (
                Role::Slow,
                vec![run_prefix(&config.run_id)],
                (0..plan.topics).collect(),
            )
        };
        let task = Client {
            id: client,
            role,
            request,
            topics: indices,
            server_addr,
            url: config.ws_url.clone(),
            recv_buffer_bytes: (role == Role::Slow).then_some(config.slow_recv_buffer_bytes),
            connect_timeout: config.connect_timeout,
            slow_drain: config.slow_drain,
            permits: permits.clone(),
            shared: shared.clone(),
        };
        tasks.push(tokio::spawn(task.run()));
    }
    let connect_deadline = tokio::time::Instant::now() + config.connect_timeout;
    loop {
        let progress = shared.connect_progress.notified();
        if shared.connect_settled.load(Ordering::Acquire) >= clients {
            break;
        }
        if tokio::time::timeout_at(connect_deadline, progress)
            .await
            .is_err()
        {
            break;
        }
    }
    let connect_elapsed = epoch.elapsed();

    // Stage 2: idle runs hold their connections before memory is read.
    if plan.phases.is_empty() {
        tokio::time::sleep(Duration::from_secs(u64::from(plan.hold_secs))).await;
    }
    let server_subscribed = sample_server(config.server_pid)?;
    let tcp_subscribed = server_stats::tcp_buffer_bytes();

    // Between stages 2 and 3, a shared run's processes meet: the publisher waits for every one
    // to be subscribed, the others for the publisher's notice of what it published.
    let mut processes_ready = None;
    if let Some(shared_run) = config.shared {
        let meeting = Meeting::open(&config)
            .await
            .context("meeting the other load generators in Redis")?;
        let ready = meeting.arrive().await?;
        if shared_run.publishes {
            let deadline = Instant::now() + config.connect_timeout + SHARED_READY_GRACE;
            processes_ready = Some(
                meeting
                    .wait_for(shared_run.processes, ready, deadline)
                    .await?,
            );
        }
    }
    let follows = config
        .shared
        .is_some_and(|shared_run| !shared_run.publishes);

    // Stage 3: publish, from a thread of its own so 10,000 busy client tasks cannot delay a
    // publish (or its reply) and the schedule stays the one planned.
    let published = if follows {
        let meeting = Meeting::open(&config).await?;
        let deadline = Instant::now()
            + config.connect_timeout
            + SHARED_READY_GRACE
            + Duration::from_secs(2 * plan.phases.iter().map(|p| u64::from(p.secs)).sum::<u64>())
            + Duration::from_secs(60);
        meeting.published(deadline).await?
    } else {
        let (done, finished) = tokio::sync::oneshot::channel();
        let publisher = Publisher {
            redis_url: config.redis_url.clone(),
            mode: config.publish,
            layout: Layout {
                channel_prefix: config.channel_prefix.clone(),
                key_prefix: config.key_prefix.clone(),
                ..Layout::default()
            },
            topics: topics.clone(),
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("publisher".to_owned())
            .spawn(move || {
                let _ = done.send(publisher.run_on_own_runtime());
            })
            .context("starting the publisher thread")?;
        let published = finished.await.context("the publisher thread panicked")??;
        if config.shared.is_some() {
            Meeting::open(&config)
                .await?
                .announce(&published.notice())
                .await?;
        }
        published
    };
    let Published {
        per_topic: published_per_topic,
        phase_starts,
        unheard: published_unheard,
        max_lag,
        ..
    } = published;

    // Stage 4: drain. Only readers that subscribed are owed events.
    let readers_subscribed = shared.subscribed.load(Ordering::Acquire).min(plan.readers);
    let owed_estimate = if plan.topics > 0 {
        // Readers are spread evenly, so this is exact when every reader subscribed; otherwise
        // the wait simply ends at the drain timeout and the per-client sums below decide.
        published_per_topic.iter().sum::<u64>() * readers_subscribed as u64 / plan.topics as u64
    } else {
        0
    };
    let drain_deadline = Instant::now() + config.drain_timeout;
    while shared.delivered_total.load(Ordering::Acquire) < owed_estimate
        && Instant::now() < drain_deadline
        && !plan.phases.is_empty()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server_end = sample_server(config.server_pid)?;
    let tcp_end = server_stats::tcp_buffer_bytes();
    shared.stop.cancel();

    // Stage 5: add up.
    let mut outcomes = Vec::with_capacity(clients);
    for task in tasks {
        outcomes.push(task.await.context("a client task panicked")?);
    }
    let mut report = Report {
        scenario: config.scenario,
        run_id: config.run_id.clone(),
        plan: plan.clone(),
        publish: config.publish,
        subscribed: 0,
        connect_failures: 0,
        first_connect_error: None,
        connect_all_secs: 0.0,
        published: published_per_topic.iter().sum(),
        published_unheard,
        publish_max_lag_ms: max_lag.as_secs_f64() * 1000.0,
        expected: 0,
        delivered: 0,
        lost: 0,
        repeated: 0,
        resyncs: 0,
        resynced_over: 0,
        readers_closed: 0,
        slow_disconnected: 0,
        slow_closed_otherwise: 0,
        slow_close_codes: Default::default(),
        slow_still_open: 0,
        phases: Vec::new(),
        latency: LatencySummary::of(&merged(&shared.latency)),
        latency_buckets: config
            .shared
            .map(|_| histogram_buckets(&merged(&shared.latency))),
        shared: config.shared,
        processes_ready,
        server: None,
        kernel_tcp_buffer_bytes: [tcp_before, tcp_subscribed, tcp_end],
        loadgen_cpu_secs: server_stats::sample(None)?.cpu_secs - own_before.cpu_secs,
        load_average_1m: (load_before, server_stats::load_average_1m()),
        wall_secs: epoch.elapsed().as_secs_f64(),
    };
    let mut last_subscribed = Duration::ZERO;
    for outcome in &outcomes {
        match outcome.subscribed_after {
            Some(after) => {
                report.subscribed += 1;
                last_subscribed = last_subscribed.max(after);
            }
            None => {
                report.connect_failures += 1;
                if report.first_connect_error.is_none() {
                    report.first_connect_error = outcome.connect_error.clone();
                }
            }
        }
        match outcome.role {
            Role::Reader if outcome.subscribed_after.is_some() => {
                let expected = expected_for(&outcome.topics, &published_per_topic);
                report.expected += expected;
                report.delivered += outcome.tally.received;
                report.lost += expected.saturating_sub(outcome.tally.received);
                report.repeated += outcome.tally.repeated;
                report.resyncs += outcome.tally.resyncs;
                report.resynced_over += outcome.tally.resynced_over;
                report.readers_closed += usize::from(outcome.closed.is_some());
            }
            Role::Reader => {}
            Role::Slow => match outcome.closed {
                Some(code) => {
                    *report.slow_close_codes.entry(code).or_default() += 1;
                    if code == 1013 {
                        report.slow_disconnected += 1;
                    } else {
                        report.slow_closed_otherwise += 1;
                    }
                }
                None if outcome.subscribed_after.is_some() => report.slow_still_open += 1,
                None => {}
            },
        }
    }
    report.connect_all_secs = if report.connect_failures == 0 {
        last_subscribed.as_secs_f64()
    } else {
        connect_elapsed.as_secs_f64()
    };
    for (index, phase) in plan.phases.iter().enumerate() {
        let delivered = shared.delivered[index].load(Ordering::Acquire);
        let last = Duration::from_nanos(shared.last_delivery_nanos[index].load(Ordering::Acquire));
        let window = (epoch + last).saturating_duration_since(phase_starts[index]);
        report.phases.push(PhaseReport {
            phase: *phase,
            published: phase.event_count(),
            delivered,
            deliveries_per_sec: delivered as f64 / window.as_secs_f64().max(1e-9),
            latency: LatencySummary::of(&shared.latency[index].merged()),
        });
    }
    if let (Some(before), Some(subscribed), Some(end)) =
        (server_before, server_subscribed, server_end)
    {
        report.server = Some(ServerReport::new(
            before,
            subscribed,
            end,
            report.subscribed,
        ));
    }
    Ok(report)
}

/// Publishes every phase's events on schedule.
struct Publisher {
    redis_url: String,
    mode: PublishMode,
    layout: Layout,
    topics: Vec<String>,
    shared: Arc<Shared>,
}

/// What the publisher did.
struct Published {
    /// Events published per topic.
    per_topic: Vec<u64>,
    /// When each phase started.
    phase_starts: Vec<Instant>,
    /// The same instants on the wall clock, for the other processes of a shared run.
    phase_starts_unix_ms: Vec<u64>,
    /// Publishes Redis reported no subscriber for.
    unheard: u64,
    /// Worst lateness against the schedule.
    max_lag: Duration,
}

/// Redis answers a `PUBLISH` after it has written the message to every subscriber; on a saturated
/// machine that can take longer than the client's 500 ms default.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

impl Publisher {
    fn run_on_own_runtime(self) -> anyhow::Result<Published> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(self.run())
    }

    async fn run(self) -> anyhow::Result<Published> {
        let settings = feed::ConnectionSettings {
            response_timeout: PUBLISH_TIMEOUT,
            ..feed::ConnectionSettings::default()
        };
        let connection = feed::RedisConnection::open(&self.redis_url, settings)
            .context("parsing the Redis URL")?;
        connection
            .connect()
            .await
            .with_context(|| format!("connecting to Redis at {}", connection.target()))?;
        let mut numbered = feed::Publisher::new(connection.clone(), self.layout.clone());
        let mut plain = connection;
        let plan = &self.shared.plan;
        let mut sequencer = Sequencer::new(plan.topics, plan.first_seq);
        let mut published = Published {
            per_topic: Vec::new(),
            phase_starts: Vec::with_capacity(plan.phases.len()),
            phase_starts_unix_ms: Vec::with_capacity(plan.phases.len()),
            unheard: 0,
            max_lag: Duration::ZERO,
        };
        for phase in &plan.phases {
            let start = tokio::time::Instant::now();
            published.phase_starts.push(start.into_std());
            published.phase_starts_unix_ms.push(feed::now_ms());
            for index in 0..phase.event_count() {
                let due = start + phase.due_after(index);
                tokio::time::sleep_until(due).await;
                let event = sequencer.next_event();
                let topic = &self.topics[event.topic];
                let draft = goal_draft(topic)?;
                let payload = event_json(topic, event.seq)?;
                let now = Instant::now();
                published.max_lag = published
                    .max_lag
                    .max(now.saturating_duration_since(due.into_std()));
                self.shared.publish_times.mark(event.topic, event.seq, now);
                match self.mode {
                    PublishMode::Plain => {
                        let receivers: i64 = redis::cmd("PUBLISH")
                            .arg(self.layout.channel(&draft.match_topic))
                            .arg(payload)
                            .query_async(&mut plain)
                            .await
                            .context("publishing to Redis")?;
                        if receivers == 0 {
                            published.unheard += 1;
                        }
                    }
                    PublishMode::Numbered => {
                        let sent = numbered
                            .publish(&draft)
                            .await
                            .context("publishing through the numbering script")?;
                        // The run's topics are fresh, so Redis numbers them exactly as the
                        // sequencer does; anything else means another publisher on the topic.
                        if sent.seq != event.seq {
                            bail!(
                                "Redis numbered an event of {topic} {} where {} was expected",
                                sent.seq,
                                event.seq
                            );
                        }
                    }
                }
            }
        }
        published.per_topic = sequencer.published_per_topic();
        Ok(published)
    }
}

impl Published {
    fn notice(&self) -> PublishedNotice {
        PublishedNotice {
            per_topic: self.per_topic.clone(),
            phase_starts_unix_ms: self.phase_starts_unix_ms.clone(),
            unheard: self.unheard,
            max_lag_ms: self.max_lag.as_secs_f64() * 1000.0,
        }
    }

    /// What another process published, with its phase starts moved onto this process's clock.
    fn from_notice(notice: PublishedNotice) -> Published {
        let (now, now_ms) = (Instant::now(), feed::now_ms());
        Published {
            per_topic: notice.per_topic,
            phase_starts: notice
                .phase_starts_unix_ms
                .iter()
                .map(|&start| now - Duration::from_millis(now_ms.saturating_sub(start)))
                .collect(),
            phase_starts_unix_ms: notice.phase_starts_unix_ms,
            unheard: notice.unheard,
            max_lag: Duration::from_secs_f64(notice.max_lag_ms.max(0.0) / 1000.0),
        }
    }
}

/// Where the processes of a shared run meet: two keys in the Redis the service uses, named
/// after the run so runs never mix.
struct Meeting {
    connection: feed::RedisConnection,
    /// Counts the processes whose clients are subscribed.
    ready_key: String,
    /// The publisher's [`PublishedNotice`], once it is done.
    published_key: String,
}

/// How often a process waiting at the meeting looks again.
const MEETING_POLL: Duration = Duration::from_millis(50);

/// The meeting's keys outlive any run by far, and then go.
const MEETING_KEY_SECS: u64 = 3600;

impl Meeting {
    async fn open(config: &RunConfig) -> anyhow::Result<Meeting> {
        let connection =
            feed::RedisConnection::open(&config.redis_url, feed::ConnectionSettings::default())
                .context("parsing the Redis URL")?;
        connection
            .connect()
            .await
            .with_context(|| format!("connecting to Redis at {}", connection.target()))?;
        let base = format!("{}loadgen:{}", config.key_prefix, config.run_id);
        Ok(Meeting {
            connection,
            ready_key: format!("{base}:ready"),
            published_key: format!("{base}:published"),
        })
    }

    /// Says this process is subscribed; returns how many are, this one included.
    async fn arrive(&self) -> anyhow::Result<usize> {
        let mut connection = self.connection.clone();
        let (ready,): (usize,) = redis::pipe()
            .atomic()
            .incr(&self.ready_key, 1)
            .expire(&self.ready_key, MEETING_KEY_SECS as i64)
            .ignore()
            .query_async(&mut connection)
            .await
            .context("counting this process as subscribed")?;
        Ok(ready)
    }

    /// Waits until `processes` are subscribed or `deadline` passes; returns how many were.
    async fn wait_for(
        &self,
        processes: usize,
        mut ready: usize,
        deadline: Instant,
    ) -> anyhow::Result<usize> {
        let mut connection = self.connection.clone();
        while ready < processes && Instant::now() < deadline {
            tokio::time::sleep(MEETING_POLL).await;
            let count: Option<usize> = redis::cmd("GET")
                .arg(&self.ready_key)
                .query_async(&mut connection)
                .await
                .context("reading how many processes are subscribed")?;
            ready = count.unwrap_or(0);
        }
        Ok(ready)
    }

    /// Leaves what was published for the other processes.
    async fn announce(&self, notice: &PublishedNotice) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        let () = redis::cmd("SET")
            .arg(&self.published_key)
            .arg(serde_json::to_string(notice)?)
            .arg("EX")
            .arg(MEETING_KEY_SECS)
            .query_async(&mut connection)
            .await
            .context("announcing what was published")?;
        Ok(())
    }

    /// Waits for the publisher's notice.
    async fn published(&self, deadline: Instant) -> anyhow::Result<Published> {
        let mut connection = self.connection.clone();
        loop {
            let notice: Option<String> = redis::cmd("GET")
                .arg(&self.published_key)
                .query_async(&mut connection)
                .await
                .context("reading the publisher's notice")?;
            if let Some(notice) = notice {
                let notice = serde_json::from_str(&notice).context("the publisher's notice")?;
                return Ok(Published::from_notice(notice));
            }
            if Instant::now() >= deadline {
                bail!("the publisher of the shared run announced nothing in time");
            }
            tokio::time::sleep(MEETING_POLL).await;
        }
    }
}

fn merged(recorders: &[LatencyRecorder]) -> hdrhistogram::Histogram<u64> {
    let mut all = LatencyRecorder::new().merged();
    for recorder in recorders {
        // Same bounds everywhere, so adding cannot fail.
        let _ = all.add(recorder.merged());
    }
    all
}

fn sample_server(pid: Option<u32>) -> anyhow::Result<Option<server_stats::ProcSample>> {
    pid.map(|pid| server_stats::sample(Some(pid))).transpose()
}

/// A goal for the home side: always valid for a football match that is not over, and a
/// must-deliver event (never coalesced), so every one of them counts.
fn goal_draft(topic: &str) -> anyhow::Result<EventDraft> {
    Ok(EventDraft {
        match_topic: MatchTopic::parse(topic).with_context(|| format!("topic {topic}"))?,
        ts_ms: feed::now_ms(),
        clock_secs: None,
        kind: EventKind::Goal {
            side: Side::Home,
            player: None,
            own_goal: false,
            penalty: false,
        },
    })
}

/// The plain `PUBLISH` payload of goal `seq` (epoch 0, as plain publishers leave it).
fn event_json(topic: &str, seq: u64) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&goal_draft(topic)?.numbered(0, seq))?)
}

/// The socket address of a `ws://` URL, refused unless it is on loopback.
fn loopback_addr(ws_url: &str) -> anyhow::Result<SocketAddr> {
    let rest = ws_url
        .strip_prefix("ws://")
        .with_context(|| format!("{ws_url}: only ws:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.replacen("localhost", "127.0.0.1", 1);
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{ws_url}: expected ws://127.0.0.1:PORT/ws"))?;
    if !addr.ip().is_loopback() {
        bail!("{ws_url}: the load generator only targets loopback addresses");
    }
    Ok(addr)
}

fn check_loopback_redis(redis_url: &str) -> anyhow::Result<()> {
    let rest = redis_url
        .strip_prefix("redis://")
        .with_context(|| format!("{redis_url}: expected redis://127.0.0.1:PORT/"))?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!("{redis_url}: the load generator only publishes to a loopback Redis");
    }
    Ok(())
}

/// One client's connection, subscription and reading.
struct Client {
    id: usize,
    role: Role,
    request: Vec<String>,
    topics: Vec<usize>,
    server_addr: SocketAddr,
    url: String,
    recv_buffer_bytes: Option<u32>,
    connect_timeout: Duration,
    slow_drain: Duration,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
}

impl Client {
    async fn run(self) -> ClientOutcome {
        let mut outcome = ClientOutcome {
            role: self.role,
            topics: self.topics.clone(),
            subscribed_after: None,
            connect_error: None,
            tally: ClientTally::after(self.shared.plan.published_before()),
            closed: None,
        };
        let connected = tokio::time::timeout(self.connect_timeout, self.connect()).await;
        self.shared.connect_settled.fetch_add(1, Ordering::AcqRel);
        self.shared.connect_progress.notify_one();
        let mut socket = match connected {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                outcome.connect_error = Some(format!("{error:#}"));
                return outcome;
            }
            Err(_) => {
                outcome.connect_error = Some("timed out connecting and subscribing".to_owned());
                return outcome;
            }
        };
        outcome.subscribed_after = Some(self.shared.epoch.elapsed());
        match self.role {
            Role::Reader => self.read(&mut socket, &mut outcome).await,
            Role::Slow => {
                self.shared.stop.cancelled().await;
                drain_slow(&mut socket, &mut outcome, self.slow_drain).await;
            }
        }
        if outcome.closed.is_none() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
        }
        outcome
    }

    /// Connects, reads the welcome, subscribes and waits for `subscribed`.
    async fn connect(&self) -> anyhow::Result<WebSocketStream<TcpStream>> {
        let _permit = self.permits.acquire().await?;
        let stream = self
            .shared
            .source_ports
            .connect(self.server_addr, self.recv_buffer_bytes)
            .await
            .context("connecting (is `ulimit -n` high enough?)")?;
        stream.set_nodelay(true)?;
        let (mut socket, _) = tokio_tungstenite::client_async_with_config(
            self.url.as_str(),
            stream,
            Some(ws_config()),
        )
        .await
        .context("WebSocket handshake")?;
        let subscribe = ClientMessage::Subscribe {
            topics: self.request.clone(),
            resume: Default::default(),
            delay_secs: None,
        };
        socket.send(Message::text(subscribe.to_json())).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let head: FrameHead = serde_json::from_str(text.as_str())?;
                    match head.kind.as_ref() {
                        "subscribed" => break,
                        "error" => bail!("subscribe refused: {}", text.as_str()),
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => bail!("closed while subscribing: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading the subscribe reply"),
                None => bail!("connection ended while subscribing"),
            }
        }
        self.shared.subscribed.fetch_add(1, Ordering::AcqRel);
        Ok(socket)
    }

    /// Reads and accounts every frame until the run stops or the server closes.
    ///
    /// Frames already buffered are read without waiting and counted in `burst`, this reader's
    /// own memory; the shared counters and histograms are updated once per burst, when the
    /// socket has nothing more. At a million frames a second, touching shared cache lines and
    /// a stop signal per frame cost the load generator more CPU than parsing the frames.
    async fn read(&self, socket: &mut WebSocketStream<TcpStream>, outcome: &mut ClientOutcome) {
        let mut burst = Burst::new(self.shared.plan.phases.len());
        loop {
            let frame = match socket.next().now_or_never() {
                Some(frame) => frame,
                None => {
                    burst.publish(self.id, &self.shared);
                    tokio::select! {
                        biased;
                        () = self.shared.stop.cancelled() => return,
                        frame = socket.next() => frame,
                    }
                }
            };
            let received_at = Instant::now();
            match frame {
                Some(Ok(Message::Text(text))) => {
                    self.account(text.as_str(), received_at, outcome, &mut burst);
                }
                Some(Ok(Message::Close(frame))) => {
                    outcome.closed = Some(frame.map_or(1005, |frame| u16::from(frame.code)));
                    burst.publish(self.id, &self.shared);
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    outcome.closed = Some(1006);
                    burst.publish(self.id, &self.shared);
                    return;
                }
            }
        }
    }

    fn account(
        &self,
        text: &str,
        received_at: Instant,
        outcome: &mut ClientOutcome,
        burst: &mut Burst,
    ) {
        let Ok(head) = serde_json::from_str::<FrameHead>(text) else {
            return;
        };
        if head.kind == "resync" {
            if let Some(snapshot) = head.snapshot
                && let Some(&topic) = self.shared.topic_index.get(snapshot.match_topic.as_ref())
            {
                outcome.tally.resync(topic, snapshot.seq);
            }
            return;
        }
        let (Some(topic), Some(seq)) = (head.match_topic, head.seq) else {
            return;
        };
        if head.kind != "event" || seq == 0 {
            return;
        }
        let Some(&topic) = self.shared.topic_index.get(topic.as_ref()) else {
            return;
        };
        if outcome.tally.observe(topic, seq) == Observed::Repeated {
            return;
        }
        let shared = &self.shared;
        let Some(phase) = shared.plan.phase_of_event(topic, seq) else {
            return;
        };
        // Marked by this process's publisher, or else (another process of a shared run published
        // it) measured from the event's wall-clock stamp.
        let latency = shared
            .publish_times
            .latency(topic, seq, received_at)
            .or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some(latency_since_stamp(head.ts_ms?, now))
            });
        let nanos = received_at
            .saturating_duration_since(shared.epoch)
            .as_nanos() as u64;
        if let (Some(threshold), Some(latency)) = (shared.log_slower_than, latency)
            && latency > threshold
        {
            eprintln!(
                "slow delivery: {} ms into the run, {} us, topic {topic} seq {seq}",
                nanos / 1_000_000,
                latency.as_micros()
            );
        }
        burst.delivered(phase, nanos, latency);
    }
}

/// Deliveries one reader counted since it last added them to the shared totals.
struct Burst {
    /// Per phase: deliveries, and the instant of the last one (nanoseconds since the epoch).
    phases: Vec<(u64, u64)>,
    /// Per phase: latencies to record.
    latencies: Vec<Vec<Duration>>,
}

impl Burst {
    fn new(phases: usize) -> Burst {
        Burst {
            phases: vec![(0, 0); phases],
            latencies: vec![Vec::new(); phases],
        }
    }

    fn delivered(&mut self, phase: usize, nanos: u64, latency: Option<Duration>) {
        let (count, last) = &mut self.phases[phase];
        *count += 1;
        *last = (*last).max(nanos);
        if let Some(latency) = latency {
            self.latencies[phase].push(latency);
        }
    }

    /// Adds the burst to the shared totals and starts a new one.
    fn publish(&mut self, client: usize, shared: &Shared) {
        let mut total = 0;
        for (phase, (count, last)) in self.phases.iter_mut().enumerate() {
            if *count == 0 {
                continue;
            }
            let latencies = &mut self.latencies[phase];
            shared.latency[phase].record_all(client, latencies.drain(..));
            shared.delivered[phase].fetch_add(*count, Ordering::Relaxed);
            shared.last_delivery_nanos[phase].fetch_max(*last, Ordering::Relaxed);
            total += *count;
            (*count, *last) = (0, 0);
        }
        if total > 0 {
            shared.delivered_total.fetch_add(total, Ordering::Release);
        }
    }
}

/// Small buffers: tungstenite's default 128 KiB read buffer per connection made 10,000 clients
/// cost the load generator 1.3 GB of RSS (S2), and cache misses with it. Server frames here are a
/// few hundred bytes.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Reads what piled up for a slow client, briefly, to learn whether the server closed it.
async fn drain_slow(
    socket: &mut WebSocketStream<TcpStream>,
    outcome: &mut ClientOutcome,
    slow_drain: Duration,
) {
    let deadline = tokio::time::Instant::now() + slow_drain;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Close(frame)))) => {
                outcome.closed = Some(frame.map_or(1005, |frame| u16::from(frame.code)));
                return;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => {
                outcome.closed = Some(1006);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert_eq!(
            loopback_addr("ws://127.0.0.1:8080/ws").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert!(loopback_addr("ws://localhost:8080/ws").is_ok());
        assert!(loopback_addr("ws://[::1]:8080/ws").is_ok());
        assert!(loopback_addr("ws://10.0.0.5:8080/ws").is_err());
        assert!(loopback_addr("wss://127.0.0.1:8080/ws").is_err());
        assert!(check_loopback_redis("redis://127.0.0.1:6390/").is_ok());
        assert!(check_loopback_redis("redis://localhost:6390").is_ok());
        assert!(check_loopback_redis("redis://cache.example.com:6379/").is_err());
    }

    #[test]
    fn a_resync_frame_names_its_match_and_seq() {
        let draft = goal_draft("football/loadgen-x/m1").expect("valid topic");
        let mut snapshot = scoreline_protocol::MatchSnapshot::new(draft.match_topic.clone());
        snapshot.seq = 42;
        let frame = scoreline_protocol::ServerMessage::Resync {
            reason: scoreline_protocol::ResyncReason::EventsLost,
            snapshot,
        }
        .to_json();
        let head: FrameHead = serde_json::from_str(&frame).expect("head");
        assert_eq!(head.kind, "resync");
        let snapshot = head.snapshot.expect("a snapshot");
        assert_eq!(
            (snapshot.match_topic.as_ref(), snapshot.seq),
            ("football/loadgen-x/m1", 42)
        );
    }

    #[test]
    fn published_events_are_goals_the_service_accepts() {
        let json = event_json("football/loadgen-x/m3", 7).expect("valid topic");
        let event: scoreline_protocol::ScoreEvent =
            serde_json::from_str(&json).expect("round trip");
        assert_eq!(
            (event.seq, event.match_topic.as_str()),
            (7, "football/loadgen-x/m3")
        );
        // What the service sends for it: the same fields plus `"type":"event"`.
        let frame = scoreline_protocol::ServerMessage::Event(event).to_json();
        let head: FrameHead = serde_json::from_str(&frame).expect("head");
        assert_eq!(head.kind, "event");
        assert_eq!(
            (head.match_topic.as_deref(), head.seq),
            (Some("football/loadgen-x/m3"), Some(7))
        );
    }
}
