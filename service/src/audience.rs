//! "N fans watching": how many connections, on every instance sharing the Redis, subscribed to a
//! match's own topic (what a fan does by opening the match), told to those fans every few seconds
//! as a `watching` message.
//!
//! Each round (`--audience-interval-millis`, 5 s by default) this task:
//! 1. asks the hub for the watched matches and their watchers' mailboxes ([`watched`]; the hub
//!    keeps that index up to date on every subscribe, so the round costs one pass over it);
//! 2. replaces this instance's counts in Redis (`<prefix>audience:<instance>`, a hash that
//!    expires after three rounds, so a dead instance's fans stop counting) and reads every live
//!    instance's counts of the same matches (`HMGET`, one per instance, pipelined);
//! 3. pushes a coalescable `watching` frame into each watcher's mailbox, for the matches whose
//!    count changed ([`Audience::plan`]), and for all of them every [`REFRESH_ROUNDS`] rounds,
//!    in equal steps over half the interval ([`fans_per_step`]), never in one burst.
//!
//! Why the cost stays bounded at 100k clients: nothing happens per event or per subscribe beyond
//! one index update; a round costs O(watchers) on this instance, O(instances × watched matches)
//! in Redis, and at most one small frame per watcher, which replaces any unsent older one, so a
//! slow fan never queues more than one. Fans who follow a whole sport without opening a match
//! are not watchers and get nothing. Without Redis (the in-process broker) the counts are this
//! instance's own. Every step runs off the hub's thread except the index walk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use scoreline_feed::RedisConnection;
use scoreline_protocol::{MatchTopic, ServerMessage, Topic};
use tokio_util::sync::CancellationToken;

use crate::hub::{Command, HubHandle};
use crate::mailbox::{CoalesceId, Mailbox, Outbound};
use crate::routing::Routes;

/// Every watched match with its watchers' mailboxes on this instance.
pub type Watched = Vec<(Topic, Vec<Arc<Mailbox>>)>;

/// Every how many rounds each watcher is told the count even if it did not change, so a fan who
/// joined in a round where the total happened to stay the same still learns it.
pub const REFRESH_ROUNDS: u64 = 6;

/// Who watches what, from the hub's indexes: live fans' and each spoiler delay's (called on the
/// hub's thread, so it only clones). A match watched at several delays is listed once.
pub fn watched<'a>(indexes: impl IntoIterator<Item = &'a Routes>) -> Watched {
    let mut merged: HashMap<&Topic, Vec<Arc<Mailbox>>> = HashMap::new();
    for routes in indexes {
        for (topic, mailboxes) in routes.watchers() {
            merged.entry(topic).or_default().extend(mailboxes.cloned());
        }
    }
    merged
        .into_iter()
        .map(|(topic, mailboxes)| (topic.clone(), mailboxes))
        .collect()
}

/// What the task remembers between rounds: the count each match's watchers were last told.
/// Plain data, so the rules are tested without Redis or sockets.
#[derive(Debug, Default)]
pub struct Audience {
    /// Per watched match: the total and this instance's count when last told. Only matches
    /// watched in the last round are kept, so it is bounded by the watched matches.
    told: HashMap<Topic, (u64, usize)>,
    rounds: u64,
}

impl Audience {
    /// The matches to tell about this round, with the count to tell: those whose total or local
    /// count changed (a fan joined or left here), or all of them on a refresh round. `local`
    /// holds this instance's watchers per match; `totals` the sums over every instance, which a
    /// match is missing from when Redis could not be read (then the local count stands).
    pub fn plan(
        &mut self,
        local: &[(Topic, usize)],
        totals: &HashMap<Topic, u64>,
    ) -> Vec<(Topic, u64)> {
        self.rounds += 1;
        let refresh = self.rounds.is_multiple_of(REFRESH_ROUNDS);
        let mut told = HashMap::with_capacity(local.len());
        let mut tell = Vec::new();
        for (topic, here) in local {
            // This instance's own fans count even before its write is visible in Redis.
            let total = totals.get(topic).copied().unwrap_or(0).max(*here as u64);
            if refresh || self.told.get(topic) != Some(&(total, *here)) {
                tell.push((topic.clone(), total));
            }
            told.insert(topic.clone(), (total, *here));
        }
        self.told = told;
        tell
    }
}

