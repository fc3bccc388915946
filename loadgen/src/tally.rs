//! What one client received, and what the run adds up to: loss, order and latency accounting.
//!
//! Pure data, so the rules a run is judged by (an event counts once, in order; loss is what was
//! published on a client's topics minus what it received) are tested without sockets.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this are clamped into the top bucket (a minute is far past any target).
const MAX_LATENCY_MICROS: u64 = 60_000_000;

/// Histograms are split into shards so thousands of client tasks rarely wait on one lock.
const LATENCY_SHARDS: usize = 16;

/// How one event arrived at a client, relative to the ones before it on the same topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The next `seq`, or a later one after `missed` events that never came.
    InOrder {
        /// How many `seq` values were skipped (0 normally).
        missed: u64,
    },
    /// A `seq` at or below one already received: counted as an error, not a delivery.
    Repeated,
}

/// Per-client, per-topic order tracking.
#[derive(Debug, Clone, Default)]
pub struct ClientTally {
    /// `(topic index, last seq received)`; a client follows one topic, or a few, so a linear scan
    /// beats hashing.
    last_seq: Vec<(usize, u64)>,
    /// Events received in order.
    pub received: u64,
    /// Events that skipped ahead of a `seq` never received.
    pub gaps: u64,
    /// Events repeated or out of order.
    pub repeated: u64,
    /// `resync` frames: the server said continuity was lost and sent the match's state instead.
    pub resyncs: u64,
    /// Events a resync jumped over: announced as lost rather than silently missing.
    pub resynced_over: u64,
    /// The last `seq` of every topic published before the run: the first one owed is the next.
    before: u64,
}

impl ClientTally {
    /// A client of matches whose events up to `seq` were published before the run (0: fresh
    /// matches).
    pub fn after(seq: u64) -> ClientTally {
        ClientTally {
            before: seq,
            ..ClientTally::default()
        }
    }

    fn last_seq(&mut self, topic: usize) -> &mut u64 {
        match self.last_seq.iter().position(|(t, _)| *t == topic) {
            Some(index) => &mut self.last_seq[index].1,
            None => {
                self.last_seq.push((topic, self.before));
                let index = self.last_seq.len() - 1;
                &mut self.last_seq[index].1
            }
        }
    }

    /// Records a `resync` of `topic` to a snapshot at `seq`: the events up to it that were not
    /// received will not come, and the next one expected is `seq + 1`.
    pub fn resync(&mut self, topic: usize, seq: u64) {
        let last = self.last_seq(topic);
        let skipped = seq.saturating_sub(*last);
        *last = (*last).max(seq);
        self.resyncs += 1;
        self.resynced_over += skipped;
    }

    /// Records event `seq` of `topic`.
    pub fn observe(&mut self, topic: usize, seq: u64) -> Observed {
        let last = self.last_seq(topic);
        if seq <= *last {
            self.repeated += 1;
            return Observed::Repeated;
        }
        let missed = seq - *last - 1;
        *last = seq;
        self.received += 1;
        if missed > 0 {
            self.gaps += 1;
        }
        Observed::InOrder { missed }
    }
}

/// The publish instant of every `(topic, seq)`, written by the publisher just before `PUBLISH`
/// and read by receivers, so latency has nanosecond resolution (the event's own `ts_ms` has
/// only milliseconds, too coarse for a 2 ms target).
#[derive(Debug)]
pub struct PublishTimes {
    epoch: Instant,
    /// `[topic][seq]` = nanoseconds after `epoch`, plus one; 0 means not published.
    nanos: Vec<Box<[AtomicU64]>>,
}

impl PublishTimes {
    /// A table for `topics` topics with seq values up to `max_seq`.
    pub fn new(epoch: Instant, topics: usize, max_seq: u64) -> PublishTimes {
        let nanos = (0..topics)
            .map(|_| (0..=max_seq).map(|_| AtomicU64::new(0)).collect())
            .collect();
        PublishTimes { epoch, nanos }
    }

    /// Notes that `(topic, seq)` is being published at `at`.
    pub fn mark(&self, topic: usize, seq: u64, at: Instant) {
        if let Some(slot) = self.slot(topic, seq) {
            let nanos = at.saturating_duration_since(self.epoch).as_nanos() as u64;
            slot.store(nanos + 1, Ordering::Release);
        }
    }

