//! Configuration: command-line flags, each also settable from a `SCORELINE_*` environment
//! variable (flags win). Every limit the service enforces is here, with its default.
//!
//! The environment is read only where the command line is parsed (`main`, through
//! [`clap::Parser::parse`]); [`Config::defaults`] and [`Config::from_flags`] ignore it, so the
//! variables in a developer's shell cannot change what the tests run with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// Which broker carries events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// Redis pub/sub: shared by every instance; snapshots survive restarts.
    Redis,
    /// In-process: for demos on a machine with nothing installed.
    Memory,
}

/// Everything the service can be told.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "scoreline-service",
    version,
    about = "Live sports scores over WebSocket, fed from Redis."
)]
pub struct Config {
    /// Address to listen on. Use port 0 to pick a free port (it is logged).
    #[arg(long, env = "SCORELINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Broker: `redis`, or `memory` (in-process). Default: redis when --redis-url is set,
    /// memory otherwise.
    #[arg(long, env = "SCORELINE_BROKER", value_enum)]
    pub broker: Option<BrokerKind>,

    /// Redis URL: redis://127.0.0.1:6379/0 for one server, or
    /// redis+sentinel://host:26379,host:26380,host:26381/master-name[/db] for the master that
    /// Redis Sentinel keeps (the service follows its failovers).
    #[arg(long, env = "SCORELINE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of the Redis channels feeds publish on: `<prefix><topic>`.
    #[arg(long, env = "SCORELINE_CHANNEL_PREFIX", default_value = "scores:")]
    pub channel_prefix: String,

    /// Prefix of the Redis keys the service stores snapshots under.
    #[arg(long, env = "SCORELINE_KEY_PREFIX", default_value = "scoreline:")]
    pub key_prefix: String,

    /// Bearer token that enables `POST /api/publish`; publishing over HTTP is off without one.
    #[arg(long, env = "SCORELINE_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,

    /// Origins allowed to open WebSockets (e.g. `https://fans.example`); any when none is given.
    /// Clients that send no Origin header (non-browsers) are always allowed.
    #[arg(
        long = "allowed-origin",
        env = "SCORELINE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Most simultaneous WebSocket connections; more are refused with 503.
    #[arg(long, env = "SCORELINE_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Most topics one connection may subscribe to.
    #[arg(long, env = "SCORELINE_MAX_TOPICS", default_value_t = 64)]
    pub max_topics: usize,

    /// Largest frame a client may send, in bytes; larger ones close the connection with 1009.
    #[arg(long, env = "SCORELINE_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,

    /// Requests per second a connection may send on average (bursts of twice that pass).
    #[arg(long, env = "SCORELINE_MAX_REQUESTS_PER_SEC", default_value_t = 20)]
    pub max_requests_per_sec: u32,

    /// Most snapshots in one `subscribed` or `catalogue` reply.
    #[arg(long, env = "SCORELINE_MAX_SNAPSHOTS", default_value_t = 100)]
    pub max_snapshots: usize,

    /// Frames that must be delivered (scores, replies) a lagging client may have waiting before
    /// it is disconnected with 1013.
    #[arg(long, env = "SCORELINE_MAX_QUEUED_FRAMES", default_value_t = 512)]
    pub max_queued_frames: usize,

    /// Events kept in each match's Redis history (for HTTP-published events; feeds choose their
    /// own with the publish script).
    #[arg(long, env = "SCORELINE_HISTORY_LEN", default_value_t = 10_000)]
    pub history_len: usize,

    /// Longest spoiler delay a client may ask for, in seconds (`delay_secs` in `subscribe`). The
    /// service keeps this much of every match's recent events in memory to send them late.
    #[arg(long, env = "SCORELINE_MAX_DELAY_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub max_delay_secs: u32,

    /// Recent events kept in memory per match, so reconnecting clients get exactly what they
    /// missed; further back they get a `resync` snapshot.
    #[arg(long, env = "SCORELINE_RESUME_EVENTS", default_value_t = 256)]
    pub resume_events: usize,

    /// Kernel send buffer per connection, in bytes (0 keeps the system's auto-tuning). A client
    /// that stops reading can pin no more than this (doubled by Linux) in the kernel, and its
    /// backlog reaches the service's queue limit, where it is handled, sooner.
    #[arg(long, env = "SCORELINE_SOCKET_SEND_BUFFER_BYTES", default_value_t = 64 * 1024)]
    pub socket_send_buffer_bytes: usize,

    /// Most bytes per connection the kernel may hold that it has not yet sent (Linux's
    /// TCP_NOTSENT_LOWAT; 0 for no limit). A client that reads keeps the whole send buffer for
    /// data in flight; one that stops reading stops taking writes after this much, so the
    /// service stops spending a system call per frame on it seconds sooner.
    #[arg(long, env = "SCORELINE_UNSENT_LIMIT_BYTES", default_value_t = 16 * 1024)]
    pub unsent_limit_bytes: u32,

    /// Listening sockets sharing the port (SO_REUSEPORT). Each has its own queue of connections
    /// waiting to be accepted, capped by the kernel (net.core.somaxconn, often 4096); when a
    /// reconnect storm overflows the queues, the kernel drops handshakes and those clients retry
    /// only after a second. Four queues absorb 10,000 simultaneous connects on default settings.
    /// There is at least one per worker; each worker accepts from its own.
    #[arg(long, env = "SCORELINE_ACCEPT_QUEUES", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub accept_queues: u16,

