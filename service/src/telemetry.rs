//! Logs and metrics, set up once per process.
//!
//! Metric names live here as constants so the code that records them and `docs/architecture.md`
//! agree; `/metrics` renders them in the Prometheus text format from the same process (no second
//! HTTP server).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "scoreline_connections";
/// Topics subscribed over all connections (gauge).
pub const SUBSCRIPTIONS: &str = "scoreline_subscriptions";
/// Matches kept in memory (gauge).
pub const MATCHES: &str = "scoreline_matches";
/// Events received from the broker (counter).
pub const EVENTS_IN: &str = "scoreline_events_in_total";
/// Events not applied, by `reason` (counter).
pub const EVENTS_REJECTED: &str = "scoreline_events_rejected_total";
/// Events whose `seq` skipped values: the feed lost something upstream (counter).
pub const EVENT_GAPS: &str = "scoreline_event_gaps_total";
/// Events dropped because the hub could not keep up (counter).
pub const EVENTS_DROPPED_OVERLOAD: &str = "scoreline_events_dropped_overload_total";
/// Frames written to WebSockets (counter).
pub const FRAMES_OUT: &str = "scoreline_frames_out_total";
/// Bytes written to WebSockets (counter).
pub const BYTES_OUT: &str = "scoreline_bytes_out_total";
/// Queued frames replaced by newer ones for lagging clients (counter).
pub const FRAMES_COALESCED: &str = "scoreline_frames_coalesced_total";
/// Clients disconnected because their outbound queue overflowed (counter).
pub const SLOW_CLIENT_DISCONNECTS: &str = "scoreline_slow_client_disconnects_total";
/// Bad inputs from clients or the broker, by `kind` (counter).
pub const BAD_INPUTS: &str = "scoreline_bad_inputs_total";
/// Times the service connected to Redis again after losing it (counter).
pub const REDIS_RECONNECTS: &str = "scoreline_redis_reconnects_total";
/// Events read back from a match's history to fill a gap (counter).
pub const EVENTS_BACKFILLED: &str = "scoreline_events_backfilled_total";
/// Matches resumed for reconnecting clients without a snapshot (counter).
pub const RESUMES: &str = "scoreline_resumes_total";
/// `resync` messages sent, by `reason` (counter).
pub const RESYNCS: &str = "scoreline_resyncs_total";
/// Canary messages that did not come back through Redis pub/sub in time (counter).
pub const CANARY_FAILURES: &str = "scoreline_canary_failures_total";
/// Round trip of the last canary through Redis pub/sub, in seconds (gauge).
pub const CANARY_ROUND_TRIP_SECONDS: &str = "scoreline_canary_round_trip_seconds";
/// Connections the service failed to accept for want of resources, e.g. file descriptors
/// (counter).
pub const ACCEPT_FAILURES: &str = "scoreline_accept_failures_total";
/// Whether the broker is reachable: 1 or 0 (gauge).
pub const BROKER_UP: &str = "scoreline_broker_up";
/// Time from receiving an event to writing it to a socket, in seconds (histogram).
pub const PUBLISH_TO_SEND_SECONDS: &str = "scoreline_publish_to_send_seconds";
/// Events found under a seq already applied with different content: the history was rewritten.
pub const EVENT_CONFLICTS: &str = "scoreline_event_conflicts_total";
/// Matches rebuilt from their Redis history, by outcome: `rebuilt`, `unchanged`, `unreadable`.
pub const REBUILDS: &str = "scoreline_match_rebuilds_total";
/// Matches whose numbering Redis no longer held (or held behind) when the service subscribed.
pub const HISTORIES_FORGOTTEN: &str = "scoreline_histories_forgotten_total";
/// Matches whose numbering a feed publishing through this service put back into Redis.
pub const HISTORIES_RESTORED: &str = "scoreline_histories_restored_total";

/// Time from when an event happened at its source (the feed's `ts_ms`) to writing it to a
/// socket, in seconds (histogram): how far behind the stadium fans are, feed and Redis included.
/// It reads the feed's clock against this host's, so it is only as true as their agreement.
pub const SOURCE_TO_SEND_SECONDS: &str = "scoreline_source_to_send_seconds";

