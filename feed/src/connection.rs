//! The one way Scoreline connects to Redis: a URL that names either one server or a master kept by
//! Redis Sentinel ([`RedisTarget`]), and a cloneable command connection that (re)connects by
//! itself ([`RedisConnection`]), plus pub/sub connections to the same place
//! ([`RedisConnection::open_pubsub`]).
//!
//! # URLs
//!
//! | form | meaning |
//! | --- | --- |
//! | `redis://[[user]:password@]host[:port][/db]` | one server (port 6379, db 0 by default) |
//! | `redis+unix:///path/to/redis.sock[?db=N]`, `unix:///…` | one server on a Unix socket |
//! | `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]` | the master Sentinel knows as `master-name` (sentinel port 26379 by default) |
//!
//! With Sentinel, the user and password in the URL are the master's (and its replicas'); when the
//! sentinels themselves require a password, add `?sentinel_password=…` (and
//! `&sentinel_username=…`). Reserved characters in names and passwords are written `%XX`.
//! `rediss://` (TLS) is refused with an error: this build has no TLS to Redis.
//!
//! # Why not `redis::aio::ConnectionManager`
//!
//! A connection manager reconnects to a fixed address. Under Sentinel the master's address changes
//! at a failover, and a connection to a demoted master still answers: reads work, writes answer
//! `READONLY`. [`RedisConnection`] asks the sentinels for the current master on every
//! (re)connect, and drops its connection after a connection error, a timeout, or a `READONLY` or
//! `MASTERDOWN` answer, so the next command goes to whoever is master then. For a plain
//! `redis://` URL it is simply a reconnecting connection.
//!
//! It never runs a command twice by itself: a command may have run before its connection broke,
//! and only the caller knows whether running it again is harmless (the replayer looks in the
//! match's history first; [`Publisher`](crate::Publisher) puts a forgotten match back).

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind,
    IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};

/// The port a sentinel listens on when the URL does not say.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// The Sentinel URL form, repeated in error messages.
const SENTINEL_SYNTAX: &str =
    "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]";

/// Where Scoreline's Redis is: one server, or a master managed by Redis Sentinel. Parsed from a
/// URL ([module docs](self)); its `Display` form never shows a password.
#[derive(Clone)]
pub struct RedisTarget {
    kind: TargetKind,
}

#[derive(Clone)]
enum TargetKind {
    /// One server, as the `redis` crate reads a `redis://` URL.
    Server(ConnectionInfo),
    /// A master found through sentinels.
    Sentinel(SentinelTarget),
}

/// A `redis+sentinel://` URL, parsed.
#[derive(Clone, PartialEq, Eq)]
struct SentinelTarget {
    /// `(host, port)` of each sentinel, in the URL's order (asked in that order).
    sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the master under (`sentinel monitor <name> …`).
    master_name: String,
    /// The database selected on the master.
    db: i64,
    /// The master's ACL user, if any.
    username: Option<String>,
    /// The master's password, if any.
    password: Option<String>,
    /// The sentinels' ACL user, if any.
    sentinel_username: Option<String>,
    /// The sentinels' password, if any.
    sentinel_password: Option<String>,
}

