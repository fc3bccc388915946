//! `loadgen`: runs one load scenario against a Scoreline service and prints a human line and a
//! JSON line. See `docs/benchmarks.md` for the scenarios and how to start the service.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scoreline_loadgen::{Phase, PublishMode, RunConfig, Scenario, SharedRun, run};

/// Load generator for the Scoreline service (loopback only, bounded in clients and time).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The service's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,

    /// The Redis the service subscribes to.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis_url: String,

    /// The service's channel prefix (`--channel-prefix` of the service).
    #[arg(long, default_value = "scores:")]
    channel_prefix: String,

    /// The service's key prefix (`--key-prefix` of the service), for numbered publishing.
    #[arg(long, default_value = "scoreline:")]
    key_prefix: String,

    /// How events are published: through the numbering script with history (as the feed
    /// replayer does), or as bare PUBLISH (best effort).
    #[arg(long, value_enum, default_value = "numbered")]
    publish: PublishMode,

    /// A preset from issue 6; the flags below override its numbers.
    #[arg(long, value_enum, default_value = "custom")]
    scenario: Scenario,

    /// Clients that read and are measured.
    #[arg(long)]
    clients: Option<usize>,

    /// Clients that subscribe to every topic of the run and then stop reading.
    #[arg(long)]
    slow_clients: Option<usize>,

    /// Match topics to publish on; readers are spread evenly over them.
    #[arg(long)]
    topics: Option<usize>,

    /// Events per second over all topics; replaces the preset's phases with one phase.
    #[arg(long, requires = "secs")]
    rate: Option<u32>,

    /// Length of that one phase, in seconds.
    #[arg(long, requires = "rate")]
    secs: Option<u32>,

    /// Connection handshakes in flight at once.
    #[arg(long)]
    connect_concurrency: Option<usize>,

    /// With no events (S3), how long to hold the idle connections before reading memory.
    #[arg(long)]
    hold_secs: Option<u32>,

    /// The service's PID, for its CPU seconds and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,

    /// Longest time for every client to connect and subscribe.
    #[arg(long, default_value_t = 60)]
    connect_timeout_secs: u64,

    /// Longest wait after the last publish for deliveries to arrive.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,

    /// How long slow clients read what piled up for them at the end, to see whether the server
    /// closed them (their backlog can be megabytes of kernel buffers each).
    #[arg(long, default_value_t = 10)]
    slow_drain_secs: u64,

    /// Receive buffer of slow clients' sockets, in bytes.
    #[arg(long, default_value_t = 4096)]
    slow_recv_buffer_bytes: u32,

    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,

    /// Longest a whole run may take before it is abandoned with an error, whatever happens.
    #[arg(long, default_value_t = 600)]
    max_run_secs: u64,

    /// Names the run's topics (default: milliseconds since the Unix epoch). Processes of a
    /// shared run must all be given the same one.
    #[arg(long)]
    run_id: Option<String>,

    /// The first `seq` to publish on each topic. With the `--run-id` of an earlier run that
    /// published the ones before, the clients connect to matches in play (a reconnect storm
    /// during a final): a service that keeps state answers every `subscribe` with the match so
    /// far, and only this run's events are owed and measured.
    #[arg(
        long,
        default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(1..),
        requires = "run_id"
    )]
    first_seq: u64,

    /// Print every delivery slower than this many microseconds to stderr, with when it arrived
    /// (milliseconds into the run), its latency, topic and seq: where a tail comes from.
    #[arg(long)]
    log_slower_than_micros: Option<u64>,

    /// This many load generator processes follow the same topics (same `--run-id` and plan);
    /// they meet in Redis before publishing. Exactly one of them publishes: the one without
    /// `--follow`.
    #[arg(long, requires = "run_id")]
    shared_by: Option<usize>,

    /// In a shared run, do not publish: read the other process's events and measure their
    /// latency from the event's own `ts_ms` (so the publisher must be on this machine).
    #[arg(long, requires = "shared_by")]
    follow: bool,

    /// Most clients allowed in one run: a guard against a typo opening a million sockets.
    #[arg(long, default_value_t = 20_000)]
    max_clients: usize,
}

fn main() -> ExitCode {
    match run_main(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_main(args: Args) -> anyhow::Result<ExitCode> {
    let mut plan = args.scenario.plan();
    plan.readers = args.clients.unwrap_or(plan.readers);
    plan.slow = args.slow_clients.unwrap_or(plan.slow);
    plan.topics = args.topics.unwrap_or(plan.topics);
    plan.connect_concurrency = args.connect_concurrency.unwrap_or(plan.connect_concurrency);
    plan.hold_secs = args.hold_secs.unwrap_or(plan.hold_secs);
    plan.first_seq = args.first_seq;
    if let (Some(events_per_sec), Some(secs)) = (args.rate, args.secs) {
        plan.phases = vec![Phase {
            events_per_sec,
            secs,
        }];
    }
    let clients = plan.readers + plan.slow;
    anyhow::ensure!(
        clients <= args.max_clients,
        "{clients} clients is more than --max-clients {}",
        args.max_clients
    );
    // Each client is one socket; leave room for Redis and the runtime.
    let wanted_fds = clients as u64 + 256;
    let fds = rlimit::increase_nofile_limit(wanted_fds).context("raising the open-file limit")?;
    anyhow::ensure!(
        fds >= wanted_fds,
        "the open-file limit is {fds}, {wanted_fds} are needed: raise it with `ulimit -n`"
    );
    let config = RunConfig {
        scenario: args.scenario,
        plan,
        ws_url: args.url,
        redis_url: args.redis_url,
        channel_prefix: args.channel_prefix,
        key_prefix: args.key_prefix,
        publish: args.publish,
        server_pid: args.server_pid,
        connect_timeout: Duration::from_secs(args.connect_timeout_secs),
        drain_timeout: Duration::from_secs(args.drain_secs),
        slow_drain: Duration::from_secs(args.slow_drain_secs),
        slow_recv_buffer_bytes: args.slow_recv_buffer_bytes,
        run_id: args.run_id.unwrap_or_else(run_id),
        shared: args.shared_by.map(|processes| SharedRun {
            processes,
            publishes: !args.follow,
        }),
        log_slower_than: args.log_slower_than_micros.map(Duration::from_micros),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build()?;
    let max_run = Duration::from_secs(args.max_run_secs);
    let report = runtime
        .block_on(async { tokio::time::timeout(max_run, run(config)).await })
        .map_err(|_| {
            anyhow::anyhow!(
                "the run took longer than --max-run-secs {}",
                args.max_run_secs
            )
        })??;
    // Clients still closing must not keep the process alive past the report.
    runtime.shutdown_timeout(Duration::from_secs(2));
    println!("{}", report.human_line());
    println!("{}", report.json_line());
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A short id unique per run: milliseconds since the Unix epoch.
fn run_id() -> String {
    scoreline_feed::now_ms().to_string()
}
