//! # scoreline-feed
//!
//! How events enter Scoreline with a guarantee: one atomic step per event that numbers it in its
//! match's history, appends it to that history, and publishes it.
//!
//! Redis pub/sub alone is fire-and-forget: whoever is not listening at that instant misses the
//! event. So [`Publisher::publish`] runs [`PUBLISH_SCRIPT`], which, inside Redis and atomically:
//!
//! 1. assigns the match's next `seq` (and its `epoch`, set when the history starts or is reset);
//! 2. appends the numbered event to the match's history, a Redis Stream bounded in length whose
//!    entry ids are `0-<seq>`, so "everything after seq N" is one `XRANGE`;
//! 3. publishes it on the match's channel, exactly as a plain feed would.
//!
//! Every reader can then detect a gap by `seq` and fill it from the history
//! ([`read_history`]). Feeds in other languages call the same script (`docs/protocol.md`,
//! "Numbered publishing"); plain `PUBLISH` keeps working, best-effort.

use redis::AsyncCommands;
use scoreline_protocol::{EventDraft, MatchTopic, ScoreEvent};

/// Where a deployment keeps things in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Channels are `<channel_prefix><topic>`.
    pub channel_prefix: String,
    /// Keys are `<key_prefix>{<topic>}:seq` and `<key_prefix>{<topic>}:history`.
    pub key_prefix: String,
    /// Events kept per match history; older ones are trimmed.
    pub history_len: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            channel_prefix: "scores:".to_owned(),
            key_prefix: "scoreline:".to_owned(),
            history_len: 10_000,
        }
    }
}

impl Layout {
    /// The pub/sub channel of a match.
    pub fn channel(&self, topic: &MatchTopic) -> String {
        format!("{}{topic}", self.channel_prefix)
    }

    /// The hash holding a match's `epoch` and last `seq`. The `{topic}` hash tag keeps both keys
    /// of a match in one Redis Cluster slot, as a script touching both requires.
    pub fn sequence_key(&self, topic: &MatchTopic) -> String {
        format!("{}{{{topic}}}:seq", self.key_prefix)
    }

    /// The stream holding a match's recent numbered events.
    pub fn history_key(&self, topic: &MatchTopic) -> String {
        format!("{}{{{topic}}}:history", self.key_prefix)
    }
}

/// The numbering publish, run atomically inside Redis.
///
/// `KEYS[1]` sequence hash, `KEYS[2]` history stream; `ARGV[1]` channel, `ARGV[2]` the event as a
/// JSON object **without** `epoch` and `seq`, `ARGV[3]` history length, `ARGV[4]` `"1"` to start
/// a new epoch, `ARGV[5]` a candidate epoch (milliseconds now). Returns `{epoch, seq}`.
///
/// A new epoch is the candidate or one more than the old epoch, whichever is larger, so epochs
/// only grow even if clocks do not.
pub const PUBLISH_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if ARGV[4] == '1' or not epoch then
  local old = tonumber(epoch or '0')
  epoch = tostring(math.max(tonumber(ARGV[5]), old + 1))
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local event = '{"epoch":' .. epoch .. ',"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. seq, 'event', event)
redis.call('PUBLISH', ARGV[1], event)
return {tonumber(epoch), seq}
"#;

/// Why an event could not be published or history read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored history entry is not a valid event.
    #[error("history entry {id} of {topic} is not a valid event: {reason}")]
    BadHistory {
        /// The match.
        topic: MatchTopic,
        /// The stream entry id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Publishes events through [`PUBLISH_SCRIPT`].
#[derive(Clone)]
pub struct Publisher<C> {
    connection: C,
    layout: Layout,
    script: redis::Script,
}

impl<C: redis::aio::ConnectionLike + Send> Publisher<C> {
    /// A publisher over any async Redis connection (a `MultiplexedConnection` or a
    /// `ConnectionManager`, which reconnects by itself).
    pub fn new(connection: C, layout: Layout) -> Publisher<C> {
        Publisher {
            connection,
            layout,
            script: redis::Script::new(PUBLISH_SCRIPT),
        }
    }

    /// Numbers, records and publishes one event; returns it as subscribers receive it.
    pub async fn publish(&mut self, draft: &EventDraft) -> Result<ScoreEvent, FeedError> {
        self.run(draft, false).await
    }

    /// Starts a new history (a new epoch, `seq` from 1) for the event's match with this event:
    /// for a replay that starts a match again, or a feed that lost its own count.
    pub async fn publish_new_history(
        &mut self,
        draft: &EventDraft,
    ) -> Result<ScoreEvent, FeedError> {
        self.run(draft, true).await
    }

    async fn run(
        &mut self,
        draft: &EventDraft,
        new_history: bool,
    ) -> Result<ScoreEvent, FeedError> {
        let topic = &draft.match_topic;
        let (epoch, seq): (u64, u64) = self
            .script
            .key(self.layout.sequence_key(topic))
            .key(self.layout.history_key(topic))
            .arg(self.layout.channel(topic))
            .arg(draft.to_json())
            .arg(self.layout.history_len)
            .arg(if new_history { "1" } else { "0" })
            .arg(now_ms())
            .invoke_async(&mut self.connection)
            .await?;
        Ok(draft.clone().numbered(epoch, seq))
    }
}

/// Reads a match's recorded events with `seq` after `after_seq`, oldest first, at most `limit`.
/// An empty answer for a match that has events means they were trimmed (or the history reset).
pub async fn read_history<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    layout: &Layout,
    topic: &MatchTopic,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<ScoreEvent>, FeedError> {
    let start = format!("0-{}", after_seq.saturating_add(1));
    let reply: redis::streams::StreamRangeReply = connection
        .xrange_count(layout.history_key(topic), start, "+", limit)
        .await?;
    parse_entries(topic, reply.ids)
}

/// The newest `count` recorded events of a match, oldest first.
pub async fn read_recent_history<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    layout: &Layout,
    topic: &MatchTopic,
    count: usize,
) -> Result<Vec<ScoreEvent>, FeedError> {
    let reply: redis::streams::StreamRangeReply = connection
        .xrevrange_count(layout.history_key(topic), "+", "-", count)
        .await?;
    let mut events = parse_entries(topic, reply.ids)?;
    events.reverse();
    Ok(events)
}

fn parse_entries(
    topic: &MatchTopic,
    entries: Vec<redis::streams::StreamId>,
) -> Result<Vec<ScoreEvent>, FeedError> {
    entries
        .into_iter()
        .map(|entry| {
            let bad = |reason: String| FeedError::BadHistory {
                topic: topic.clone(),
                id: entry.id.clone(),
                reason,
            };
            let text: String = entry
                .get("event")
                .ok_or_else(|| bad("no `event` field".into()))?;
            ScoreEvent::from_json(text.as_bytes()).map_err(|error| bad(error.to_string()))
        })
        .collect()
}

/// Milliseconds since the Unix epoch, the time unit of the protocol (and of new epochs).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