/// A Redis URL Scoreline cannot use. Messages never repeat a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisUrlError {
    /// Nothing was given.
    #[error("the Redis URL is empty")]
    Empty,
    /// The URL does not start with `<scheme>://`.
    #[error("`{0}` is not a Redis URL: expected redis://host:port/db or {SENTINEL_SYNTAX}")]
    NoScheme(String),
    /// A scheme Scoreline does not know.
    #[error(
        "unknown Redis URL scheme `{0}://`: expected redis://, redis+unix://, unix:// or redis+sentinel://"
    )]
    UnknownScheme(String),
    /// `rediss://` or `rediss+sentinel://`.
    #[error(
        "`{0}://` asks for TLS, which this build of Scoreline does not have: use redis:// on a private network, or a local TLS tunnel (e.g. stunnel) to the server"
    )]
    TlsUnsupported(String),
    /// The `redis` crate refused a one-server URL.
    #[error("invalid Redis URL")]
    Invalid(#[source] RedisError),
    /// A Sentinel URL without any sentinel address.
    #[error("a Sentinel URL needs at least one sentinel address: {SENTINEL_SYNTAX}")]
    NoSentinels,
    /// One sentinel address is not `host[:port]`.
    #[error("sentinel address `{address}`: {reason} (expected host[:port], e.g. 10.0.0.5:26379)")]
    BadSentinelAddress {
        /// The address as written.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Sentinel URL without a master name after the addresses.
    #[error("a Sentinel URL names the master after the addresses: {SENTINEL_SYNTAX}")]
    NoMasterName,
    /// The master name has a space or a control character, which no Sentinel configuration can
    /// name.
    #[error("the master name must not contain spaces or control characters")]
    BadMasterName,
    /// The database is not a non-negative integer.
    #[error("the database must be a number 0 or above, not `{0}`")]
    BadDatabase(String),
    /// More path segments than `master-name/db`.
    #[error("unexpected `{0}` after the database: {SENTINEL_SYNTAX}")]
    TrailingPath(String),
    /// A query option Scoreline does not know.
    #[error(
        "unknown option `{0}` in a Sentinel URL: expected sentinel_username or sentinel_password"
    )]
    UnknownOption(String),
    /// A `%` escape that is not `%` and two hex digits, or does not decode to UTF-8.
    #[error("bad %-escape in the {0} of the Redis URL")]
    BadEscape(&'static str),
    /// The URL has a `#fragment`, which means nothing to Redis.
    #[error("a Redis URL has no #fragment")]
    Fragment,
    /// The `redis` crate refused the Sentinel settings.
    #[error("the Sentinel settings were refused")]
    SentinelRefused(#[source] RedisError),
}

impl RedisTarget {
    /// Parses a Redis URL ([module docs](self)).
    pub fn parse(url: &str) -> Result<RedisTarget, RedisUrlError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(RedisUrlError::Empty);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            // Never echo what may hold a password: only up to an `@`.
            let shown = url.rsplit('@').next().unwrap_or_default();
            return Err(RedisUrlError::NoScheme(shown.to_owned()));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "redis" | "redis+unix" | "unix" => url
                .into_connection_info()
                .map(|info| RedisTarget {
                    kind: TargetKind::Server(info),
                })
                .map_err(RedisUrlError::Invalid),
            "redis+sentinel" => Ok(RedisTarget {
                kind: TargetKind::Sentinel(parse_sentinel(rest)?),
            }),
            "rediss" | "rediss+sentinel" => Err(RedisUrlError::TlsUnsupported(scheme)),
            _ => Err(RedisUrlError::UnknownScheme(scheme)),
        }
    }

    /// Whether the master is found through Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.kind, TargetKind::Sentinel(_))
    }

    /// The database commands run against.
    pub fn db(&self) -> i64 {
        match &self.kind {
            TargetKind::Server(info) => info.redis_settings().db(),
            TargetKind::Sentinel(sentinel) => sentinel.db,
        }
    }

    /// The sentinel addresses (`host:port`), empty for one server.
    pub fn sentinels(&self) -> Vec<String> {
        match &self.kind {
            TargetKind::Server(_) => Vec::new(),
            TargetKind::Sentinel(sentinel) => sentinel
                .sentinels
                .iter()
                .map(|(host, port)| host_port(host, *port))
                .collect(),
        }
    }

    /// The Sentinel master name, `None` for one server.
    pub fn master_name(&self) -> Option<&str> {
        match &self.kind {
            TargetKind::Server(_) => None,
            TargetKind::Sentinel(sentinel) => Some(&sentinel.master_name),
        }
    }

    fn connector(&self) -> Result<Connector, RedisUrlError> {
        match &self.kind {
            TargetKind::Server(info) => Client::open(info.clone())
                .map(Connector::Server)
                .map_err(RedisUrlError::Invalid),
            TargetKind::Sentinel(sentinel) => {
                let addresses = sentinel
                    .sentinels
                    .iter()
                    .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
                let mut builder = SentinelClientBuilder::new(
                    addresses,
                    &sentinel.master_name,
                    SentinelServerType::Master,
                )
                .map_err(RedisUrlError::SentinelRefused)?
                .set_client_to_redis_db(sentinel.db);
                if let Some(username) = &sentinel.username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = &sentinel.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(username) = &sentinel.sentinel_username {
                    builder = builder.set_client_to_sentinel_username(username);
                }
                if let Some(password) = &sentinel.sentinel_password {
                    builder = builder.set_client_to_sentinel_password(password);
                }
                let client = builder.build().map_err(RedisUrlError::SentinelRefused)?;
                Ok(Connector::Sentinel {
                    client: Box::new(client),
                    master_name: sentinel.master_name.clone(),
                })
            }
        }
    }
}

