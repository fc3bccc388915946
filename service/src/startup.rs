//! [`Application`]: the one way to start the service. `main`, the demo and every test build it
//! from a [`Config`], read the port it bound, and run it until a shutdown future fires.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_http::HttpService;
use actix_http::KeepAlive;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::{App, web};
use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, RedisBroker, RedisSettings};
use crate::config::{BrokerKind, Config};
use crate::hub::{self, Command, HubHandle, HubLimits};
use crate::mailbox::MailboxLimits;
use crate::matches::StoreLimits;
use crate::session::SessionSettings;
use crate::{routes, telemetry, upgrade};

/// Commands the hub may have waiting; beyond this, sessions wait and broker events are dropped
/// (and counted) rather than growing memory.
const HUB_QUEUE: usize = 65_536;

/// How long start-up waits for Redis to hand back stored snapshots before serving anyway.
const INITIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// What every HTTP handler and session shares.
pub struct AppState {
    /// The configuration the service started with.
    pub config: Config,
    /// The hub.
    pub hub: HubHandle,
    /// Where HTTP-published events go.
    pub broker: Broker,
    /// Per-session settings.
    pub session: SessionSettings,
    /// Open connections, against the limit.
    pub connections: Arc<ConnectionSlots>,
    /// Fired first at shutdown: every session sends close 1001.
    pub sessions_shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for their close frames.
    pub sessions: TaskTracker,
}

/// Counts open WebSocket connections against `max_connections`.
#[derive(Debug)]
pub struct ConnectionSlots {
    /// Connections open now.
    pub open: AtomicUsize,
    max: usize,
}

/// One open connection; frees its slot when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    /// Takes a slot if one is free.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if !taken {
            return None;
        }
        metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
        Some(ConnectionSlot(Arc::clone(self)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

/// A built service, bound and ready to run.
pub struct Application {
    address: SocketAddr,
    server: actix_web::dev::Server,
    sessions_shutdown: CancellationToken,
    sessions: TaskTracker,
    shutdown_timeout: Duration,
    background_shutdown: CancellationToken,
    background: Vec<JoinHandle<()>>,
}

impl Application {
    /// Binds the listener, starts the hub and the broker, and prepares the HTTP server. With Redis,
    /// stored snapshots are loaded first (briefly) so fans see scores from the first request.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        telemetry::metrics_handle();
        let sessions_shutdown = CancellationToken::new();
        let background_shutdown = CancellationToken::new();
        let limits = HubLimits {
            max_topics: config.max_topics,
            max_snapshots: config.max_snapshots,
            store: StoreLimits {
                max_matches: config.max_matches,
                finished_retention_ms: config.finished_retention_secs.saturating_mul(1000),
                recent_events: config.resume_events,
            },
        };
        let kind = config.broker_kind();
        let (store, stored) = match kind {
            BrokerKind::Redis => {
                let (sender, receiver) = mpsc::channel(4096);
                (Some(sender), Some(receiver))
            }
            BrokerKind::Memory => (None, None),
        };
        // Gaps are filled from Redis histories; the in-process broker has none.
        let (backfill, backfills) = match kind {
            BrokerKind::Redis => {
                let (sender, receiver) = mpsc::channel(4096);
                (Some(sender), Some(receiver))
            }
            BrokerKind::Memory => (None, None),
        };
        let (hub, hub_task) = hub::spawn(
            limits,
            HUB_QUEUE,
            store,
            backfill,
            background_shutdown.clone(),
        );
        let mut background = vec![hub_task];

        let broker = match (kind, stored, backfills) {
            (BrokerKind::Redis, Some(stored), Some(backfills)) => {
                let redis = RedisBroker::new(
                    RedisSettings {
                        url: config.redis_url(),
                        channel_prefix: config.channel_prefix.clone(),
                        key_prefix: config.key_prefix.clone(),
                        finished_ttl_secs: config.finished_retention_secs,
                        history_len: config.history_len,
                    },
                    hub.clone(),
                )
                .context("invalid Redis configuration")?;
                load_initial_snapshots(&redis, &hub, config.max_matches).await;
                background.extend(redis.spawn(
                    hub.clone(),
                    stored,
                    backfills,
                    background_shutdown.clone(),
                ));
                Broker::Redis(redis)
            }
            _ => {
                tracing::warn!(
                    "=== IN-PROCESS BROKER: no Redis configured. Events published through \
                     POST /api/publish reach only this instance, and nothing survives a restart. \
                     Use --redis-url for production. ==="
                );
                Broker::Memory { hub: hub.clone() }
            }
        };

        let listeners = bind_listeners(&config)?;
        let address = listeners[0].local_addr()?;
        let session = SessionSettings {
            heartbeat: Duration::from_secs(config.heartbeat_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            max_requests_per_sec: config.max_requests_per_sec,
            mailbox: MailboxLimits {
                max_critical: config.max_queued_frames,
                max_frames: config.max_queued_frames.saturating_mul(4),
            },
        };
        let workers = config.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|cores| cores.get().saturating_sub(1).max(1))
                .unwrap_or(1)
        });
        let shutdown_timeout_secs = config.shutdown_timeout_secs;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let sessions = TaskTracker::new();
        let state = web::Data::new(AppState {
            connections: Arc::new(ConnectionSlots {
                open: AtomicUsize::new(0),
                max: config.max_connections,
            }),
            config,
            hub,
            broker,
            session,
            sessions_shutdown: sessions_shutdown.clone(),
            sessions: sessions.clone(),
        });
        // actix-web's `HttpServer` cannot take an upgrade handler, so the same pieces are put
        // together here: one HTTP service per worker, the app for plain requests, and
        // `upgrade::service` for WebSocket upgrades, which takes the socket away from HTTP.
        macro_rules! http_service {
            ($state:ident) => {{
                let app = App::new()
                    .app_data($state.clone())
                    .configure(routes::configure)
                    .into_factory()
                    .map_err(|error: actix_web::Error| error.error_response());
                HttpService::build()
                    .keep_alive(KeepAlive::Timeout(Duration::from_secs(5)))
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .local_addr(address)
                    .upgrade(upgrade::service($state.clone()))
                    .finish(map_config(app, |_| AppConfig::default()))
            }};
        }
        let mut server = actix_server::Server::build()
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(shutdown_timeout_secs);
        let scheme = if tls.is_some() { "https" } else { "http" };
        for listener in listeners {
            let state = state.clone();
            server = match &tls {
                Some(tls) => {
                    let tls = tls.clone();
                    server.listen("scoreline", listener, move || {
                        http_service!(state).rustls_0_23(tls.clone())
                    })?
                }
                None => server.listen("scoreline", listener, move || http_service!(state).tcp())?,
            };
        }
        let server = server.run();
        tracing::info!(%address, scheme, workers, broker = ?kind, "scoreline service listening");
        Ok(Application {
            address,
            server,
            sessions_shutdown,
            sessions,
            shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
            background_shutdown,
            background,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: stop accepting, close every
    /// WebSocket with 1001 after flushing what is queued, let the HTTP workers drain, then stop the
    /// hub (which writes its last snapshots) and the broker.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let ended_by_itself = tokio::select! {
            result = &mut server => Some(result),
            () = shutdown => None,
        };
        if ended_by_itself.is_none() {
            tracing::info!("shutting down: closing connections with 1001");
            self.sessions_shutdown.cancel();
            self.sessions.close();
            let _ = tokio::time::timeout(self.shutdown_timeout, self.sessions.wait()).await;
            handle.stop(true).await;
        }
        let result = match ended_by_itself {
            Some(result) => result,
            None => server.await,
        };
        self.background_shutdown.cancel();
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        tracing::info!("stopped");
        result
            .context("the HTTP server task failed")?
            .context("the HTTP server failed")
    }
}

