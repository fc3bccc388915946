//! The broker: where events come from and where HTTP-published events go.
//!
//! - **Redis** (production): one pattern subscription `PSUBSCRIBE <prefix>*` for all topics,
//!   whatever the number of clients; snapshots are kept in Redis hashes so a restarted service, or
//!   a second instance, serves the same state at once. When Redis goes away, clients stay
//!   connected, `/readyz` turns red, and the subscriber reconnects with backoff and re-subscribes.
//! - **Memory**: an in-process loop-back for demos on a machine with nothing installed. Nothing is
//!   shared or kept across restarts.
//!
//! This is a thin I/O shell: parsing is the protocol's, decisions are the hub's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use scoreline_protocol::{MatchSnapshot, ScoreEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scoreline_feed::{
    ConnectionSettings, FeedError, Layout, Numbered, Position, RedisConnection, Restored,
    read_heads, read_history,
};
use scoreline_protocol::{ApplyError, EventDraft};

use crate::hub::{
    BackfillError, BackfillRequest, Command, Head, HubGone, HubHandle, InboundEvent, StoredSnapshot,
};
use crate::telemetry;

/// How Redis is used.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port/db`, or `redis+sentinel://host:port,…/master-name[/db]` for a master
    /// kept by Redis Sentinel (`scoreline_feed::connection`).
    pub url: String,
    /// Channels are `<channel_prefix><topic>`, e.g. `scores:football/pl/ars-che`.
    pub channel_prefix: String,
    /// Keys are `<key_prefix>match:<topic>`.
    pub key_prefix: String,
    /// How long a finished match's snapshot stays in Redis, in seconds.
    pub finished_ttl_secs: u64,
    /// Events kept in each match's history stream.
    pub history_len: usize,
}

impl RedisSettings {
    /// The key and channel layout shared with feeds (`scoreline-feed`).
    pub fn layout(&self) -> Layout {
        Layout {
            channel_prefix: self.channel_prefix.clone(),
            key_prefix: self.key_prefix.clone(),
            history_len: self.history_len,
        }
    }
}

/// An event could not be numbered and published.
#[derive(Debug, thiserror::Error)]
pub enum PublishDraftError {
    /// The event does not apply to its match as it stands (the reducer's reason): nothing was
    /// numbered.
    #[error("the event does not apply to its match")]
    Refused(#[source] ApplyError),
    /// The broker could not take it.
    #[error("the broker is unavailable")]
    Unavailable(#[from] BrokerError),
}

/// The broker could not take an event.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The hub is gone (the service is shutting down).
    #[error("the hub is not running")]
    Hub(#[from] HubGone),
    /// Redis did not take the event.
    #[error("Redis did not take the event")]
    Feed(#[from] FeedError),
    /// The match store is full of matches in play.
    #[error("the match store is full")]
    StoreFull,
}

/// Where events are published and whether that path works.
#[derive(Clone)]
pub enum Broker {
    /// In-process: publishing hands the event straight to the hub.
    Memory {
        /// The hub.
        hub: HubHandle,
    },
    /// Redis pub/sub.
    Redis(RedisBroker),
}

impl Broker {
    /// Publishes an event to every instance subscribed to the broker (this one included).
    pub async fn publish(&self, event: &ScoreEvent) -> Result<(), BrokerError> {
        match self {
            Broker::Memory { hub } => {
                let inbound = InboundEvent {
                    event: event.clone(),
                    received_at: Instant::now(),
                };
                Ok(hub.send(Command::Event(inbound)).await?)
            }
            Broker::Redis(redis) => redis.publish(event).await,
        }
    }

    /// Numbers an event in its match's history and publishes it: atomically in Redis (the feed
    /// crate's script), or in the hub for the in-process broker. Returns the numbered event.
    ///
    /// The hub checks first that the event applies to its match, so a refused event uses up no
    /// seq. Through Redis, the service publishes like any feed that remembers: it passes the
    /// position it holds, and when Redis has forgotten the match (a restart without
    /// persistence, a failover to a replica that missed writes) it puts the numbering and the
    /// events it holds back before numbering this one.
    pub async fn publish_draft(
        &self,
        draft: EventDraft,
        new_history: bool,
    ) -> Result<ScoreEvent, PublishDraftError> {
        match self {
            Broker::Memory { hub } => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let command = Command::PublishDraft {
                    draft,
                    new_history,
                    reply,
                };
                hub.send(command).await.map_err(BrokerError::from)?;
                match answer.await.map_err(|_| BrokerError::Hub(HubGone))? {
                    Ok(event) => Ok(event),
                    Err(crate::matches::Rejected::StoreFull(_)) => {
                        Err(BrokerError::StoreFull.into())
                    }
                    Err(rejected) => Err(PublishDraftError::Refused(rejected.into_cause())),
                }
            }
            Broker::Redis(redis) => redis.publish_draft(draft, new_history).await,
        }
    }

    /// Checks with the hub that an event applies to its match before anything is published.
    /// Answers the position the hub holds for the match.
    pub async fn check(
        &self,
        event: &ScoreEvent,
        new_history: bool,
    ) -> Result<Option<Position>, PublishDraftError> {
        let hub = match self {
            Broker::Memory { hub } => hub,
            Broker::Redis(redis) => &redis.hub,
        };
        hub.check(event.clone(), new_history)
            .await
            .map_err(BrokerError::from)?
            .map_err(PublishDraftError::Refused)
    }

    /// Whether events flow: always for memory; for Redis, while subscribed and answering.
    pub fn is_ready(&self) -> bool {
        match self {
            Broker::Memory { .. } => true,
            Broker::Redis(redis) => redis.ready.load(Ordering::Relaxed),
        }
    }

    /// `memory` or `redis`, for logs and `/readyz`.
    pub fn name(&self) -> &'static str {
        match self {
            Broker::Memory { .. } => "memory",
            Broker::Redis(_) => "redis",
        }
    }
}

/// The Redis side: a lazily (re)connecting command connection for publishing and snapshots (on the
/// current master, under Sentinel), and a subscriber task that feeds the hub.
#[derive(Clone)]
pub struct RedisBroker {
    settings: Arc<RedisSettings>,
    commands: RedisConnection,
    ready: Arc<AtomicBool>,
    /// The hub, which checks events before they are published and holds what the service knows
    /// of each match's history.
    hub: HubHandle,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("redis", &self.commands.target().to_string())
            .finish()
    }
}

