//! [`Application`]: the one way to start the service. `main`, the demo and every test build it
//! from a [`Config`], read the port it bound, and run it until a shutdown future fires.
//!
//! While it runs, it supervises its long-lived tasks (the hub, the audience counter, and with
//! Redis the subscriber, the snapshot writer and the backfill reader): one that panics
//! or ends takes `/readyz` down at once, is logged with its cause, and stops the service with
//! an error, so `main` exits with a failure and the orchestrator starts a fresh process.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::KeepAlive;
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config,
};
use actix_web::dev::AppConfig;
use actix_web::{App, web};
use anyhow::Context;
use futures_util::FutureExt;
use tokio::net::TcpStream;
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
use crate::state::{AppState, ConnectionSlots, Supervision};
use crate::workers::{MAX_HTTP_CONNECTIONS, Serving, Workers};
use crate::{audience, front_door, page, routes, session, telemetry, upgrade};

/// Commands the hub may have waiting; beyond this, sessions wait and broker events are dropped
/// (and counted) rather than growing memory.
const HUB_QUEUE: usize = 65_536;

/// How long start-up waits for Redis to hand back stored snapshots before serving anyway.
const INITIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A built service, bound and ready to run.
pub struct Application {
    address: SocketAddr,
    workers: Workers,
    /// Cancelled to stop accepting connections.
    accepting: CancellationToken,
    /// Every accepted connection until it becomes a session or its HTTP exchange ends.
    connections: TaskTracker,
    sessions_shutdown: CancellationToken,
    sessions: TaskTracker,
    shutdown_timeout: Duration,
    background_shutdown: CancellationToken,
    supervisor: Supervisor,
    supervision: Arc<Supervision>,
    #[cfg(feature = "test-hooks")]
    hub: HubHandle,
}

/// Why [`Application::run_until`] returned an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A task the service cannot run without stopped; it was logged when it happened.
    #[error(transparent)]
    TaskStopped(#[from] TaskFailure),
}

/// How a supervised task stopped while the service was serving.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    /// It panicked.
    #[error("the {task} task panicked: {message}")]
    Panicked {
        /// The task's name.
        task: &'static str,
        /// The panic's message.
        message: String,
    },
    /// It returned, which it does only when told to stop.
    #[error("the {task} task ended while the service was running")]
    Ended {
        /// The task's name.
        task: &'static str,
    },
    /// It was aborted.
    #[error("the {task} task was cancelled")]
    Cancelled {
        /// The task's name.
        task: &'static str,
    },
}

impl TaskFailure {
    /// The name of the task that stopped.
    pub fn task(&self) -> &'static str {
        match self {
            TaskFailure::Panicked { task, .. }
            | TaskFailure::Ended { task }
            | TaskFailure::Cancelled { task } => task,
        }
    }
}

/// The long-lived tasks, by name, watched while the service serves.
struct Supervisor {
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Supervisor {
    /// Completes when the first task stops, saying how; the others stay watched. Never
    /// completes with no task. Cancel-safe: the tasks are only borrowed.
    async fn first_to_stop(&mut self) -> TaskFailure {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let handles = self.tasks.iter_mut().map(|(_, handle)| handle);
        let (result, index, _) = futures_util::future::select_all(handles).await;
        let (task, _) = self.tasks.swap_remove(index);
        match result {
            Ok(()) => TaskFailure::Ended { task },
            Err(error) if error.is_panic() => TaskFailure::Panicked {
                task,
                message: panic_message(error.into_panic()),
            },
            Err(_) => TaskFailure::Cancelled { task },
        }
    }

    /// Waits for every task to finish after being told to stop, each for up to `patience`;
    /// one that does not is aborted.
    async fn wait_all(self, patience: Duration) {
        for (task, mut handle) in self.tasks {
            match tokio::time::timeout(patience, &mut handle).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(task, %error, "a task failed while stopping"),
                Err(_) => {
                    tracing::warn!(task, "a task did not stop in time; aborting it");
                    handle.abort();
                }
            }
        }
    }
}

/// The text of a panic's payload (`panic!` with a literal or a format string).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "(no message)".to_owned(),
            |message| (*message).to_owned(),
        ),
    }
}

/// Test-only ways to break a running service (the `test-hooks` feature), so tests can prove
/// it notices. Reachable only from Rust, never from the network.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone)]
pub struct TestHooks {
    hub: HubHandle,
}

#[cfg(feature = "test-hooks")]
impl TestHooks {
    /// Makes the hub task panic, as a bug in it would.
    pub async fn panic_hub(&self) {
        // Refused only when the hub is already gone, which is what this is for.
        let _ = self.hub.send(Command::Panic).await;
    }
}

