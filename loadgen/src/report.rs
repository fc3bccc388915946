//! What a run prints: one line for people, one JSON line for scripts and `docs/benchmarks.md`.

use serde::Serialize;

use crate::plan::{Phase, Plan, PublishMode, Scenario};
use crate::server_stats::ProcSample;
use crate::tally::LatencySummary;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The preset the plan came from.
    pub scenario: Scenario,
    /// Names this run's topics (`football/loadgen-<run_id>/...`).
    pub run_id: String,
    /// What was asked for.
    pub plan: Plan,
    /// How events were published.
    pub publish: PublishMode,
    /// Clients (readers and slow) that connected and got their `subscribed` reply.
    pub subscribed: usize,
    /// Clients that failed to connect or subscribe in time.
    pub connect_failures: usize,
    /// The first such failure, to tell a refused connection from a timeout.
    pub first_connect_error: Option<String>,
    /// From the first connection attempt until the last client was subscribed, in seconds.
    pub connect_all_secs: f64,
    /// Events published through Redis.
    pub published: u64,
    /// Publishes Redis reported no subscriber for (the service was not listening).
    pub published_unheard: u64,
    /// How late the publisher ran behind its schedule at worst, in milliseconds.
    pub publish_max_lag_ms: f64,
    /// Deliveries the subscribed readers should have received.
    pub expected: u64,
    /// Deliveries received in order by readers.
    pub delivered: u64,
    /// `expected - delivered`: events readers had not received when the drain window closed,
    /// whether dropped or only late (`--drain-secs` tells them apart; `readers_closed` says
    /// whether the server dropped anyone).
    pub lost: u64,
    /// Events received twice or out of order.
    pub repeated: u64,
    /// `resync` frames readers got: the server announcing lost continuity with a snapshot.
    pub resyncs: u64,
    /// Events those resyncs jumped over (part of `lost`, but announced).
    pub resynced_over: u64,
    /// Readers the server closed or dropped during the run.
    pub readers_closed: usize,
    /// Slow clients the server disconnected (close code 1013) for falling behind.
    pub slow_disconnected: usize,
    /// Slow clients closed with another code, or whose connection just ended.
    pub slow_closed_otherwise: usize,
    /// How slow clients' connections ended, by close code (1006: dropped without a close frame).
    pub slow_close_codes: std::collections::BTreeMap<u16, usize>,
    /// Slow clients still receiving backlog when `--slow-drain-secs` ran out: whether the server
    /// cut them is unknown (its `scoreline_slow_client_disconnects_total` says).
    pub slow_still_open: usize,
    /// Each publishing phase.
    pub phases: Vec<PhaseReport>,
    /// Latency over all phases.
    pub latency: LatencySummary,
    /// In a shared run, that latency's histogram as `(microseconds, count)` buckets, for a
    /// script to add up over every process before taking percentiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_buckets: Option<Vec<(u64, u64)>>,
    /// Set when several processes followed the same topics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<crate::run::SharedRun>,
    /// For the publisher of a shared run: how many processes were subscribed when it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_ready: Option<usize>,
    /// The service's CPU and memory, when its PID was given.
    pub server: Option<ServerReport>,
    /// Kernel TCP buffer memory, machine-wide, before connecting, once subscribed, and at the end.
    pub kernel_tcp_buffer_bytes: [Option<u64>; 3],
    /// CPU seconds the load generator itself used (it shares the machine).
    pub loadgen_cpu_secs: f64,
    /// The machine's 1-minute load average at the start and end.
    pub load_average_1m: (Option<f32>, Option<f32>),
    /// The whole run, in seconds.
    pub wall_secs: f64,
}

/// One publishing phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// The phase as planned.
    pub phase: Phase,
    /// Events published in it.
    pub published: u64,
    /// Deliveries of its events to readers.
    pub delivered: u64,
    /// `delivered` over the time from its first publish to its last delivery.
    pub deliveries_per_sec: f64,
    /// Latency of its events.
    pub latency: LatencySummary,
}

