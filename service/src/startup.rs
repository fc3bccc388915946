//! [`Application`]: the one way to start the service. `main`, the demo and every test build it
//! from a [`Config`], read the port it bound, and run it until a shutdown future fires.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, RedisBroker, RedisSettings};
use crate::config::{BrokerKind, Config};
use crate::hub::{self, Command, HubHandle, HubLimits};
use crate::mailbox::MailboxLimits;
use crate::matches::StoreLimits;
use crate::session::SessionSettings;
use crate::{routes, telemetry};

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
                let redis = RedisBroker::new(RedisSettings {
                    url: config.redis_url(),
                    channel_prefix: config.channel_prefix.clone(),
                    key_prefix: config.key_prefix.clone(),
                    finished_ttl_secs: config.finished_retention_secs,
                    history_len: config.history_len,
                })
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

        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        if config.socket_send_buffer_bytes > 0 {
            // Accepted sockets inherit the listener's send buffer size on Linux.
            socket2::SockRef::from(&listener)
                .set_send_buffer_size(config.socket_send_buffer_bytes)
                .context("setting the socket send buffer size")?;
        }
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
                .map(|cores| cores.get())
                .unwrap_or(2)
        });
        let shutdown_timeout_secs = config.shutdown_timeout_secs;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
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
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
        })
        .workers(workers)
        // Room for a reconnect storm: the kernel caps this at net.core.somaxconn.
        .backlog(4096)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout_secs);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(%address, scheme, workers, broker = ?kind, "scoreline service listening");
        Ok(Application {
            address,
            server,
            sessions_shutdown,
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