    /// Most matches kept in memory. A busy match costs about 160 KB (its snapshot, timeline and
    /// recent events; measured in docs/soak.md), so the default bounds match state near 3 GB;
    /// a match fans subscribed to since its last change also keeps its snapshot's JSON.
    #[arg(long, env = "SCORELINE_MAX_MATCHES", default_value_t = 20_000)]
    pub max_matches: usize,

    /// How long a finished match stays available, in seconds.
    #[arg(long, env = "SCORELINE_FINISHED_RETENTION_SECS", default_value_t = 6 * 3600)]
    pub finished_retention_secs: u64,

    /// How often fans watching a match are counted over every instance and told the count, in
    /// milliseconds (see `audience.rs`): the cost of a round is bounded by the watchers, so this
    /// trades freshness against Redis round trips.
    #[arg(long, env = "SCORELINE_AUDIENCE_INTERVAL_MILLIS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(50..))]
    pub audience_interval_millis: u64,

    /// Seconds between WebSocket pings.
    #[arg(long, env = "SCORELINE_HEARTBEAT_SECS", default_value_t = 15)]
    pub heartbeat_secs: u64,

    /// A connection with no frame from the client (not even a pong) for this long is closed.
    #[arg(long, env = "SCORELINE_IDLE_TIMEOUT_SECS", default_value_t = 45)]
    pub idle_timeout_secs: u64,

    /// Seconds a new connection has to send its whole HTTP request (the WebSocket upgrade
    /// included) before it is answered 408 and closed, so idle sockets cannot hold slots. In a
    /// storm of 100,000 reconnecting clients on a loaded machine, 5 s was too short for one in
    /// eight of them (docs/benchmarks.md, C100k).
    #[arg(long, env = "SCORELINE_REQUEST_TIMEOUT_SECS", default_value_t = 5)]
    pub request_timeout_secs: u64,

    /// Seconds to let connections drain at shutdown.
    #[arg(long, env = "SCORELINE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// Worker threads serving connections, each accepting its own; the first also runs the hub
    /// and the Redis subscriber. Defaults to one per core: a goal's burst is then written on
    /// every core, and no thread competes with the workers (docs/benchmarks.md).
    #[arg(long, env = "SCORELINE_WORKERS")]
    pub workers: Option<usize>,

    /// PEM certificate chain; with --tls-key, serves HTTPS and WSS.
    #[arg(long, env = "SCORELINE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "SCORELINE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// The defaults, as if started with no flags and no environment, whatever `SCORELINE_*`
    /// variables are set.
    pub fn defaults() -> Config {
        // Parsing an empty command line cannot fail: every argument has a default or is optional.
        Config::from_flags(["scoreline-service"]).unwrap_or_else(|error| error.exit())
    }

    /// Parses command-line flags (the first item is the program name) ignoring the
    /// environment: what the service would run with if no `SCORELINE_*` variable were set.
    pub fn from_flags<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        Config::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// The broker actually used.
    pub fn broker_kind(&self) -> BrokerKind {
        self.broker.unwrap_or(if self.redis_url.is_some() {
            BrokerKind::Redis
        } else {
            BrokerKind::Memory
        })
    }

    /// The Redis URL: as given, or the local default when `--broker redis` is given alone.
    pub fn redis_url(&self) -> String {
        self.redis_url
            .clone()
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_unless_redis_is_configured() {
        let config = Config::from_flags(["x"]).unwrap();
        assert_eq!(config.broker_kind(), BrokerKind::Memory);
        let config = Config::from_flags(["x", "--redis-url", "redis://h/"]).unwrap();
        assert_eq!(config.broker_kind(), BrokerKind::Redis);
        let config = Config::from_flags(["x", "--broker", "redis"]).unwrap();
        assert_eq!(config.redis_url(), "redis://127.0.0.1:6379/");
    }

    #[test]
    fn tls_needs_both_files() {
        assert!(Config::from_flags(["x", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::from_flags(["x", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_ok());
    }

    /// Variables that would change the defaults if they were read.
    const ENVIRONMENT: [(&str, &str); 3] = [
        ("SCORELINE_MAX_TOPICS", "3"),
        ("SCORELINE_REDIS_URL", "redis://elsewhere:1/"),
        ("SCORELINE_LISTEN", "0.0.0.0:1"),
    ];

    #[test]
    fn defaults_ignore_the_environment_which_only_the_command_line_reads() {
        // Setting variables in this process would race with other tests reading the
        // environment (and needs `unsafe`), so a copy of this test binary runs the check below
        // with them set.
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "config::tests::checked_with_the_environment_set",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .envs(ENVIRONMENT)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the check did not run:\n{stdout}"
        );
    }

    #[test]
    #[ignore = "run by defaults_ignore_the_environment_which_only_the_command_line_reads, with \
                the environment set"]
    fn checked_with_the_environment_set() {
        for (name, value) in ENVIRONMENT {
            assert_eq!(std::env::var(name).as_deref(), Ok(value), "{name}");
        }
        // The command line reads them...
        let parsed = Config::try_parse_from(["x"]).unwrap();
        assert_eq!(parsed.max_topics, 3);
        assert_eq!(parsed.redis_url.as_deref(), Some("redis://elsewhere:1/"));
        // ...the defaults and flag-only parsing do not.
        for config in [Config::defaults(), Config::from_flags(["x"]).unwrap()] {
            assert_eq!(config.max_topics, 64);
            assert_eq!(config.redis_url, None);
            assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        }
    }
}