/// Where this instance shares its counts, when the service runs on Redis.
pub struct SharedCounts {
    connection: RedisConnection,
    key_prefix: String,
    instance: String,
}

impl SharedCounts {
    /// Shares counts over the broker's Redis connection (which connects when first used, so the
    /// service may start while Redis is down, and follows a Sentinel failover).
    pub fn new(connection: RedisConnection, key_prefix: &str) -> SharedCounts {
        SharedCounts {
            connection,
            key_prefix: key_prefix.to_owned(),
            instance: format!("{:016x}", rand::random::<u64>()),
        }
    }

    fn key(&self, instance: &str) -> String {
        format!("{}audience:{instance}", self.key_prefix)
    }

    /// Replaces this instance's counts and returns the totals over every instance seen within
    /// `ttl`, for the matches watched here.
    async fn exchange(
        &mut self,
        local: &[(Topic, usize)],
        ttl: Duration,
        now_ms: u64,
    ) -> redis::RedisResult<HashMap<Topic, u64>> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mine = self.key(&self.instance);
        let instances = format!("{}audience:instances", self.key_prefix);
        let alive_since = now_ms.saturating_sub(ttl_ms);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&mine).ignore();
        if !local.is_empty() {
            let command = pipe.cmd("HSET").arg(&mine);
            for (topic, count) in local {
                command.arg(topic.as_str()).arg(*count);
            }
            command.ignore();
            pipe.cmd("PEXPIRE").arg(&mine).arg(ttl_ms).ignore();
        }
        pipe.cmd("ZADD")
            .arg(&instances)
            .arg(now_ms)
            .arg(&self.instance)
            .ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&instances)
            .arg("-inf")
            .arg(format!("({alive_since}"))
            .ignore();
        pipe.cmd("PEXPIRE").arg(&instances).arg(ttl_ms).ignore();
        pipe.cmd("ZRANGE").arg(&instances).arg(0).arg(-1);
        let (alive,): (Vec<String>,) = pipe.query_async(&mut self.connection).await?;
        if local.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for instance in &alive {
            let command = pipe.cmd("HMGET").arg(self.key(instance));
            for (topic, _) in local {
                command.arg(topic.as_str());
            }
        }
        let counts: Vec<Vec<Option<u64>>> = pipe.query_async(&mut self.connection).await?;
        let mut totals: HashMap<Topic, u64> = HashMap::with_capacity(local.len());
        for per_instance in counts {
            for ((topic, _), count) in local.iter().zip(per_instance) {
                *totals.entry(topic.clone()).or_default() += count.unwrap_or(0);
            }
        }
        Ok(totals)
    }
}