impl std::str::FromStr for RedisTarget {
    type Err = RedisUrlError;

    fn from_str(url: &str) -> Result<RedisTarget, RedisUrlError> {
        RedisTarget::parse(url)
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TargetKind::Server(info) => {
                write!(f, "{} db {}", info.addr(), info.redis_settings().db())
            }
            TargetKind::Sentinel(sentinel) => write!(
                f,
                "Sentinel master `{}` db {} via {}",
                sentinel.master_name,
                sentinel.db,
                self.sentinels().join(",")
            ),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Display leaves passwords out; a derived Debug would print them.
        write!(f, "RedisTarget({self})")
    }
}

/// Parses what follows `redis+sentinel://`.
fn parse_sentinel(rest: &str) -> Result<SentinelTarget, RedisUrlError> {
    if rest.contains('#') {
        return Err(RedisUrlError::Fragment);
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // The password may hold an unescaped `@`; the addresses never do.
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            let user = decode(user, "user name")?;
            let password = password.map(|text| decode(text, "password")).transpose()?;
            (
                (!user.is_empty()).then_some(user),
                password.filter(|p| !p.is_empty()),
            )
        }
    };
    let sentinels = hosts
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(parse_address)
        .collect::<Result<Vec<_>, _>>()?;
    if sentinels.is_empty() {
        return Err(RedisUrlError::NoSentinels);
    }
    let mut segments = path.split('/');
    let master_name = decode(segments.next().unwrap_or_default(), "master name")?;
    if master_name.is_empty() {
        return Err(RedisUrlError::NoMasterName);
    }
    if master_name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RedisUrlError::BadMasterName);
    }
    let db = match segments.next() {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| RedisUrlError::BadDatabase(text.to_owned()))?,
    };
    let trailing: Vec<&str> = segments.filter(|segment| !segment.is_empty()).collect();
    if !trailing.is_empty() {
        return Err(RedisUrlError::TrailingPath(trailing.join("/")));
    }
    let mut target = SentinelTarget {
        sentinels,
        master_name,
        db,
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sentinel_username" => {
                target.sentinel_username =
                    Some(decode(value, "sentinel user name")?).filter(|v| !v.is_empty());
            }
            "sentinel_password" => {
                target.sentinel_password =
                    Some(decode(value, "sentinel password")?).filter(|v| !v.is_empty());
            }
            other => return Err(RedisUrlError::UnknownOption(other.to_owned())),
        }
    }
    Ok(target)
}