    /// How long ago, at `now`, `(topic, seq)` was published; `None` if it never was.
    pub fn latency(&self, topic: usize, seq: u64, now: Instant) -> Option<Duration> {
        let stored = self.slot(topic, seq)?.load(Ordering::Acquire);
        let published = self.epoch + Duration::from_nanos(stored.checked_sub(1)?);
        Some(now.saturating_duration_since(published))
    }

    fn slot(&self, topic: usize, seq: u64) -> Option<&AtomicU64> {
        self.nanos.get(topic)?.get(usize::try_from(seq).ok()?)
    }
}

/// Publish→receive latency of every delivery, in microseconds, shared by all client tasks.
#[derive(Debug)]
pub struct LatencyRecorder {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> LatencyRecorder {
        let shards = (0..LATENCY_SHARDS)
            .map(|_| Mutex::new(new_histogram()))
            .collect();
        LatencyRecorder { shards }
    }

    /// Records one latency; `client` picks the shard.
    pub fn record(&self, client: usize, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_MICROS);
        let shard = &self.shards[client % LATENCY_SHARDS];
        // A poisoned shard only means another task panicked mid-record; the counts stay usable.
        let mut histogram = shard.lock().unwrap_or_else(|poison| poison.into_inner());
        histogram.saturating_record(micros);
    }

    /// Records a burst of latencies from one client under one lock.
    pub fn record_all(&self, client: usize, latencies: impl IntoIterator<Item = Duration>) {
        let shard = &self.shards[client % LATENCY_SHARDS];
        let mut histogram = shard.lock().unwrap_or_else(|poison| poison.into_inner());
        for latency in latencies {
            let micros = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_MICROS);
            histogram.saturating_record(micros);
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.shards {
            let histogram = shard.lock().unwrap_or_else(|poison| poison.into_inner());
            // Same bounds everywhere, so adding cannot fail.
            let _ = all.add(&*histogram);
        }
        all
    }
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits between 1 µs and a minute: fixed bounds, valid by construction.
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds")
}

/// Latency of an event received at `received_since_unix` (wall clock) whose publisher stamped it
/// `ts_ms` (milliseconds since the Unix epoch, the protocol's `ts_ms`): how a load generator that
/// did not publish the event itself measures it, when several share one match (C100k). It relies
/// on one wall clock, so it is only meaningful for a publisher on the same machine, and it reads up
/// to 1 ms high because `ts_ms` is truncated to the millisecond. A stamp from the future (clock
/// step) counts as zero.
pub fn latency_since_stamp(ts_ms: u64, received_since_unix: Duration) -> Duration {
    received_since_unix.saturating_sub(Duration::from_millis(ts_ms))
}

/// A histogram as `(microseconds, count)` pairs of its non-empty buckets, so histograms of
/// several processes can be added up by a script (`loadgen/c100k.sh`) before taking percentiles.
pub fn histogram_buckets(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|bucket| {
            (
                histogram.highest_equivalent(bucket.value_iterated_to()),
                bucket.count_at_value(),
            )
        })
        .collect()
}

