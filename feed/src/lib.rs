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
//!
//! [`connection`] is how every Scoreline program connects to Redis: one server or a master kept
//! by Redis Sentinel, named by one URL, reconnecting (and finding the new master) by itself.

pub mod connection;
mod publisher;

pub use connection::{ConnectionSettings, RedisConnection, RedisTarget, RedisUrlError};
pub use publisher::{Ledgers, Publisher, Recovery, RecoveryKind};

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
/// a new epoch, `ARGV[5]` a candidate epoch (milliseconds now); optionally `ARGV[6]` the epoch and
/// `ARGV[7]` the seq the caller last saw confirmed for this match.
///
/// Returns `{epoch, seq}` of the published event. With an expectation, when Redis no longer has
/// the match's numbering (restarted without its data) or holds an older position than the one
/// confirmed (a failover to a replica that missed writes), nothing is numbered or published and
/// the reply is `{epoch, seq, "forgotten"}` with what Redis has (0 for nothing): the caller must
/// re-establish the history ([`RESTORE_SCRIPT`]) before going on, or new events would reuse seqs
/// that readers already hold.
///
/// A new epoch is the candidate or one more than the old epoch, whichever is larger, so epochs
/// only grow even if clocks do not.
pub const PUBLISH_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if ARGV[4] ~= '1' and ARGV[6] and ARGV[6] ~= '' then
  local held = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
  if not epoch or tonumber(epoch) ~= tonumber(ARGV[6]) or held < tonumber(ARGV[7]) then
    return {tonumber(epoch or '0'), held, 'forgotten'}
  end
end
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

/// Re-establishes a match's numbering and history that Redis lost or rolled back, from what a
/// publisher remembers. Nothing is published: readers that missed events fill the gap from the
/// restored history when the next event shows it.
///
/// `KEYS` as [`PUBLISH_SCRIPT`]; `ARGV[1]` the epoch and `ARGV[2]` the seq to restore, `ARGV[3]`
/// the history length, then pairs of `seq`, numbered event JSON, oldest first, ending at `ARGV[2]`.
///
/// Returns `{"restored", entries added}`; `{"intact", 0}` when Redis already holds that position
/// or a later one of the same epoch (another publisher restored it first); or `{"newer", epoch}`
/// when Redis holds a newer epoch, which is left alone (epochs never go back).
pub const RESTORE_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local held = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local want = tonumber(ARGV[1])
if epoch and tonumber(epoch) > want then
  return {'newer', tonumber(epoch)}
end
if epoch and tonumber(epoch) == want and held >= tonumber(ARGV[2]) then
  return {'intact', 0}
end
if not epoch or tonumber(epoch) ~= want then
  redis.call('DEL', KEYS[2])
end
local last = 0
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if newest[1] then
  last = tonumber(string.match(newest[1][1], '%-(%d+)$'))
end
local added = 0
for i = 4, #ARGV, 2 do
  if tonumber(ARGV[i]) > last then
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. ARGV[i], 'event', ARGV[i + 1])
    added = added + 1
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[2])
return {'restored', added}
"#;

/// Why an event could not be published or history read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Redis refused or could not be reached.
    #[error("Redis command failed")]
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
    /// A script answered something this version does not understand.
    #[error("unexpected answer from the {script} script: {answer}")]
    UnexpectedAnswer {
        /// Which script.
        script: &'static str,
        /// The answer, as Redis gave it.
        answer: String,
    },
    /// Redis forgot the match again right after it was re-established (another writer resets
    /// it, or Redis keeps failing over): the event was not published.
    #[error("Redis keeps forgetting the numbering of {0}; the event was not published")]
    KeepsForgetting(MatchTopic),
}

/// A place in a match's history: the epoch and the seq of an event in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The history.
    pub epoch: u64,
    /// The event's place in it.
    pub seq: u64,
}

/// What [`number`] did with a draft.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per publish and matched at once; boxing would cost an allocation on the common path"
)]
pub enum Numbered {
    /// Numbered, recorded and published.
    Published(ScoreEvent),
    /// Not published: Redis no longer holds the expected position of the match (it lost its data
    /// or failed over to a replica that missed writes). `redis` is what it holds instead.
    Forgotten {
        /// Redis's position for the match, if it has one.
        redis: Option<Position>,
    },
}

/// What [`restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The numbering and these many history entries were written back.
    Restored {
        /// History entries added.
        entries: usize,
    },
    /// Redis already held that position (another publisher restored it).
    Intact,
    /// Redis holds a newer epoch of the match; nothing was written.
    Newer {
        /// That epoch.
        epoch: u64,
    },
}