/// Runs rounds every `interval` until `shutdown`; `shared` is `None` without Redis.
pub async fn run(
    hub: HubHandle,
    mut shared: Option<SharedCounts>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut audience = Audience::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut redis_failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        if hub.send(Command::Watchers { reply }).await.is_err() {
            break;
        }
        let Ok(watched) = answer.await else { break };
        let local: Vec<(Topic, usize)> = watched
            .iter()
            .map(|(topic, mailboxes)| (topic.clone(), mailboxes.len()))
            .collect();
        let totals = match shared.as_mut() {
            Some(shared) => match shared
                .exchange(&local, interval.saturating_mul(3), crate::now_ms())
                .await
            {
                Ok(totals) => {
                    redis_failing = false;
                    totals
                }
                Err(error) => {
                    // Logged once per outage; meanwhile fans see this instance's count.
                    if !redis_failing {
                        tracing::warn!(%error, "cannot share watching counts through Redis");
                    }
                    redis_failing = true;
                    HashMap::new()
                }
            },
            None => HashMap::new(),
        };
        let tell: HashMap<Topic, u64> = audience.plan(&local, &totals).into_iter().collect();
        let frames: Vec<(Outbound, &[Arc<Mailbox>])> = watched
            .iter()
            .filter_map(|(topic, mailboxes)| {
                let fans = *tell.get(topic)?;
                let match_topic = MatchTopic::try_from(topic.clone()).ok()?;
                let frame = Outbound {
                    text: ServerMessage::Watching { match_topic, fans }
                        .to_json()
                        .into(),
                    received_at: None,
                    source_ms: None,
                    coalesce: Some(CoalesceId(format!("{topic}#watching").into())),
                };
                Some((frame, mailboxes.as_slice()))
            })
            .collect();
        let fans: usize = frames.iter().map(|(_, mailboxes)| mailboxes.len()).sum();
        let per_step = fans_per_step(fans, interval / 2);
        let mut told = 0;
        for (frame, mailboxes) in &frames {
            for mailbox in *mailboxes {
                if told > 0 && told % per_step == 0 {
                    tokio::select! {
                        () = tokio::time::sleep(PACE_STEP) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                // A closed mailbox (the fan just left) or a full one is that fan's concern;
                // the frame is only the latest count and the next round tells it again.
                let _ = mailbox.push(frame.clone());
                told += 1;
            }
        }
    }
}

/// The time between two steps of a round: short enough that the count stays fresh, long enough
/// that the timer's own cost is nothing next to the writes.
pub const PACE_STEP: Duration = Duration::from_millis(10);

/// How many fans a round tells every [`PACE_STEP`] to tell `watchers` of them within `window`:
/// an equal share per step (at least one), everyone at once if the window holds no more than
/// one step.
///
/// Told all at once, a round is a burst of one write per watcher (10,000 in a final), and the
/// events that arrive meanwhile wait behind it: the fans of a goal scored just then see it tens
/// of milliseconds late: S1's worst stall came with such a round (`docs/benchmarks.md`, issue 14,
/// session 7). Spread over half the interval, a round costs the other traffic next to nothing,
/// and every fan still hears the count once per round.
pub fn fans_per_step(watchers: usize, window: Duration) -> usize {
    let steps = (window.as_millis() / PACE_STEP.as_millis()).max(1);
    let steps = usize::try_from(steps).unwrap_or(usize::MAX);
    watchers.div_ceil(steps).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_tells_its_fans_in_equal_steps_over_the_window() {
        let window = Duration::from_millis(2_500);
        // The final: 10,000 watchers told 40 at a time, every 10 ms, within 2.5 s.
        let per_step = fans_per_step(10_000, window);
        assert_eq!((per_step, PACE_STEP), (40, Duration::from_millis(10)));
        assert!(10_000_usize.div_ceil(per_step) as u32 * PACE_STEP <= window);
        // Uneven shares round up, so the last step is never past the window.
        assert_eq!(fans_per_step(10_001, window), 41);
        // Few watchers: one at a time; none: a step that tells nobody.
        assert_eq!(fans_per_step(3, window), 1);
        assert_eq!(fans_per_step(0, window), 1);
        // A window shorter than a step: everyone at once.
        assert_eq!(fans_per_step(500, Duration::from_millis(4)), 500);
    }

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    #[test]
    fn fans_are_told_when_the_count_changes_and_on_refresh_rounds() {
        let game = topic("football/pl/ars-che");
        let mut audience = Audience::default();
        let totals = HashMap::from([(game.clone(), 5)]);
        assert_eq!(
            audience.plan(&[(game.clone(), 2)], &totals),
            [(game.clone(), 5)]
        );
        assert_eq!(audience.plan(&[(game.clone(), 2)], &totals), []);
        // A fan joined here: told even though Redis has not seen it yet (at least the local 3).
        let stale = HashMap::from([(game.clone(), 2)]);
        assert_eq!(
            audience.plan(&[(game.clone(), 3)], &stale),
            [(game.clone(), 3)]
        );
        for _ in 0..2 {
            assert_eq!(audience.plan(&[(game.clone(), 3)], &stale), []);
        }
        // Round 6 refreshes everyone.
        assert_eq!(
            audience.plan(&[(game.clone(), 3)], &stale),
            [(game.clone(), 3)]
        );
        // A match nobody watches any more is forgotten.
        assert_eq!(audience.plan(&[], &HashMap::new()), []);
        assert!(audience.told.is_empty());
    }
}