/// `host[:port]` or `[ipv6][:port]`.
fn parse_address(address: &str) -> Result<(String, u16), RedisUrlError> {
    let bad = |reason| RedisUrlError::BadSentinelAddress {
        address: address.to_owned(),
        reason,
    };
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address needs its closing `]`"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected `:port` after `]`"))?,
                ),
            ),
        }
    } else {
        match address.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@[]".contains(c))
    {
        return Err(bad("the host has a character a host name cannot have"));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

/// Decodes `%XX` escapes.
fn decode(text: &str, what: &'static str) -> Result<String, RedisUrlError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or(RedisUrlError::BadEscape(what))?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| RedisUrlError::BadEscape(what))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Timeouts of a [`RedisConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Most time one (re)connect may take, asking the sentinels included.
    pub connect_timeout: Duration,
    /// Most time Redis may take to answer one command; a connection that took longer is
    /// dropped (the server may be hung or cut off) and the next command connects afresh.
    pub response_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// A command connection to Scoreline's Redis (one server, or the current Sentinel master) that
/// connects when first used and again after it broke.
///
/// Clones share one multiplexed connection, so any number of tasks may use it at once. A failed
/// command returns its error and leaves the connection to be made again by the next command:
/// nothing is retried behind the caller's back (see the [module docs](self)). It implements
/// [`redis::aio::ConnectionLike`], so it serves [`Publisher`](crate::Publisher),
/// [`read_history`](crate::read_history), scripts and any typed command.
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
}

/// What the clones of one [`RedisConnection`] share.
struct Shared {
    /// Where to connect: the server, or the sentinels and the master's name.
    target: RedisTarget,
    /// The connect and response timeouts.
    settings: ConnectionSettings,
    /// The connection in use and the outcome of the last attempt; locked only briefly, never
    /// across an await.
    state: Mutex<State>,
    /// Held while connecting, so one task connects at a time and the others wait for its result;
    /// holds the sentinel client, which keeps its connections to the sentinels between lookups.
    connector: tokio::sync::Mutex<Connector>,
}

/// The connection in use and what the last attempts did.
#[derive(Default)]
struct State {
    /// The connection commands go to; `None` until the first command, and again after a
    /// failure showed it is of no more use.
    live: Option<Live>,
    /// Connection attempts made (successful or not).
    attempts: u64,
    /// Why the last attempt failed, handed to the tasks that waited for it.
    last_failure: Option<RedisError>,
    /// The node last connected to, to tell a master change from a reconnect.
    last_node: Option<String>,
    /// Connections made.
    connects: u64,
}

/// A connection in use.
#[derive(Clone)]
struct Live {
    /// Which connection this is (its `connects` count), so a failure reported late does not drop
    /// a newer connection.
    id: u64,
    /// The connection itself, cheap to clone (a handle to its driver task).
    connection: MultiplexedConnection,
}

/// How to find the node to connect to.
enum Connector {
    /// Always the same server.
    Server(Client),
    /// Whatever master the sentinels name at the time.
    Sentinel {
        /// The `redis` crate's sentinel client (boxed: it is large and used only to connect).
        client: Box<SentinelClient>,
        /// For error messages.
        master_name: String,
    },
}

impl Connector {
    /// The node to connect to: the server, or the master the sentinels name now.
    async fn node(&mut self) -> RedisResult<Client> {
        match self {
            Connector::Server(client) => Ok(client.clone()),
            Connector::Sentinel {
                client,
                master_name,
            } => client.async_get_client().await.map_err(|source| {
                // Counted as a connection failure (transient), which it is: during a failover no
                // sentinel names a reachable master for a few seconds.
                let no_master = NoMaster {
                    master_name: master_name.clone(),
                    last: source,
                };
                RedisError::from(io::Error::new(io::ErrorKind::NotConnected, no_master))
            }),
        }
    }
}

/// No sentinel named a reachable master (during a failover, or all sentinels down).
///
/// It travels to callers inside a `RedisError` (as the payload of an `io::Error`, so that it
/// counts as a connection failure), through which error-chain printers disagree on what the
/// source is; so the last sentinel answer is part of the message, shown once by every printer.
#[derive(Debug, thiserror::Error)]
#[error("no sentinel names a reachable master `{master_name}` right now (last answer: {last})")]
struct NoMaster {
    /// The master asked for.
    master_name: String,
    /// The last sentinel's (or candidate master's) answer.
    last: RedisError,
}

impl RedisConnection {
    /// A connection to the Redis named by `url` ([module docs](self)). Nothing is connected
    /// until the first command: a service may start while Redis is down.
    pub fn open(url: &str, settings: ConnectionSettings) -> Result<RedisConnection, RedisUrlError> {
        RedisConnection::new(RedisTarget::parse(url)?, settings)
    }

    /// A connection to `target`; nothing is connected until the first command.
    pub fn new(
        target: RedisTarget,
        settings: ConnectionSettings,
    ) -> Result<RedisConnection, RedisUrlError> {
        let connector = target.connector()?;
        Ok(RedisConnection {
            shared: Arc::new(Shared {
                target,
                settings,
                state: Mutex::new(State::default()),
                connector: tokio::sync::Mutex::new(connector),
            }),
        })
    }

    /// Where this connection goes.
    pub fn target(&self) -> &RedisTarget {
        &self.shared.target
    }

    /// The node (`host:port`) the connection is on now, if connected.
    pub fn node(&self) -> Option<String> {
        let state = self.shared.state();
        state.live.as_ref().and(state.last_node.clone())
    }

    /// Connections made so far (the first one and every reconnect).
    pub fn connects(&self) -> u64 {
        self.shared.state().connects
    }

    /// Connects now if not connected, e.g. to report an unreachable Redis at start.
    pub async fn connect(&self) -> RedisResult<()> {
        self.shared.live().await.map(drop)
    }

    /// A new pub/sub connection to the current master (or the server), for a subscriber.
    ///
    /// Each call resolves the master afresh, so a subscriber that lost its connection at a
    /// failover subscribes on the new master. A subscription on a demoted master would still
    /// receive what the new master publishes (replicas pass `PUBLISH` on), but subscribers
    /// should check their subscription delivers (the service sends itself a canary).
    pub async fn open_pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        let shared = &self.shared;
        // Boxed for the same reason as `Shared::connect`.
        let attempt: RedisFuture<'_, redis::aio::PubSub> = Box::pin(async {
            let client = shared.connector.lock().await.node().await?;
            client.get_async_pubsub().await
        });
        match tokio::time::timeout(shared.settings.connect_timeout, attempt).await {
            Ok(pubsub) => pubsub,
            Err(_) => Err(timed_out("connecting a subscriber", shared)),
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("target", &self.shared.target)
            .field("node", &self.node())
            .finish()
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Never held across an await or code that can panic midway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection in use, connecting first when there is none.
    async fn live(&self) -> RedisResult<Live> {
        let attempts_before = {
            let state = self.state();
            if let Some(live) = &state.live {
                return Ok(live.clone());
            }
            state.attempts
        };
        let mut connector = self.connector.lock().await;
        {
            let state = self.state();
            if let Some(live) = &state.live {
                return Ok(live.clone());
            }
            // Someone tried while this task waited, and failed: that answer is fresh enough, and
            // a queue of tasks must not try one after another against a Redis that is down.
            if state.attempts != attempts_before
                && let Some(failure) = &state.last_failure
            {
                return Err(failure.clone());
            }
        }
        let outcome = self.connect(&mut connector).await;
        let mut state = self.state();
        state.attempts += 1;
        match outcome {
            Ok((connection, node)) => {
                state.connects += 1;
                let live = Live {
                    id: state.connects,
                    connection,
                };
                if let Some(before) = state.last_node.as_ref().filter(|before| **before != node) {
                    tracing::info!(target = %self.target, %node, %before, "Redis: now connected to another node");
                }
                state.last_node = Some(node);
                state.last_failure = None;
                state.live = Some(live.clone());
                Ok(live)
            }
            Err(error) => {
                state.last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Connects to the node (under Sentinel, the master named now). Boxed: asking the sentinels
    /// is a deep future, which would otherwise be part of every caller's future type.
    fn connect<'a>(
        &'a self,
        connector: &'a mut Connector,
    ) -> RedisFuture<'a, (MultiplexedConnection, String)> {
        Box::pin(async move {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.settings.connect_timeout))
                .set_response_timeout(Some(self.settings.response_timeout));
            let attempt = async {
                let client = connector.node().await?;
                let node = client.get_connection_info().addr().to_string();
                let connection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok((connection, node))
            };
            match tokio::time::timeout(self.settings.connect_timeout, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Err(timed_out("connecting", self)),
            }
        })
    }

    /// After a command: drop the connection it ran on if the answer shows it is of no more use.
    /// `answers` are the replies that came back (a server's error reply arrives as a value and
    /// becomes an `Err` only when the caller converts it).
    fn judge<'v>(
        &self,
        live: &Live,
        outcome: Result<impl IntoIterator<Item = &'v Value>, &RedisError>,
    ) {
        let reason = match outcome {
            Err(error) => needs_new_connection(error).then(|| error.to_string()),
            Ok(answers) => answers.into_iter().find_map(|answer| match answer {
                Value::ServerError(error) if is_demoted(error.code()) => Some(format!(
                    "{} {}",
                    error.code(),
                    error.details().unwrap_or_default()
                )),
                _ => None,
            }),
        };
        let Some(reason) = reason else { return };
        let mut state = self.state();
        if state
            .live
            .as_ref()
            .is_some_and(|current| current.id == live.id)
        {
            tracing::debug!(target = %self.target, %reason, "Redis: dropping the connection; the next command connects again");
            state.live = None;
        }
    }
}