impl Application {
    /// Binds the listeners, starts the worker threads, the hub and the broker, and has the
    /// workers serve. With Redis, stored snapshots are loaded first (briefly) so fans see scores
    /// from the first request.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        telemetry::metrics_handle();
        let worker_count = config.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        // Bound first, so a taken port fails the start before any thread does.
        let listeners = bind_listeners(&config, worker_count)?;
        let address = listeners[0].local_addr()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let workers = Workers::start(worker_count).context("cannot start the worker threads")?;
        let background_shutdown = CancellationToken::new();
        // The hub and the broker's tasks live on the first worker: an event from Redis wakes
        // that one thread, which queues it for its own fans without crossing threads.
        let settings = Background::from(&config);
        let shutdown = background_shutdown.clone();
        let (hub, broker, mut background) = workers
            .spawn_on_first(move || start_background(settings, shutdown))
            .await?
            .await
            .context("starting the hub and the broker failed")??;
        // On this thread's runtime, away from the workers' hot paths.
        background.push((
            "metrics upkeep",
            tokio::spawn(telemetry::upkeep(
                telemetry::UPKEEP_INTERVAL,
                background_shutdown.clone(),
            )),
        ));

        let session = SessionSettings {
            heartbeat: Duration::from_secs(config.heartbeat_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            max_requests_per_sec: config.max_requests_per_sec,
            mailbox: MailboxLimits {
                max_critical: config.max_queued_frames,
                max_frames: config.max_queued_frames.saturating_mul(4),
            },
        };
        let sessions_shutdown = CancellationToken::new();
        let sessions = TaskTracker::new();
        let supervision = Arc::new(Supervision::default());
        #[cfg(feature = "test-hooks")]
        let hub_for_hooks = hub.clone();
        let welcome = upgrade::welcome_frame(&config);
        let kind = config.broker_kind();
        let state = web::Data::new(AppState {
            connections: Arc::new(ConnectionSlots::new(config.max_connections)),
            welcome,
            config,
            hub,
            broker,
            session,
            sessions_shutdown: sessions_shutdown.clone(),
            sessions: sessions.clone(),
            supervision: Arc::clone(&supervision),
        });
        // One HTTP service per worker: the app for plain requests and `upgrade::service` for
        // WebSocket upgrades after other requests, which takes the socket away from HTTP.
        macro_rules! http_service {
            ($state:ident) => {{
                let app = App::new()
                    .app_data($state.clone())
                    .configure(routes::configure)
                    .configure(page::configure)
                    .into_factory()
                    .map_err(|error: actix_web::Error| error.error_response());
                HttpService::build()
                    .keep_alive(KeepAlive::Timeout(Duration::from_secs(5)))
                    .client_request_timeout(Duration::from_secs(
                        $state.config.request_timeout_secs.max(1),
                    ))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .local_addr(address)
                    .upgrade(upgrade::service($state.clone()))
                    .finish(map_config(app, |_| AppConfig::default()))
            }};
        }
        let shutdown_timeout = Duration::from_secs(state.config.shutdown_timeout_secs);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accepting = CancellationToken::new();
        let connections = TaskTracker::new();
        let serving = Serving {
            listeners,
            accepting: accepting.clone(),
            connections: connections.clone(),
            max_http_connections: MAX_HTTP_CONNECTIONS,
        };
        let serving = match tls {
            Some(tls) => {
                workers
                    .serve(serving, move || {
                        http_service!(state).rustls_0_23(tls.clone())
                    })
                    .await?
            }
            // Plain connections: the first request is read by `front_door`, which serves
            // WebSocket upgrades itself and hands everything else to actix-http.
            None => {
                workers
                    .serve(serving, move || {
                        let http = http_service!(state);
                        let state = state.clone();
                        fn_factory(move || {
                            let http = http.new_service(());
                            let state = state.clone();
                            async move {
                                let http = Rc::new(http.await?);
                                Ok::<_, ()>(fn_service(move |stream: TcpStream| {
                                    front_door::serve(stream, state.clone(), Rc::clone(&http))
                                        .map(Ok::<_, Infallible>)
                                }))
                            }
                        })
                    })
                    .await?
            }
        };
        background.extend(serving.into_iter().map(|handle| ("worker", handle)));
        tracing::info!(%address, scheme, workers = workers.count(), broker = ?kind, "scoreline service listening");
        Ok(Application {
            address,
            workers,
            accepting,
            connections,
            sessions_shutdown,
            sessions,
            shutdown_timeout,
            background_shutdown,
            supervisor: Supervisor { tasks: background },
            supervision,
            #[cfg(feature = "test-hooks")]
            hub: hub_for_hooks,
        })
    }