/// The service's resources over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Before any client connected.
    pub before: ProcSample,
    /// Once every client was subscribed (after the hold, for idle runs).
    pub subscribed: ProcSample,
    /// After publishing and draining.
    pub end: ProcSample,
    /// CPU seconds spent connecting and subscribing everyone.
    pub cpu_secs_connecting: f64,
    /// CPU seconds spent while publishing and draining.
    pub cpu_secs_publishing: f64,
    /// RSS growth from connecting everyone, divided by the clients subscribed.
    pub rss_per_connection_bytes: f64,
}

impl ServerReport {
    /// Differences between the three samples.
    pub fn new(
        before: ProcSample,
        subscribed: ProcSample,
        end: ProcSample,
        clients: usize,
    ) -> Self {
        ServerReport {
            before,
            subscribed,
            end,
            cpu_secs_connecting: subscribed.cpu_secs - before.cpu_secs,
            cpu_secs_publishing: end.cpu_secs - subscribed.cpu_secs,
            rss_per_connection_bytes: (subscribed.rss_bytes as f64 - before.rss_bytes as f64)
                / clients.max(1) as f64,
        }
    }
}

impl Report {
    /// Whether every subscribed reader got every event and every client subscribed.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.repeated == 0
            && self.connect_failures == 0
            && self.readers_closed == 0
    }

    /// The one-line summary for people.
    pub fn human_line(&self) -> String {
        let mut line = format!(
            "{:?}: {}/{} clients subscribed in {:.2} s; {} events -> {}/{} delivered ({} lost, {} repeated, {} resyncs over {} events, {} readers closed)",
            self.scenario,
            self.subscribed,
            self.plan.readers + self.plan.slow,
            self.connect_all_secs,
            self.published,
            self.delivered,
            self.expected,
            self.lost,
            self.repeated,
            self.resyncs,
            self.resynced_over,
            self.readers_closed,
        );
        for (index, phase) in self.phases.iter().enumerate() {
            line += &format!(
                "; phase {} ({}/s for {} s): {:.0} deliveries/s, p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms",
                index + 1,
                phase.phase.events_per_sec,
                phase.phase.secs,
                phase.deliveries_per_sec,
                phase.latency.p50_ms,
                phase.latency.p90_ms,
                phase.latency.p99_ms,
                phase.latency.p999_ms,
                phase.latency.max_ms,
            );
        }
        if self.plan.slow > 0 {
            line += &format!(
                "; {}/{} slow clients disconnected (1013), {} closed otherwise, {} still open after the drain, close codes {:?}",
                self.slow_disconnected,
                self.plan.slow,
                self.slow_closed_otherwise,
                self.slow_still_open,
                self.slow_close_codes
            );
        }
        if let Some(server) = &self.server {
            line += &format!(
                "; server cpu {:.2} s connecting + {:.2} s publishing, rss {:.1} MB -> {:.1} MB subscribed ({:.0} B/conn) -> {:.1} MB end, peak {:.1} MB",
                server.cpu_secs_connecting,
                server.cpu_secs_publishing,
                mb(server.before.rss_bytes),
                mb(server.subscribed.rss_bytes),
                server.rss_per_connection_bytes,
                mb(server.end.rss_bytes),
                mb(server.end.peak_rss_bytes),
            );
        }
        if let [_, _, Some(end)] = self.kernel_tcp_buffer_bytes {
            line += &format!("; kernel TCP buffers {:.1} MB at end", mb(end));
        }
        if let Some(shared) = self.shared {
            line += &format!(
                "; shared by {} processes, this one {}",
                shared.processes,
                if shared.publishes {
                    "publishing"
                } else {
                    "following (latency from ts_ms)"
                }
            );
            if let Some(ready) = self.processes_ready {
                line += &format!(", {ready} subscribed when publishing began");
            }
        }
        line += &format!(
            "; loadgen cpu {:.2} s; load {:?} -> {:?}",
            self.loadgen_cpu_secs, self.load_average_1m.0, self.load_average_1m.1
        );
        line
    }

    /// The JSON line.
    pub fn json_line(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}