/// Whether an error means the connection is broken or on the wrong node: a connection failure or
/// timeout, or a server that is not (or no longer) a writable master.
fn needs_new_connection(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
        || error.code().is_some_and(is_demoted)
}

/// Whether a server error code says the node is not a writable master (any more): a replica
/// refusing a write, or one that lost its master and serves nothing.
fn is_demoted(code: &str) -> bool {
    matches!(code, "READONLY" | "MASTERDOWN")
}

fn timed_out(doing: &str, shared: &Shared) -> RedisError {
    let message = format!(
        "{doing} to Redis ({}) took longer than {:?}",
        shared.target, shared.settings.connect_timeout
    );
    RedisError::from(io::Error::new(io::ErrorKind::TimedOut, message))
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut live = self.shared.live().await?;
            let outcome = live.connection.req_packed_command(cmd).await;
            self.shared
                .judge(&live, outcome.as_ref().map(std::iter::once));
            outcome
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut live = self.shared.live().await?;
            let outcome = live
                .connection
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.shared.judge(&live, outcome.as_ref());
            outcome
        })
    }

    fn get_db(&self) -> i64 {
        self.shared.target.db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(url: &str) -> SentinelTarget {
        match RedisTarget::parse(url).map(|target| target.kind) {
            Ok(TargetKind::Sentinel(sentinel)) => sentinel,
            Ok(TargetKind::Server(_)) => panic!("{url}: parsed as one server"),
            Err(error) => panic!("{url}: {error}"),
        }
    }

    fn error(url: &str) -> RedisUrlError {
        match RedisTarget::parse(url) {
            Ok(target) => panic!("{url}: accepted as {target}"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_sentinel_url_names_sentinels_master_and_db() {
        let parsed = sentinel("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,sentinel-3/scores/2");
        assert_eq!(
            parsed.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("10.0.0.2".to_owned(), 26380),
                ("sentinel-3".to_owned(), DEFAULT_SENTINEL_PORT),
            ]
        );
        assert_eq!(parsed.master_name, "scores");
        assert_eq!(parsed.db, 2);
        assert_eq!((parsed.username, parsed.password), (None, None));
    }

    #[test]
    fn the_database_defaults_to_zero_and_a_trailing_slash_is_fine() {
        assert_eq!(sentinel("redis+sentinel://h:1/m").db, 0);
        assert_eq!(sentinel("redis+sentinel://h:1/m/").db, 0);
        assert_eq!(sentinel("redis+sentinel://h:1/m/3/").db, 3);
    }

    #[test]
    fn credentials_are_the_masters_and_the_query_holds_the_sentinels() {
        let parsed = sentinel(
            "redis+sentinel://app:p%40ss@h1,h2/m?sentinel_password=s%26cret&sentinel_username=sent",
        );
        assert_eq!(parsed.username.as_deref(), Some("app"));
        assert_eq!(parsed.password.as_deref(), Some("p@ss"));
        assert_eq!(parsed.sentinel_username.as_deref(), Some("sent"));
        assert_eq!(parsed.sentinel_password.as_deref(), Some("s&cret"));
        let password_only = sentinel("redis+sentinel://:secret@h/m");
        assert_eq!(password_only.username, None);
        assert_eq!(password_only.password.as_deref(), Some("secret"));
        // An unescaped `@` in the password still leaves the addresses intact.
        let raw = sentinel("redis+sentinel://:a@b@h:7/m");
        assert_eq!(raw.password.as_deref(), Some("a@b"));
        assert_eq!(raw.sentinels, vec![("h".to_owned(), 7)]);
    }

    #[test]
    fn ipv6_sentinels_and_escaped_master_names() {
        let parsed = sentinel("redis+sentinel://[::1]:26380,[fe80::2]/my%2Dmaster");
        assert_eq!(
            parsed.sentinels,
            vec![("::1".to_owned(), 26380), ("fe80::2".to_owned(), 26379)]
        );
        assert_eq!(parsed.master_name, "my-master");
        // A space must be escaped in the URL, and is then refused: no sentinel configuration
        // can name it.
        assert!(matches!(
            error("redis+sentinel://h/my%20master"),
            RedisUrlError::BadMasterName
        ));
        assert_eq!(sentinel("redis+sentinel://h/m%2Fx").master_name, "m/x");
    }

    #[test]
    fn bad_sentinel_urls_say_what_is_wrong() {
        type Check = fn(&RedisUrlError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, RedisUrlError::Empty)),
            ("127.0.0.1:6379", |e| {
                matches!(e, RedisUrlError::NoScheme(_))
            }),
            (
                "http://h/",
                |e| matches!(e, RedisUrlError::UnknownScheme(s) if s == "http"),
            ),
            ("rediss://h:6380/", |e| {
                matches!(e, RedisUrlError::TlsUnsupported(_))
            }),
            ("rediss+sentinel://h/m", |e| {
                matches!(e, RedisUrlError::TlsUnsupported(_))
            }),
            ("redis+sentinel:///m", |e| {
                matches!(e, RedisUrlError::NoSentinels)
            }),
            ("redis+sentinel://,/m", |e| {
                matches!(e, RedisUrlError::NoSentinels)
            }),
            ("redis+sentinel://h:1", |e| {
                matches!(e, RedisUrlError::NoMasterName)
            }),
            ("redis+sentinel://h:1/", |e| {
                matches!(e, RedisUrlError::NoMasterName)
            }),
            (
                "redis+sentinel://h:0/m",
                |e| matches!(e, RedisUrlError::BadSentinelAddress { address, .. } if address == "h:0"),
            ),
            ("redis+sentinel://h:x/m", |e| {
                matches!(e, RedisUrlError::BadSentinelAddress { .. })
            }),
            ("redis+sentinel://h:70000/m", |e| {
                matches!(e, RedisUrlError::BadSentinelAddress { .. })
            }),
            ("redis+sentinel://:1/m", |e| {
                matches!(e, RedisUrlError::BadSentinelAddress { .. })
            }),
            ("redis+sentinel://[::1/m", |e| {
                matches!(e, RedisUrlError::BadSentinelAddress { .. })
            }),
            (
                "redis+sentinel://h/m/-1",
                |e| matches!(e, RedisUrlError::BadDatabase(d) if d == "-1"),
            ),
            ("redis+sentinel://h/m/one", |e| {
                matches!(e, RedisUrlError::BadDatabase(_))
            }),
            (
                "redis+sentinel://h/m/1/x",
                |e| matches!(e, RedisUrlError::TrailingPath(p) if p == "x"),
            ),
            (
                "redis+sentinel://h/m?password=x",
                |e| matches!(e, RedisUrlError::UnknownOption(o) if o == "password"),
            ),
            ("redis+sentinel://:%zz@h/m", |e| {
                matches!(e, RedisUrlError::BadEscape("password"))
            }),
            ("redis+sentinel://h/m#x", |e| {
                matches!(e, RedisUrlError::Fragment)
            }),
        ];
        for (url, expected) in cases {
            let found = error(url);
            assert!(expected(&found), "{url:?} gave {found:?}");
            assert!(!found.to_string().is_empty());
        }
    }

    #[test]
    fn errors_and_display_never_show_a_password() {
        let shown = error("redis+sentinel://:hunter2@h/m/x").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = error("hunter2@127.0.0.1:6379").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        let target =
            RedisTarget::parse("redis+sentinel://u:hunter2@h1,h2:5/m/1?sentinel_password=hunter3")
                .unwrap();
        for shown in [target.to_string(), format!("{target:?}")] {
            assert!(!shown.contains("hunter"), "{shown}");
            assert!(
                shown.contains("`m`") && shown.contains("h1:26379,h2:5"),
                "{shown}"
            );
        }
        let server = RedisTarget::parse("redis://:hunter2@127.0.0.1:6390/4").unwrap();
        assert_eq!(server.to_string(), "127.0.0.1:6390 db 4");
        assert!(!format!("{server:?}").contains("hunter2"));
    }

    #[test]
    fn plain_urls_are_the_redis_crates() {
        let server = RedisTarget::parse("redis://127.0.0.1:6390/2").unwrap();
        assert!(!server.is_sentinel());
        assert_eq!(server.db(), 2);
        assert!(server.sentinels().is_empty() && server.master_name().is_none());
        assert!(RedisTarget::parse("REDIS://127.0.0.1/").is_ok());
        assert!(RedisTarget::parse("redis+unix:///run/redis.sock").is_ok());
        assert!(matches!(
            error("redis://127.0.0.1:notaport/"),
            RedisUrlError::Invalid(_)
        ));
        let sentinel = RedisTarget::parse("redis+sentinel://a,b:2/m/5").unwrap();
        assert!(sentinel.is_sentinel());
        assert_eq!(sentinel.db(), 5);
        assert_eq!(sentinel.sentinels(), vec!["a:26379", "b:2"]);
        assert_eq!(sentinel.master_name(), Some("m"));
    }

    #[test]
    fn connection_breaks_and_demoted_masters_call_for_a_new_connection() {
        let io = RedisError::from(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        assert!(needs_new_connection(&io));
        let timeout = RedisError::from(io::Error::new(io::ErrorKind::TimedOut, "slow"));
        assert!(needs_new_connection(&timeout));
        let read_only = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(needs_new_connection(&read_only));
        let script = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "a script failed",
        ));
        assert!(!needs_new_connection(&script));
        let no_script = RedisError::from((ErrorKind::Server(ServerErrorKind::NoScript), "x"));
        assert!(!needs_new_connection(&no_script));
    }
}