/// Redis took longer than this to answer a command: treat it as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber checks its connection is alive (a killed Redis may not close it).
const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(2);
/// Most events read back to fill one gap.
const MAX_BACKFILL: usize = 10_000;
/// Most match positions read after (re)subscribing; matches beyond catch up at their next event.
const MAX_HEADS: usize = 100_000;
/// How often the subscriber sends itself a canary through Redis pub/sub.
const CANARY_INTERVAL: Duration = Duration::from_secs(1);
/// A canary not back within this long means the subscription is not delivering.
const CANARY_PATIENCE: Duration = Duration::from_secs(5);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl RedisBroker {
    /// Prepares the broker without connecting: a service may start while Redis is down.
    pub fn new(settings: RedisSettings, hub: HubHandle) -> anyhow::Result<RedisBroker> {
        // Connecting includes asking the sentinels for the master under Sentinel, hence the
        // same allowance as a command rather than a bare TCP connect's.
        let timeouts = ConnectionSettings {
            connect_timeout: COMMAND_TIMEOUT,
            response_timeout: COMMAND_TIMEOUT,
        };
        let commands = RedisConnection::open(&settings.url, timeouts)?;
        Ok(RedisBroker {
            settings: Arc::new(settings),
            commands,
            ready: Arc::default(),
            hub,
        })
    }

    /// The command connection, for others that talk to the same Redis (it follows failovers).
    pub fn connection(&self) -> RedisConnection {
        self.commands.clone()
    }

    /// See [`Broker::publish_draft`].
    async fn publish_draft(
        &self,
        draft: EventDraft,
        new_history: bool,
    ) -> Result<ScoreEvent, PublishDraftError> {
        let candidate = draft.clone().numbered(0, 0);
        let expect = self
            .hub
            .check(candidate, new_history)
            .await
            .map_err(BrokerError::from)?
            .map_err(PublishDraftError::Refused)?;
        let layout = self.settings.layout();
        let mut connection = self.commands.clone();
        let topic = draft.match_topic.clone();
        // Twice at most: once as usual, once more after putting a forgotten match back.
        for _ in 0..2 {
            let numbered =
                scoreline_feed::number(&mut connection, &layout, &draft, new_history, expect)
                    .await
                    .map_err(BrokerError::from)?;
            let redis_had = match numbered {
                Numbered::Published(event) => return Ok(event),
                Numbered::Forgotten { redis } => redis,
            };
            let Some((position, events)) = self
                .hub
                .ledger(topic.clone())
                .await
                .map_err(BrokerError::from)?
            else {
                break;
            };
            let restored =
                scoreline_feed::restore(&mut connection, &layout, &topic, position, &events)
                    .await
                    .map_err(BrokerError::from)?;
            tracing::warn!(%topic, ?redis_had, epoch = position.epoch, seq = position.seq, ?restored, "Redis had forgotten the match; put its numbering and history back");
            if let Restored::Restored { .. } = restored {
                metrics::counter!(telemetry::HISTORIES_RESTORED).increment(1);
            }
            if let Restored::Newer { .. } = restored {
                // Someone started the match over meanwhile: go on in that newer history.
                let numbered =
                    scoreline_feed::number(&mut connection, &layout, &draft, new_history, None)
                        .await
                        .map_err(BrokerError::from)?;
                if let Numbered::Published(event) = numbered {
                    return Ok(event);
                }
                break;
            }
        }
        Err(BrokerError::Feed(FeedError::KeepsForgetting(topic)).into())
    }

    async fn publish(&self, event: &ScoreEvent) -> Result<(), BrokerError> {
        let channel = format!("{}{}", self.settings.channel_prefix, event.match_topic);
        let mut connection = self.commands.clone();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(event.to_json())
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(|error| BrokerError::Feed(FeedError::Redis(error)))
    }

    /// The subscriber (feeding `hub`), the snapshot writer (draining `snapshots`) and the
    /// backfill reader (answering `backfills`), each named for the supervisor in `startup`, for
    /// the caller to spawn.
    pub fn tasks(
        &self,
        hub: HubHandle,
        snapshots: mpsc::Receiver<StoredSnapshot>,
        backfills: mpsc::Receiver<BackfillRequest>,
        shutdown: CancellationToken,
    ) -> Vec<(&'static str, BoxFuture<'static, ()>)> {
        vec![
            (
                "Redis subscriber",
                self.clone()
                    .subscribe_forever(hub.clone(), shutdown.clone())
                    .boxed(),
            ),
            (
                "snapshot writer",
                self.clone()
                    .write_snapshots(snapshots, shutdown.clone())
                    .boxed(),
            ),
            (
                "backfill reader",
                self.clone()
                    .answer_backfills(backfills, hub, shutdown)
                    .boxed(),
            ),
        ]
    }

    /// Reads the history the hub asks for and hands it back.
    async fn answer_backfills(
        self,
        mut requests: mpsc::Receiver<BackfillRequest>,
        hub: HubHandle,
        shutdown: CancellationToken,
    ) {
        let layout = self.settings.layout();
        loop {
            let request = tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => request,
                    None => return,
                },
                () = shutdown.cancelled() => return,
            };
            let mut connection = self.commands.clone();
            let read = read_history(
                &mut connection,
                &layout,
                &request.topic,
                request.after_seq,
                MAX_BACKFILL,
            );
            let events = match tokio::time::timeout(COMMAND_TIMEOUT, read).await {
                Ok(Ok(events)) => Ok(events),
                Ok(Err(error)) => Err(BackfillError::Feed(error)),
                Err(_) => Err(BackfillError::Timeout(COMMAND_TIMEOUT)),
            };
            if hub
                .send(Command::Backfill { request, events })
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Loads every stored snapshot (at most `limit`), e.g. at start.
    pub async fn load_snapshots(&self, limit: usize) -> Result<Vec<MatchSnapshot>, FeedError> {
        let mut connection = self.commands.clone();
        let pattern = format!("{}match:*", self.settings.key_prefix);
        let keys = scoreline_feed::scan_keys(&mut connection, &pattern, limit).await?;
        let mut snapshots = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(200) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("HGET").arg(key).arg("snapshot");
            }
            let texts: Vec<Option<String>> = pipe.query_async(&mut connection).await?;
            for (key, text) in chunk.iter().zip(texts) {
                match text.map(|text| serde_json::from_str::<MatchSnapshot>(&text)) {
                    Some(Ok(snapshot)) => snapshots.push(snapshot),
                    Some(Err(error)) => {
                        tracing::warn!(key, %error, "ignoring an unreadable stored snapshot");
                        telemetry::bad_input("stored_snapshot");
                    }
                    None => {}
                }
            }
        }
        Ok(snapshots)
    }

    /// Keeps one pattern subscription alive for the life of the service.
    async fn subscribe_forever(self, hub: HubHandle, shutdown: CancellationToken) {
        let pattern = format!("{}*", self.settings.channel_prefix);
        let mut delay = BACKOFF_MIN;
        let mut connected_before = false;
        let mut down_since: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            match self.open_subscription(&pattern).await {
                Ok((sink, stream)) => {
                    self.set_ready(true);
                    delay = BACKOFF_MIN;
                    if connected_before {
                        metrics::counter!(telemetry::REDIS_RECONNECTS).increment(1);
                        let down_for = down_since.map(|since| since.elapsed());
                        tracing::info!(?down_for, %pattern, "Redis is back; re-subscribed");
                    } else {
                        tracing::info!(%pattern, redis = %self.commands.target(), "subscribed to Redis");
                    }
                    connected_before = true;
                    self.restore_into(&hub).await;
                    // Fill whatever the matches missed while this instance was not listening,
                    // and find what Redis forgot meanwhile.
                    let heads = self.read_heads().await;
                    if hub.send(Command::Resubscribed { heads }).await.is_err() {
                        break;
                    }
                    self.pump(sink, stream, &hub, &shutdown).await;
                    self.set_ready(false);
                    if shutdown.is_cancelled() {
                        break;
                    }
                    down_since = Some(Instant::now());
                    tracing::warn!("lost the Redis subscription; reconnecting with backoff");
                }
                Err(error) => {
                    self.set_ready(false);
                    down_since.get_or_insert_with(Instant::now);
                    if delay == BACKOFF_MIN {
                        tracing::warn!(%error, redis = %self.commands.target(), "Redis unreachable; retrying with backoff");
                    } else {
                        tracing::debug!(%error, "Redis still unreachable");
                    }
                }
            }
            let jittered = delay.mul_f64(0.5 + rand::random::<f64>());
            tokio::select! {
                () = tokio::time::sleep(jittered) => {}
                () = shutdown.cancelled() => break,
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    async fn open_subscription(
        &self,
        pattern: &str,
    ) -> anyhow::Result<(redis::aio::PubSubSink, redis::aio::PubSubStream)> {
        let pubsub = tokio::time::timeout(COMMAND_TIMEOUT, self.commands.open_pubsub()).await??;
        let (mut sink, stream) = pubsub.split();
        tokio::time::timeout(COMMAND_TIMEOUT, sink.psubscribe(pattern)).await??;
        Ok((sink, stream))
    }

    /// Where every match's numbering stands in Redis; `None` (logged) when it cannot be read.
    async fn read_heads(&self) -> Option<Vec<Head>> {
        let mut connection = self.commands.clone();
        let layout = self.settings.layout();
        let read = read_heads(&mut connection, &layout, MAX_HEADS);
        match tokio::time::timeout(COMMAND_TIMEOUT * 5, read).await {
            Ok(Ok(heads)) => Some(
                heads
                    .into_iter()
                    .map(|(topic, position)| Head { topic, position })
                    .collect(),
            ),
            Ok(Err(error)) => {
                tracing::warn!(error = %telemetry::ErrorChain(&error), "could not read where the match histories stand");
                None
            }
            Err(_) => {
                tracing::warn!("reading where the match histories stand took too long");
                None
            }
        }
    }

    /// Loads stored snapshots into the hub (those newer than what it has win).
    async fn restore_into(&self, hub: &HubHandle) {
        match self.load_snapshots(usize::MAX).await {
            Ok(snapshots) if !snapshots.is_empty() => {
                tracing::info!(count = snapshots.len(), "loaded match snapshots from Redis");
                let _ = hub.send(Command::Restore(snapshots)).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %telemetry::ErrorChain(&error), "could not load snapshots from Redis");
            }
        }
    }

    /// Moves messages from the subscription to the hub until the connection is lost.
    async fn pump(
        &self,
        mut sink: redis::aio::PubSubSink,
        mut stream: redis::aio::PubSubStream,
        hub: &HubHandle,
        shutdown: &CancellationToken,
    ) {
        let mut ping = tokio::time::interval(SUBSCRIBER_PING_INTERVAL);
        ping.tick().await;
        let mut canary = Canary::new(&self.settings.channel_prefix);
        let mut canary_tick = tokio::time::interval(CANARY_INTERVAL);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return };
                    let payload = message.get_payload_bytes();
                    let channel = message.get_channel_name();
                    canary.delivered();
                    if channel == canary.channel {
                        canary.returned(payload);
                        continue;
                    }
                    if canary.is_anothers(channel) {
                        // Another instance on the same Redis checking its own subscription:
                        // not an event, and nothing wrong with it.
                        continue;
                    }
                    match parse_message(&self.settings.channel_prefix, channel, payload) {
                        Ok(event) => {
                            let inbound = InboundEvent { event, received_at: Instant::now() };
                            if hub.offer_event(inbound).is_err() {
                                return;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(channel, %error, "dropping a malformed event from Redis");
                            telemetry::bad_input(error.kind());
                        }
                    }
                }
                _ = ping.tick() => {
                    // In subscribed mode Redis answers PING with an array, so take any value.
                    let answered =
                        tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        return;
                    }
                }
                _ = canary_tick.tick() => {
                    if canary.overdue() {
                        // Pub/sub stopped delivering although the connection answers: the failure
                        // health checks miss. Subscribe again from scratch.
                        tracing::warn!("canary did not come back through Redis; re-subscribing");
                        metrics::counter!(telemetry::CANARY_FAILURES).increment(1);
                        return;
                    }
                    let mut connection = self.commands.clone();
                    let mut command = redis::cmd("PUBLISH");
                    command.arg(&canary.channel).arg(canary.send().to_string());
                    let sent = command.query_async::<i64>(&mut connection);
                    let _ = tokio::time::timeout(COMMAND_TIMEOUT, sent).await;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        metrics::gauge!(telemetry::BROKER_UP).set(if ready { 1.0 } else { 0.0 });
    }

    /// Writes changed snapshots, refusing (in Redis, atomically) to overwrite a newer one that
    /// another instance wrote.
    async fn write_snapshots(
        self,
        mut snapshots: mpsc::Receiver<StoredSnapshot>,
        shutdown: CancellationToken,
    ) {
        let script = redis::Script::new(STORE_SNAPSHOT_LUA);
        loop {
            let snapshot = tokio::select! {
                snapshot = snapshots.recv() => match snapshot {
                    Some(snapshot) => snapshot,
                    None => return,
                },
                () = shutdown.cancelled() => {
                    // Give the hub's final flush a moment to arrive, then write what is queued.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match snapshots.try_recv() {
                        Ok(snapshot) => snapshot,
                        Err(_) => return,
                    }
                }
            };
            let key = format!("{}match:{}", self.settings.key_prefix, snapshot.match_topic);
            let ttl_secs = if snapshot.over {
                self.settings.finished_ttl_secs
            } else {
                0
            };
            let mut connection = self.commands.clone();
            let written: redis::RedisResult<i64> = script
                .key(key)
                .arg(snapshot.epoch)
                .arg(snapshot.seq)
                .arg(snapshot.json.get())
                .arg(ttl_secs)
                .invoke_async(&mut connection)
                .await;
            if let Err(error) = written {
                tracing::debug!(%error, topic = %snapshot.match_topic, "snapshot not stored");
            }
        }
    }
}