/// Numbers, records and publishes one event through [`PUBLISH_SCRIPT`], the one atomic step.
///
/// `expect` is the position this publisher last saw confirmed for the match; with it, a Redis
/// that forgot or rolled back the match answers [`Numbered::Forgotten`] instead of numbering the
/// event from scratch (which would restart the match mid-way, or reuse seqs readers hold).
/// `new_history` starts a new epoch and ignores `expect`.
pub async fn number<C: redis::aio::ConnectionLike + Send>(
    connection: &mut C,
    layout: &Layout,
    draft: &EventDraft,
    new_history: bool,
    expect: Option<Position>,
) -> Result<Numbered, FeedError> {
    let topic = &draft.match_topic;
    let script = redis::Script::new(PUBLISH_SCRIPT);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(layout.sequence_key(topic))
        .key(layout.history_key(topic))
        .arg(layout.channel(topic))
        .arg(draft.to_json())
        .arg(layout.history_len)
        .arg(if new_history { "1" } else { "0" })
        .arg(now_ms());
    if let Some(expect) = expect {
        invocation.arg(expect.epoch).arg(expect.seq);
    }
    let answer: Vec<redis::Value> = invocation.invoke_async(connection).await?;
    let unexpected = || FeedError::UnexpectedAnswer {
        script: "publish",
        answer: format!("{answer:?}"),
    };
    let int = |index: usize| match answer.get(index) {
        Some(redis::Value::Int(value)) => u64::try_from(*value).ok(),
        _ => None,
    };
    let (epoch, seq) = (
        int(0).ok_or_else(unexpected)?,
        int(1).ok_or_else(unexpected)?,
    );
    match answer.len() {
        2 => Ok(Numbered::Published(draft.clone().numbered(epoch, seq))),
        3 => Ok(Numbered::Forgotten {
            redis: (epoch > 0).then_some(Position { epoch, seq }),
        }),
        _ => Err(unexpected()),
    }
}

/// Writes a match's numbering back at `position`, with the history entries in `events` that Redis
/// no longer has ([`RESTORE_SCRIPT`]). `events` are the match's events of `position.epoch`, oldest
/// first, the newest at `position.seq`; as many as the publisher kept (at most the history
/// length are sent).
pub async fn restore<C: redis::aio::ConnectionLike + Send>(
    connection: &mut C,
    layout: &Layout,
    topic: &MatchTopic,
    position: Position,
    events: &[ScoreEvent],
) -> Result<Restored, FeedError> {
    let script = redis::Script::new(RESTORE_SCRIPT);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(layout.sequence_key(topic))
        .key(layout.history_key(topic))
        .arg(position.epoch)
        .arg(position.seq)
        .arg(layout.history_len);
    let wanted = events
        .iter()
        .filter(|event| event.epoch == position.epoch && event.seq <= position.seq);
    let skip = wanted.clone().count().saturating_sub(layout.history_len);
    for event in wanted.skip(skip) {
        let mut stored = event.clone();
        stored.prev_critical_seq = None;
        invocation.arg(event.seq).arg(stored.to_json());
    }
    let answer: Vec<redis::Value> = invocation.invoke_async(connection).await?;
    let unexpected = || FeedError::UnexpectedAnswer {
        script: "restore",
        answer: format!("{answer:?}"),
    };
    let count = match answer.get(1) {
        Some(redis::Value::Int(value)) => u64::try_from(*value).map_err(|_| unexpected())?,
        _ => return Err(unexpected()),
    };
    let status = match answer.first() {
        Some(redis::Value::BulkString(bytes)) => bytes.as_slice(),
        Some(redis::Value::SimpleString(text)) => text.as_bytes(),
        _ => return Err(unexpected()),
    };
    match status {
        b"restored" => Ok(Restored::Restored {
            entries: usize::try_from(count).unwrap_or(usize::MAX),
        }),
        b"intact" => Ok(Restored::Intact),
        b"newer" => Ok(Restored::Newer { epoch: count }),
        _ => Err(unexpected()),
    }
}

/// The keys matching a glob `pattern`, at most `limit` (a `SCAN` loop: Redis is never blocked
/// the way `KEYS` would block it).
pub async fn scan_keys<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    pattern: &str,
    limit: usize,
) -> Result<Vec<String>, FeedError> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 || keys.len() >= limit {
            break;
        }
    }
    keys.truncate(limit);
    Ok(keys)
}

/// Where the numbering of every match stands in Redis (each match's sequence hash), at most
/// `limit` matches: what a reader that was away compares with what it holds.
pub async fn read_heads<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    layout: &Layout,
    limit: usize,
) -> Result<Vec<(MatchTopic, Position)>, FeedError> {
    let pattern = format!("{}{{*}}:seq", layout.key_prefix);
    let keys = scan_keys(connection, &pattern, limit).await?;
    let mut heads = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("HMGET").arg(key).arg("epoch").arg("seq");
        }
        let answers: Vec<(Option<u64>, Option<u64>)> = pipe.query_async(connection).await?;
        for (key, answer) in chunk.iter().zip(answers) {
            let topic = key
                .strip_prefix(&layout.key_prefix)
                .and_then(|rest| rest.strip_prefix('{'))
                .and_then(|rest| rest.strip_suffix("}:seq"))
                .and_then(|topic| MatchTopic::parse(topic).ok());
            if let (Some(topic), (Some(epoch), Some(seq))) = (topic, answer) {
                heads.push((topic, Position { epoch, seq }));
            }
        }
    }
    Ok(heads)
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