    /// Ways for tests to break the running service (the `test-hooks` feature).
    #[cfg(feature = "test-hooks")]
    pub fn test_hooks(&self) -> TestHooks {
        TestHooks {
            hub: self.hub.clone(),
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: close every WebSocket
    /// with 1001 after flushing what is queued, stop accepting, let plain HTTP requests finish,
    /// then stop the hub (which writes its last snapshots) and the broker, and end the worker
    /// threads.
    ///
    /// A supervised task that stops meanwhile (a worker, the hub, the broker's tasks) does the
    /// same shutdown, after taking `/readyz` down and logging the failure with its cause, and
    /// ends in [`RunError::TaskStopped`].
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let Application {
            workers,
            accepting,
            connections,
            sessions_shutdown,
            sessions,
            shutdown_timeout,
            background_shutdown,
            mut supervisor,
            supervision,
            ..
        } = self;
        let failure = tokio::select! {
            failure = supervisor.first_to_stop() => Some(failure),
            () = shutdown => None,
        };
        if let Some(failure) = &failure {
            // Readiness first, so the load balancer stops sending fans here at once.
            supervision.record(failure.task());
            tracing::error!(
                error = %failure,
                "a task the service cannot run without stopped; shutting down with a failure"
            );
        }
        tracing::info!("shutting down: closing connections with 1001");
        // Sessions starting from now see the token cancelled; those running hear it through
        // their mailboxes.
        sessions_shutdown.cancel();
        workers.run_on_each(session::shut_down_here).await;
        sessions.close();
        // Sessions still open after the timeout are dropped with the worker threads.
        let _ = tokio::time::timeout(shutdown_timeout, sessions.wait()).await;
        // Accepting stops only now, so `/readyz` can be asked while fans are being closed.
        accepting.cancel();
        connections.close();
        let _ = tokio::time::timeout(shutdown_timeout, connections.wait()).await;
        background_shutdown.cancel();
        supervisor.wait_all(Duration::from_secs(5)).await;
        workers.stop().await;
        tracing::info!("stopped");
        match failure {
            Some(failure) => Err(RunError::TaskStopped(failure)),
            None => Ok(()),
        }
    }
}

/// What the background tasks need from the configuration, taken before it moves into the
/// shared state.
struct Background {
    limits: HubLimits,
    redis: Option<RedisSettings>,
    max_matches: usize,
    key_prefix: String,
    audience_interval: Duration,
}

impl From<&Config> for Background {
    fn from(config: &Config) -> Background {
        Background {
            limits: HubLimits {
                max_topics: config.max_topics,
                max_snapshots: config.max_snapshots,
                store: StoreLimits {
                    max_matches: config.max_matches,
                    finished_retention_ms: config.finished_retention_secs.saturating_mul(1000),
                    recent_events: config.resume_events,
                },
                max_delay_secs: config.max_delay_secs,
            },
            redis: (config.broker_kind() == BrokerKind::Redis).then(|| RedisSettings {
                url: config.redis_url(),
                channel_prefix: config.channel_prefix.clone(),
                key_prefix: config.key_prefix.clone(),
                finished_ttl_secs: config.finished_retention_secs,
                history_len: config.history_len,
            }),
            max_matches: config.max_matches,
            key_prefix: config.key_prefix.clone(),
            audience_interval: Duration::from_millis(config.audience_interval_millis),
        }
    }
}

/// The long-lived tasks behind every connection, spawned on the runtime of the worker this runs
/// on: the hub, with Redis its subscriber, snapshot writer and backfill reader, and the audience
/// counter.
///
/// On the runtime's own queue, not among the sessions as local tasks: the runtime polls its
/// tasks between turns of the sessions' `LocalSet` (61 sessions a turn), so the hub can take
/// the next event while the fans of the last one are still being written, and a fan who is
/// behind gets both frames in one write. As a local task the hub waited behind every session
/// queued: S2 (a million deliveries a second offered) lost 17 % of its throughput and its p99
/// went from 0.2 to 2.5 s (`docs/benchmarks.md`, issue 14, session 6).
async fn start_background(
    settings: Background,
    shutdown: CancellationToken,
) -> anyhow::Result<(HubHandle, Broker, Vec<(&'static str, JoinHandle<()>)>)> {
    // Snapshots are stored, and gaps filled from histories, only with Redis.
    let (store, stored, backfill, backfills) = match settings.redis {
        Some(_) => {
            let (store, stored) = mpsc::channel(4096);
            let (backfill, backfills) = mpsc::channel(4096);
            (Some(store), Some(stored), Some(backfill), Some(backfills))
        }
        None => (None, None, None, None),
    };
    let (hub, hub_task) = hub::start(
        settings.limits,
        HUB_QUEUE,
        store,
        backfill,
        shutdown.clone(),
    );
    let mut background = vec![("hub", tokio::spawn(hub_task))];
    let broker = match (settings.redis, stored, backfills) {
        (Some(redis), Some(stored), Some(backfills)) => {
            let redis =
                RedisBroker::new(redis, hub.clone()).context("invalid Redis configuration")?;
            load_initial_snapshots(&redis, &hub, settings.max_matches).await;
            let tasks = redis.tasks(hub.clone(), stored, backfills, shutdown.clone());
            background.extend(
                tasks
                    .into_iter()
                    .map(|(name, task)| (name, tokio::spawn(task))),
            );
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
    let shared_counts = match &broker {
        Broker::Redis(redis) => Some(audience::SharedCounts::new(
            redis.connection(),
            &settings.key_prefix,
        )),
        Broker::Memory { .. } => None,
    };
    background.push((
        "audience counter",
        tokio::spawn(audience::run(
            hub.clone(),
            shared_counts,
            settings.audience_interval,
            shutdown,
        )),
    ));
    Ok((hub, broker, background))
}

/// Binds `--accept-queues` listening sockets (at least `at_least`, one per worker) to the
/// configured address with SO_REUSEPORT (the first one picks the port when it is 0), each with
/// the configured send buffer size and unsent data limit, which accepted sockets inherit on
/// Linux.
pub(crate) fn bind_listeners(config: &Config, at_least: usize) -> anyhow::Result<Vec<TcpListener>> {
    use socket2::{Domain, Socket, Type};
    // SO_REUSEPORT would let a second instance started on the same port join this one's group
    // and silently take half its connections. A plain bind first keeps "address in use" an
    // error (and picks the port when it is 0); it is closed before the group binds.
    let mut address = TcpListener::bind(config.listen)
        .and_then(|probe| probe.local_addr())
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let mut listeners = Vec::new();
    let count = usize::from(config.accept_queues).max(at_least).max(1);
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if count > 1 {
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
                // The hub was started just before; if it is already gone, the supervisor reports
                // why as soon as the service runs.
                let _ = hub.send(Command::Restore(snapshots)).await;
            }
        }
        Ok(Err(error)) => {
            let error = telemetry::ErrorChain(&error);
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

    #[tokio::test]
    async fn the_supervisor_names_the_first_task_to_stop_and_how() {
        let never = || tokio::spawn(std::future::pending::<()>());
        let mut supervisor = Supervisor {
            tasks: vec![
                ("idle", never()),
                (
                    "buggy",
                    tokio::spawn(async { panic!("index {} out of range", 7) }),
                ),
            ],
        };
        match supervisor.first_to_stop().await {
            TaskFailure::Panicked { task, message } => {
                assert_eq!((task, message.as_str()), ("buggy", "index 7 out of range"));
            }
            other => panic!("{other:?}"),
        }
        // The others stay watched.
        assert_eq!(supervisor.tasks.len(), 1);
        supervisor.tasks.push(("quitter", tokio::spawn(async {})));
        let failure = supervisor.first_to_stop().await;
        assert!(
            matches!(failure, TaskFailure::Ended { task: "quitter" }),
            "{failure:?}"
        );
        assert_eq!(
            failure.to_string(),
            "the quitter task ended while the service was running"
        );
        let aborted = never();
        aborted.abort();
        supervisor.tasks.push(("aborted", aborted));
        let failure = supervisor.first_to_stop().await;
        assert!(
            matches!(failure, TaskFailure::Cancelled { task: "aborted" }),
            "{failure:?}"
        );
        // With nothing left that stops, it waits.
        let still_running =
            tokio::time::timeout(Duration::from_millis(20), supervisor.first_to_stop());
        assert!(still_running.await.is_err());
        supervisor.wait_all(Duration::from_millis(20)).await;
    }

    #[test]
    fn accepted_sockets_inherit_the_listeners_buffer_settings() {
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.accept_queues = 2;
        config.socket_send_buffer_bytes = 32 * 1024;
        config.unsent_limit_bytes = 8 * 1024;
        let listeners = bind_listeners(&config, 1).unwrap();
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