/// A message this instance sends itself through Redis pub/sub, proving the subscription delivers.
struct Canary {
    /// `<prefix>$canary/<random id>`: under the subscribed pattern, never a valid topic.
    channel: String,
    /// Length of `<prefix>$canary/`, which every instance's canary channel starts with.
    family_len: usize,
    /// When the oldest unanswered canary was sent.
    waiting_since: Option<Instant>,
    sent: u64,
    /// When the subscription last delivered anything. Under load the canary can queue behind
    /// thousands of events; a subscription that delivers is alive, whatever the canary's delay.
    last_delivery: Instant,
}

impl Canary {
    fn new(prefix: &str) -> Canary {
        let family_len = format!("{prefix}$canary/").len();
        let channel = format!("{prefix}$canary/{:016x}", rand::random::<u64>());
        Canary {
            channel,
            family_len,
            waiting_since: None,
            sent: 0,
            last_delivery: Instant::now(),
        }
    }

    /// Numbers the next canary.
    fn send(&mut self) -> u64 {
        self.sent += 1;
        self.waiting_since.get_or_insert_with(Instant::now);
        self.sent
    }

    /// A canary came back: everything sent up to it has arrived.
    fn returned(&mut self, payload: &[u8]) {
        let number = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| text.parse::<u64>().ok());
        if number == Some(self.sent)
            && let Some(since) = self.waiting_since.take()
        {
            let seconds = since.elapsed().as_secs_f64();
            metrics::gauge!(telemetry::CANARY_ROUND_TRIP_SECONDS).set(seconds);
        }
    }

    /// Whether `channel` is the canary of another instance subscribed to the same Redis (every
    /// instance sees every instance's canaries under the pattern it subscribes to).
    fn is_anothers(&self, channel: &str) -> bool {
        channel != self.channel && channel.starts_with(&self.channel[..self.family_len])
    }

    /// The subscription delivered a message (any message).
    fn delivered(&mut self) {
        self.last_delivery = Instant::now();
    }

    /// A canary is outstanding and the subscription has delivered nothing for too long.
    fn overdue(&self) -> bool {
        self.waiting_since
            .is_some_and(|since| since.elapsed() > CANARY_PATIENCE)
            && self.last_delivery.elapsed() > CANARY_PATIENCE
    }
}