/// Binds `--accept-queues` listening sockets to the configured address with SO_REUSEPORT (the
/// first one picks the port when it is 0), each with the configured send buffer size and unsent
/// data limit, which accepted sockets inherit on Linux.
fn bind_listeners(config: &Config) -> anyhow::Result<Vec<TcpListener>> {
    use socket2::{Domain, Socket, Type};
    // SO_REUSEPORT would let a second instance started on the same port join this one's group
    // and silently take half its connections. A plain bind first keeps "address in use" an
    // error (and picks the port when it is 0); it is closed before the group binds.
    let mut address = TcpListener::bind(config.listen)
        .and_then(|probe| probe.local_addr())
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let mut listeners = Vec::new();
    for _ in 0..config.accept_queues.max(1) {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if config.accept_queues > 1 {
            socket.set_reuse_port(true)?;
        }
        if config.socket_send_buffer_bytes > 0 {
            socket
                .set_send_buffer_size(config.socket_send_buffer_bytes)
                .context("setting the socket send buffer size")?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if config.unsent_limit_bytes > 0 {
            socket
                .set_tcp_notsent_lowat(config.unsent_limit_bytes)
                .context("setting the unsent data limit")?;
        }
        socket
            .bind(&address.into())
            .with_context(|| format!("cannot listen on {address}"))?;
        // Room for a reconnect storm: the kernel caps this at net.core.somaxconn.
        socket.listen(4096)?;
        let listener = TcpListener::from(socket);
        address = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn load_initial_snapshots(redis: &RedisBroker, hub: &HubHandle, limit: usize) {
    match tokio::time::timeout(INITIAL_LOAD_TIMEOUT, redis.load_snapshots(limit)).await {
        Ok(Ok(snapshots)) => {
            if !snapshots.is_empty() {
                tracing::info!(
                    count = snapshots.len(),
                    "restored match snapshots from Redis"
                );
                let _ = hub.send(Command::Restore(snapshots)).await;
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "Redis unreachable at start; serving and retrying in the background");
        }
        Err(_) => {
            tracing::warn!("Redis did not answer at start; serving and retrying in the background")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_the_listeners_buffer_settings() {
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.accept_queues = 2;
        config.socket_send_buffer_bytes = 32 * 1024;
        config.unsent_limit_bytes = 8 * 1024;
        let listeners = bind_listeners(&config).unwrap();
        assert_eq!(listeners.len(), 2);
        let address = listeners[0].local_addr().unwrap();
        assert_eq!(listeners[1].local_addr().unwrap(), address);
        for listener in &listeners {
            listener.set_nonblocking(true).unwrap();
        }
        // SO_REUSEPORT spreads connections over the queues by hash: accept from both.
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..64 {
            clients.push(std::net::TcpStream::connect(address).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(2));
            for listener in &listeners {
                if let Ok((stream, _)) = listener.accept() {
                    accepted.push(stream);
                }
            }
        }
        assert_eq!(
            accepted.len(),
            clients.len(),
            "every connection was accepted"
        );
        for stream in &accepted {
            let socket = socket2::SockRef::from(stream);
            // Linux doubles the requested size for its own bookkeeping.
            assert_eq!(socket.send_buffer_size().unwrap(), 64 * 1024);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            assert_eq!(socket.tcp_notsent_lowat().unwrap(), 8 * 1024);
        }
    }
}