/// Buckets for the source-to-screen histogram: 10 ms to 2 min (feeds and Redis add more than
/// the service does, and a delayed feed is measured in seconds).
const SOURCE_BUCKETS_SECS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Buckets for the latency histogram: 50 µs to 5 s.
const LATENCY_BUCKETS_SECS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide metrics recorder (once; later calls share it) and returns the handle
/// that renders `/metrics`. Tests start many services in one process, and a process can have only
/// one recorder, so they share counters: tests compare values before and after, never absolutes.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(PUBLISH_TO_SEND_SECONDS.to_owned()),
                    LATENCY_BUCKETS_SECS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(SOURCE_TO_SEND_SECONDS.to_owned()),
                    SOURCE_BUCKETS_SECS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(CONNECTIONS, "Open WebSocket connections.");
    describe_gauge!(SUBSCRIPTIONS, "Topics subscribed over all connections.");
    describe_gauge!(MATCHES, "Matches kept in memory.");
    describe_counter!(EVENTS_IN, "Events received from the broker.");
    describe_counter!(EVENTS_REJECTED, "Events not applied, by reason.");
    describe_counter!(EVENT_GAPS, "Events whose seq skipped values.");
    describe_counter!(
        EVENTS_DROPPED_OVERLOAD,
        "Events dropped because the hub was saturated."
    );
    describe_counter!(FRAMES_OUT, "Frames written to WebSockets.");
    describe_counter!(BYTES_OUT, "Bytes written to WebSockets.");
    describe_counter!(
        FRAMES_COALESCED,
        "Queued frames replaced by newer ones for lagging clients."
    );
    describe_counter!(
        SLOW_CLIENT_DISCONNECTS,
        "Clients disconnected for not reading."
    );
    describe_counter!(
        BAD_INPUTS,
        "Bad inputs from clients or the broker, by kind."
    );
    describe_counter!(REDIS_RECONNECTS, "Reconnections to Redis after losing it.");
    describe_counter!(
        ACCEPT_FAILURES,
        "Failed accepts for want of resources (file descriptors, memory); each pauses accepting."
    );
    describe_gauge!(BROKER_UP, "1 while the broker is reachable.");
    describe_counter!(
        EVENTS_BACKFILLED,
        "Events read back from match histories to fill gaps."
    );
    describe_counter!(RESUMES, "Matches resumed for reconnecting clients.");
    describe_counter!(RESYNCS, "Resync messages sent, by reason.");
    describe_counter!(
        CANARY_FAILURES,
        "Canaries that did not come back through Redis in time."
    );
    describe_gauge!(
        CANARY_ROUND_TRIP_SECONDS,
        "Round trip of the last canary through Redis."
    );
    describe_counter!(
        EVENT_CONFLICTS,
        "Events under a seq already applied but with other content (a rewritten history)."
    );
    describe_counter!(
        REBUILDS,
        "Matches rebuilt from their Redis history, by outcome (rebuilt, unchanged, unreadable)."
    );
    describe_counter!(
        HISTORIES_FORGOTTEN,
        "Matches whose numbering Redis had lost or rolled back when the service subscribed."
    );
    describe_counter!(
        HISTORIES_RESTORED,
        "Match histories HTTP publishing put back into a Redis that had forgotten them."
    );
    describe_histogram!(
        PUBLISH_TO_SEND_SECONDS,
        metrics::Unit::Seconds,
        "Time from receiving an event to writing it to a socket (oldest frame of each write batch)."
    );
    describe_histogram!(
        SOURCE_TO_SEND_SECONDS,
        metrics::Unit::Seconds,
        "Time from an event's source timestamp (ts_ms) to writing it to a socket (oldest of each write batch)."
    );
}

/// Shows an error with all its causes, `outer: inner: innermost`, for logging it once at the
/// edge.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// How often the histograms' recorded samples are folded into their buckets ([`upkeep`]).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Folds the samples the histograms recorded into their buckets every `interval`, until
/// `shutdown`.
///
/// The Prometheus recorder keeps every sample a histogram records (one or two per frame
/// written) until it is folded, which rendering `/metrics` does and, with `install_recorder`,
/// nothing else: a service nobody scraped grew by 9.5 MB a second at 400,000 deliveries a
/// second (`docs/benchmarks.md`, issue 14, session 8). Folded every second, what waits is at
/// most a second's samples. Runs wherever it is spawned (the main thread's runtime, which
/// serves no connection), since folding a second of a busy service's samples takes a while.
pub async fn upkeep(interval: Duration, shutdown: CancellationToken) {
    let Some(handle) = metrics_handle() else {
        // No recorder, no samples: nothing to fold, but the task lives as long as the others.
        shutdown.cancelled().await;
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

/// Counts one bad input of `kind` (e.g. `bad_json`, `invalid_topic`, `binary_frame`).
pub fn bad_input(kind: &'static str) {
    metrics::counter!(BAD_INPUTS, "kind" => kind).increment(1);
}

/// Sets up structured logging from `RUST_LOG` (default `info`), once per process.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's resident memory.
    fn resident_bytes() -> u64 {
        use procfs::WithCurrentSystemInfo;
        let process = procfs::process::Process::myself().expect("Linux has /proc");
        process.stat().expect("/proc/self/stat").rss_bytes().get()
    }

    /// 4,000,000 samples, as a busy service records in a few seconds, with nobody scraping
    /// `/metrics`: kept until folded they took 66 MB (with the upkeep's folding taken out, this
    /// test failed so); folded every 10 ms, the process grew by 0.9 MB.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unscraped_histograms_stay_small_while_the_upkeep_runs() {
        metrics_handle().expect("the recorder installs in a fresh test process");
        let shutdown = CancellationToken::new();
        let upkeep = tokio::spawn(upkeep(Duration::from_millis(10), shutdown.clone()));
        let histogram = metrics::histogram!(PUBLISH_TO_SEND_SECONDS);
        histogram.record(0.001);
        let before = resident_bytes();
        for _ in 0..200 {
            for _ in 0..20_000 {
                histogram.record(0.001);
            }
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
        let grown = resident_bytes().saturating_sub(before);
        shutdown.cancel();
        upkeep.await.expect("the upkeep ends when told");
        assert!(
            grown < 8 << 20,
            "the process grew by {grown} bytes while recording 4,000,000 samples"
        );
    }
}