/// Stores a snapshot unless the stored one is at the same or a later (epoch, seq). Two instances
/// write the same matches; this keeps the newest whichever writes last.
const STORE_SNAPSHOT_LUA: &str = r"
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
local new_epoch = tonumber(ARGV[1])
local new_seq = tonumber(ARGV[2])
if epoch > new_epoch or (epoch == new_epoch and seq >= new_seq) then
  return 0
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[2], 'snapshot', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
";

/// Why a broker message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum BadMessage {
    /// The payload is not a valid event.
    #[error("not a valid score event: {0}")]
    BadEvent(#[from] serde_json::Error),
    /// The channel is not `<prefix><topic>` for the event's own topic.
    #[error("published on {channel:?} but the event is for {topic:?}")]
    ChannelMismatch {
        /// The channel it came on.
        channel: String,
        /// The topic the event names.
        topic: String,
    },
}

impl BadMessage {
    /// A label for the bad-input counter.
    pub fn kind(&self) -> &'static str {
        match self {
            BadMessage::BadEvent(_) => "broker_bad_event",
            BadMessage::ChannelMismatch { .. } => "broker_channel_mismatch",
        }
    }
}

/// Parses a message from channel `channel`: it must be a valid event published on its own topic's
/// channel, so a subscriber to a topic never receives another topic's events.
pub fn parse_message(
    prefix: &str,
    channel: &str,
    payload: &[u8],
) -> Result<ScoreEvent, BadMessage> {
    let event = ScoreEvent::from_json(payload)?;
    if channel.strip_prefix(prefix) != Some(event.match_topic.as_str()) {
        return Err(BadMessage::ChannelMismatch {
            channel: channel.to_owned(),
            topic: event.match_topic.to_string(),
        });
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_message_checks_the_channel() {
        let payload = br#"{"match":"football/pl/a-b","seq":1,"ts_ms":1,"kind":"match_started"}"#;
        assert!(parse_message("scores:", "scores:football/pl/a-b", payload).is_ok());
        assert!(matches!(
            parse_message("scores:", "scores:football/pl/x-y", payload),
            Err(BadMessage::ChannelMismatch { .. })
        ));
        assert!(matches!(
            parse_message("scores:", "scores:football/pl/a-b", b"{not json"),
            Err(BadMessage::BadEvent(_))
        ));
    }

    #[test]
    fn another_instances_canary_is_recognised_and_an_event_is_not() {
        let ours = Canary::new("scores:");
        let theirs = Canary::new("scores:");
        assert!(ours.is_anothers(&theirs.channel));
        assert!(!ours.is_anothers(&ours.channel));
        assert!(!ours.is_anothers("scores:football/pl/a-b"));
        assert!(!ours.is_anothers("other:$canary/0123456789abcdef"));
    }
}