/// Latency percentiles in milliseconds (microsecond resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Deliveries measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest delivery.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Percentiles of a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Events a client should have received: everything published on its topics after it
/// subscribed. Every client subscribes before the first event, so that is every event of its
/// topics.
pub fn expected_for(topics: &[usize], published_per_topic: &[u64]) -> u64 {
    topics
        .iter()
        .filter_map(|&topic| published_per_topic.get(topic))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_of_matches_in_play_is_owed_the_events_after_them() {
        let mut tally = ClientTally::after(50);
        assert_eq!(tally.observe(0, 51), Observed::InOrder { missed: 0 });
        assert_eq!(tally.observe(1, 52), Observed::InOrder { missed: 1 });
        assert_eq!(tally.observe(0, 50), Observed::Repeated);
        assert_eq!((tally.received, tally.gaps, tally.repeated), (2, 1, 1));
    }

    #[test]
    fn in_order_events_count_once_each() {
        let mut tally = ClientTally::default();
        for seq in 1..=3 {
            assert_eq!(tally.observe(0, seq), Observed::InOrder { missed: 0 });
        }
        assert_eq!((tally.received, tally.gaps, tally.repeated), (3, 0, 0));
    }

    #[test]
    fn gaps_duplicates_and_reordering_are_told_apart() {
        let mut tally = ClientTally::default();
        tally.observe(0, 1);
        assert_eq!(tally.observe(0, 4), Observed::InOrder { missed: 2 });
        assert_eq!(tally.observe(0, 4), Observed::Repeated);
        assert_eq!(tally.observe(0, 2), Observed::Repeated);
        assert_eq!((tally.received, tally.gaps, tally.repeated), (2, 1, 2));
    }

    #[test]
    fn a_resync_moves_the_expected_seq_past_what_it_announced_lost() {
        let mut tally = ClientTally::default();
        tally.observe(0, 1);
        tally.resync(0, 5);
        assert_eq!(tally.observe(0, 6), Observed::InOrder { missed: 0 });
        assert_eq!(tally.observe(0, 4), Observed::Repeated);
        assert_eq!(
            (tally.received, tally.resyncs, tally.resynced_over),
            (2, 1, 4)
        );
    }

    #[test]
    fn topics_are_tracked_separately() {
        let mut tally = ClientTally::default();
        assert_eq!(tally.observe(5, 1), Observed::InOrder { missed: 0 });
        assert_eq!(tally.observe(7, 1), Observed::InOrder { missed: 0 });
        assert_eq!(tally.observe(5, 2), Observed::InOrder { missed: 0 });
        assert_eq!(tally.received, 3);
    }

    #[test]
    fn expected_counts_only_the_clients_topics() {
        let published = [10, 20, 30];
        assert_eq!(expected_for(&[1], &published), 20);
        assert_eq!(expected_for(&[0, 2], &published), 40);
        assert_eq!(expected_for(&[], &published), 0);
    }

    #[test]
    fn latency_is_measured_from_the_marked_publish_instant() {
        let epoch = Instant::now();
        let times = PublishTimes::new(epoch, 2, 3);
        let published = epoch + Duration::from_millis(5);
        times.mark(1, 3, published);
        assert_eq!(
            times.latency(1, 3, published + Duration::from_micros(1500)),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(times.latency(1, 2, published), None, "never published");
        assert_eq!(times.latency(2, 1, published), None, "no such topic");
        assert_eq!(times.latency(1, 4, published), None, "beyond max seq");
    }

    #[test]
    fn a_stamped_event_is_measured_from_its_stamp() {
        let received = Duration::from_millis(1_740_841_380_250) + Duration::from_micros(400);
        assert_eq!(
            latency_since_stamp(1_740_841_380_000, received),
            Duration::from_micros(250_400)
        );
        assert_eq!(
            latency_since_stamp(1_740_841_381_000, received),
            Duration::ZERO,
            "a stamp ahead of the receiver's clock"
        );
    }

    #[test]
    fn buckets_add_up_to_the_histogram() {
        let recorder = LatencyRecorder::new();
        for micros in [5, 5, 1_000, 250_000] {
            recorder.record(0, Duration::from_micros(micros));
        }
        let histogram = recorder.merged();
        let buckets = histogram_buckets(&histogram);
        assert_eq!(buckets.iter().map(|(_, count)| count).sum::<u64>(), 4);
        assert_eq!(buckets[0], (5, 2));
        // The last bucket's value is what the histogram reports as its maximum.
        assert_eq!(
            buckets.last().map(|(value, _)| *value),
            Some(histogram.max())
        );
    }

    #[test]
    fn shards_merge_into_one_summary() {
        let recorder = LatencyRecorder::new();
        for client in 0..100 {
            recorder.record(client, Duration::from_micros(1000 + client as u64));
        }
        recorder.record(3, Duration::from_millis(50));
        let summary = LatencySummary::of(&recorder.merged());
        assert_eq!(summary.count, 101);
        assert!((summary.p50_ms - 1.05).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 50.0).abs() < 0.05, "{summary:?}");
    }
}
