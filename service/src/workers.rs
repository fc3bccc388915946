//! The threads that serve fans. A worker is one thread with a single-threaded runtime: it
//! accepts connections from listening sockets of its own (SO_REUSEPORT spreads new connections
//! over them) and runs those connections, their sessions included, to the end. The first worker
//! also runs the hub and the broker's tasks.
//!
//! Why this shape rather than actix-server's (an accept thread handing each connection to
//! workers, the hub on a thread of its own): on a two-core machine an event from Redis then
//! wakes one thread, whose hub queues the frame for its own fans without crossing threads and
//! wakes the other worker once for the rest, so a goal is written on both cores at once; no
//! accept thread hands each new connection over; and no third busy thread competes for the two
//! cores (docs/benchmarks.md, "Issue 14, session 6").

use std::fmt::Debug;
use std::future::{Future, poll_fn};
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_service::{Service, ServiceFactory};
use futures_util::future::join_all;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, LocalSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::telemetry;

/// Connections one worker holds at once before their first request is answered or while they
/// speak plain HTTP (WebSocket sessions count against `--max-connections` instead). At the
/// limit the worker stops accepting until one ends, as actix-server does with the same figure,
/// so a flood of half-open connections cannot grow memory without bound.
pub const MAX_HTTP_CONNECTIONS: usize = 25_600;

/// How long a worker waits before accepting again after the system refused it resources (out
/// of file descriptors or memory); accepting at once would fail the same way in a busy loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What the workers serve, and how they stop.
pub struct Serving {
    /// The listening sockets, dealt out to the workers.
    pub listeners: Vec<StdTcpListener>,
    /// Cancelled to stop accepting.
    pub accepting: CancellationToken,
    /// Every accepted connection, until its service call ends.
    pub connections: TaskTracker,
    /// Connections a worker holds in its service at once ([`MAX_HTTP_CONNECTIONS`] in the
    /// service); at the limit it stops accepting until one ends.
    pub max_http_connections: usize,
}

/// What a worker thread is given to run, inside its `LocalSet`.
type Job = Box<dyn FnOnce() + Send>;

/// Jobs a worker may have waiting: it is given three at most (the hub's tasks, its
/// connections, the shutdown).
const JOBS: usize = 4;

/// The running worker threads.
pub struct Workers {
    workers: Vec<Worker>,
}

struct Worker {
    /// Where its jobs go.
    jobs: mpsc::Sender<Job>,
    /// Ends the thread, dropping whatever still runs on it.
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Workers {
    /// Starts `count` worker threads (at least one), each idle until [`Workers::serve`].
    pub fn start(count: usize) -> io::Result<Workers> {
        let mut workers = Workers {
            workers: Vec::new(),
        };
        for index in 0..count.max(1) {
            let (job_sender, mut jobs) = mpsc::channel::<Job>(JOBS);
            let stop = CancellationToken::new();
            let (started_sender, started) = std::sync::mpsc::sync_channel(1);
            let thread = std::thread::Builder::new()
                .name(format!("scoreline-worker-{index}"))
                .spawn({
                    let stop = stop.clone();
                    move || {
                        let runtime = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(runtime) => runtime,
                            Err(error) => {
                                let _ = started_sender.send(Err(error));
                                return;
                            }
                        };
                        let _ = started_sender.send(Ok(()));
                        // Jobs run here, inside the `LocalSet`, so the tasks they spawn are
                        // local ones.
                        LocalSet::new().block_on(&runtime, async move {
                            loop {
                                tokio::select! {
                                    job = jobs.recv() => match job {
                                        Some(job) => job(),
                                        None => break,
                                    },
                                    () = stop.cancelled() => return,
                                }
                            }
                            stop.cancelled().await;
                        });
                    }
                })?;
            started
                .recv()
                .map_err(|_| io::Error::other("a worker thread ended while starting"))??;
            workers.workers.push(Worker {
                jobs: job_sender,
                stop,
                thread,
            });
        }
        Ok(workers)
    }

    /// How many workers there are.
    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// Runs the future `make` makes on the first worker, as a local task; what it spawns with
    /// `tokio::spawn` goes to that worker's runtime (where the hub and the broker's tasks run).
    pub async fn spawn_on_first<M, F>(&self, make: M) -> io::Result<JoinHandle<F::Output>>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let first = self
            .workers
            .first()
            .ok_or_else(|| io::Error::other("there are no workers"))?;
        run_local(first, make).await
    }

    /// Runs `job` on every worker, between its tasks, and waits until each has. A worker that
    /// has stopped is skipped: nothing of it is left to tell.
    pub async fn run_on_each(&self, job: fn()) {
        for worker in &self.workers {
            if let Ok(done) = run_local(worker, move || async move { job() }).await {
                let _ = done.await;
            }
        }
    }

    /// Has the workers accept connections from `serving.listeners` (the `i`-th listener goes to
    /// worker `i % count`, so give at least one per worker) and call a service made on each
    /// worker by `make` for every connection. Returns one handle per worker that ends when
    /// `serving.accepting` is cancelled, or earlier if the worker fails (its service cannot be
    /// made, or a panic), for the supervisor.
    pub async fn serve<M, F>(&self, serving: Serving, make: M) -> io::Result<Vec<JoinHandle<()>>>
    where
        M: Fn() -> F + Send + Clone + 'static,
        F: ServiceFactory<TcpStream, Config = ()> + 'static,
        F::Service: 'static,
        F::Error: Debug,
        F::InitError: Debug,
    {
        let Serving {
            listeners,
            accepting,
            connections,
            max_http_connections,
        } = serving;
        let count = self.workers.len();
        let mut given: Vec<Vec<StdTcpListener>> = (0..count).map(|_| Vec::new()).collect();
        for (index, listener) in listeners.into_iter().enumerate() {
            listener.set_nonblocking(true)?;
            given[index % count].push(listener);
        }
        let mut handles = Vec::with_capacity(count);
        for (worker, listeners) in self.workers.iter().zip(given) {
            let (accepting, connections, make) =
                (accepting.clone(), connections.clone(), make.clone());
            handles.push(
                run_local(worker, move || {
                    serve_listeners(
                        listeners,
                        make(),
                        accepting,
                        connections,
                        max_http_connections,
                    )
                })
                .await?,
            );
        }
        Ok(handles)
    }

    /// Ends every worker thread, dropping whatever still runs on them, and waits for them.
    pub async fn stop(mut self) {
        let workers = std::mem::take(&mut self.workers);
        for worker in &workers {
            worker.stop.cancel();
        }
        let joined = tokio::task::spawn_blocking(move || {
            for worker in workers {
                if worker.thread.join().is_err() {
                    tracing::error!("a worker thread panicked while stopping");
                }
            }
        });
        if let Err(error) = joined.await {
            tracing::error!(%error, "could not wait for the worker threads");
        }
    }
}

impl Drop for Workers {
    /// Threads of a service dropped without [`Workers::stop`] (it failed to start, or a test
    /// dropped it) end too.
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.stop.cancel();
        }
    }
}

/// Spawns the future `make` makes as a local task of `worker`.
async fn run_local<M, F>(worker: &Worker, make: M) -> io::Result<JoinHandle<F::Output>>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let stopped = || io::Error::other("a worker thread has stopped");
    let (handle_sender, handle) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = handle_sender.send(tokio::task::spawn_local(make()));
    });
    worker.jobs.send(job).await.map_err(|_| stopped())?;
    handle.await.map_err(|_| stopped())
}

/// One worker's accept loops, one per listener, sharing the worker's service and its limit of
/// connections.
async fn serve_listeners<F>(
    listeners: Vec<StdTcpListener>,
    factory: F,
    accepting: CancellationToken,
    connections: TaskTracker,
    max_http_connections: usize,
) where
    F: ServiceFactory<TcpStream, Config = ()>,
    F::Service: 'static,
    F::Error: Debug,
    F::InitError: Debug,
{
    let service = match factory.new_service(()).await {
        Ok(service) => Rc::new(service),
        Err(error) => {
            tracing::error!(?error, "a worker could not make its service");
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(max_http_connections));
    let mut loops = Vec::with_capacity(listeners.len());
    for listener in listeners {
        match TcpListener::from_std(listener) {
            Ok(listener) => loops.push(accept_loop(
                listener,
                Rc::clone(&service),
                Arc::clone(&limit),
                accepting.clone(),
                connections.clone(),
            )),
            Err(error) => {
                tracing::error!(%error, "a worker could not watch its listening socket");
                return;
            }
        }
    }
    join_all(loops).await;
}

async fn accept_loop<S>(
    listener: TcpListener,
    service: Rc<S>,
    limit: Arc<Semaphore>,
    accepting: CancellationToken,
    connections: TaskTracker,
) where
    S: Service<TcpStream> + 'static,
    S::Error: Debug,
{
    loop {
        // A permit first, then the service's readiness (TLS bounds the handshakes in progress),
        // then a connection: whatever has to wait waits in the kernel's accept queue.
        let ready = async {
            let permit = Arc::clone(&limit).acquire_owned().await;
            (permit, poll_fn(|context| service.poll_ready(context)).await)
        };
        let (permit, ready) = tokio::select! {
            biased;
            () = accepting.cancelled() => return,
            ready = ready => ready,
        };
        let Ok(permit) = permit else {
            return; // the semaphore is never closed
        };
        if let Err(error) = ready {
            tracing::error!(?error, "a worker's service failed; it stops accepting");
            return;
        }
        let accepted = tokio::select! {
            biased;
            () = accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let service = Rc::clone(&service);
                tokio::task::spawn_local(connections.track_future(async move {
                    if let Err(error) = service.call(stream).await {
                        tracing::debug!(?error, "a connection ended with an error");
                    }
                    drop(permit);
                }));
            }
            Err(error) => after_accept_error(&error).await,
        }
    }
}

/// What a failed `accept` means for the loop. A connection reset before it was accepted is the
/// client's business; anything else (out of file descriptors, out of memory) would fail again
/// at once, so the worker pauses and says so.
async fn after_accept_error(error: &io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => {
            tracing::debug!(%error, "a connection was gone before it was accepted");
        }
        _ => {
            metrics::counter!(telemetry::ACCEPT_FAILURES).increment(1);
            tracing::warn!(%error, pause = ?ACCEPT_PAUSE, "cannot accept connections; pausing");
            tokio::time::sleep(ACCEPT_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::Mutex;

    use actix_service::fn_service;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A service that writes the name of the thread it runs on and closes the connection.
    fn thread_names()
    -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = Infallible, InitError = ()>
    {
        fn_service(|mut stream: TcpStream| async move {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            let _ = stream.write_all(name.as_bytes()).await;
            Ok::<_, Infallible>(())
        })
    }

    fn listeners(count: usize) -> (std::net::SocketAddr, Vec<StdTcpListener>) {
        let mut config = crate::Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.accept_queues = count as u16;
        let listeners = crate::startup::bind_listeners(&config, count).unwrap();
        (listeners[0].local_addr().unwrap(), listeners)
    }

    async fn served_by(address: std::net::SocketAddr) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut name = String::new();
        stream.read_to_string(&mut name).await.unwrap();
        name
    }

    #[tokio::test]
    async fn every_worker_accepts_connections_of_its_own_and_stops_when_told() {
        let workers = Workers::start(2).unwrap();
        let (address, listeners) = listeners(2);
        let accepting = CancellationToken::new();
        let connections = TaskTracker::new();
        let handles = workers
            .serve(
                Serving {
                    listeners,
                    accepting: accepting.clone(),
                    connections: connections.clone(),
                    max_http_connections: 100,
                },
                thread_names,
            )
            .await
            .unwrap();
        assert_eq!(handles.len(), 2);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(served_by(address).await);
            if seen.len() == 2 {
                break;
            }
        }
        let expected: std::collections::BTreeSet<String> =
            ["scoreline-worker-0", "scoreline-worker-1"]
                .map(String::from)
                .into();
        assert_eq!(seen, expected, "SO_REUSEPORT spreads connections over both");

        accepting.cancel();
        for handle in handles {
            handle.await.unwrap();
        }
        assert!(
            TcpStream::connect(address).await.is_err(),
            "nothing listens once accepting ends"
        );
        workers.stop().await;
    }

    #[tokio::test]
    async fn what_is_spawned_on_the_first_worker_runs_there_among_its_local_tasks() {
        let workers = Workers::start(2).unwrap();
        let name = workers
            .spawn_on_first(|| async {
                // A local task: this would panic outside the worker's `LocalSet`.
                tokio::task::spawn_local(async {}).await.unwrap();
                std::thread::current().name().map(str::to_owned)
            })
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("scoreline-worker-0"));
        workers.stop().await;
    }

    /// A service that holds every connection until released, then answers `done`, counting the
    /// connections it holds.
    #[derive(Clone)]
    struct Holding {
        release: Arc<Semaphore>,
        held: Arc<Mutex<usize>>,
    }

    impl Holding {
        fn new() -> Holding {
            Holding {
                release: Arc::new(Semaphore::new(0)),
                held: Arc::new(Mutex::new(0)),
            }
        }

        /// A worker's service (for [`Workers::serve`]'s `make`).
        fn service(
            &self,
        ) -> impl ServiceFactory<
            TcpStream,
            Config = (),
            Response = (),
            Error = Infallible,
            InitError = (),
        > + use<> {
            let holding = self.clone();
            fn_service(move |mut stream: TcpStream| {
                let holding = holding.clone();
                async move {
                    *holding.held.lock().unwrap() += 1;
                    if let Ok(permit) = holding.release.acquire().await {
                        permit.forget();
                    }
                    let _ = stream.write_all(b"done").await;
                    Ok::<_, Infallible>(())
                }
            })
        }

        fn held(&self) -> usize {
            *self.held.lock().unwrap()
        }

        async fn wait_until_held(&self, count: usize) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while self.held() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} held",
                    self.held()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        fn release(&self, connections: usize) {
            self.release.add_permits(connections);
        }
    }

    /// Has one worker serve `holding` from one listener, at most `max_http_connections` at once:
    /// the worker, the address, the token that stops accepting and the worker's handles.
    async fn one_worker_holding(
        holding: &Holding,
        max_http_connections: usize,
    ) -> (
        Workers,
        std::net::SocketAddr,
        CancellationToken,
        Vec<JoinHandle<()>>,
    ) {
        let workers = Workers::start(1).unwrap();
        let (address, listeners) = listeners(1);
        let accepting = CancellationToken::new();
        let holding = holding.clone();
        let handles = workers
            .serve(
                Serving {
                    listeners,
                    accepting: accepting.clone(),
                    connections: TaskTracker::new(),
                    max_http_connections,
                },
                move || holding.service(),
            )
            .await
            .unwrap();
        (workers, address, accepting, handles)
    }

    /// Stops accepting, waits until each worker has stopped, and ends the threads.
    async fn stop(workers: Workers, accepting: CancellationToken, handles: Vec<JoinHandle<()>>) {
        accepting.cancel();
        for handle in handles {
            handle.await.unwrap();
        }
        workers.stop().await;
    }

    #[tokio::test]
    async fn a_worker_at_its_connection_limit_leaves_new_connections_waiting_until_one_ends() {
        let holding = Holding::new();
        let (workers, address, accepting, handles) = one_worker_holding(&holding, 2).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            // The kernel completes the TCP handshake of a connection not yet accepted.
            clients.push(TcpStream::connect(address).await.unwrap());
        }
        holding.wait_until_held(2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(holding.held(), 2, "the third waits in the accept queue");

        holding.release(1);
        holding.wait_until_held(3).await;
        holding.release(2);
        for mut client in clients {
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.unwrap();
            assert_eq!(answer, "done");
        }
        stop(workers, accepting, handles).await;
    }

    /// Descriptors this process has open.
    fn open_descriptors() -> u64 {
        // Less the one `read_dir` itself holds while listing.
        std::fs::read_dir("/proc/self/fd").unwrap().count() as u64 - 1
    }

    #[tokio::test]
    async fn a_worker_out_of_file_descriptors_pauses_and_accepts_again_once_some_are_free() {
        // The limit is the process's: only a process of its own may lower it.
        assert_eq!(
            std::env::var("NEXTEST_EXECUTION_MODE").as_deref(),
            Ok("process-per-test"),
            "this test lowers the process's open-file limit: run it in a process of its own \
             with `cargo nextest run` (scripts/test does)"
        );
        let holding = Holding::new();
        let (workers, address, accepting, handles) = one_worker_holding(&holding, 100).await;

        // Six client sockets made first; then room for about two accepted connections.
        let sockets: Vec<socket2::Socket> = (0..6)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        rlimit::Resource::NOFILE
            .set(open_descriptors() + 2, hard)
            .unwrap();
        let mut clients = Vec::new();
        for socket in sockets {
            // The kernel completes the handshake whether or not the worker can accept.
            socket.connect(&address.into()).unwrap();
            clients.push(std::net::TcpStream::from(socket));
        }
        // A few are accepted (the count of descriptors free is the kernel's to say exactly),
        // then accepting fails and stays failed while nothing is freed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stuck = holding.held();
        assert!(stuck < 6, "all accepted with no descriptors to spare");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            holding.held(),
            stuck,
            "accepting failed for want of descriptors"
        );
        assert!(
            handles.iter().all(|handle| !handle.is_finished()),
            "the worker goes on"
        );

        // Descriptors free again: the rest are accepted after a pause.
        rlimit::Resource::NOFILE.set(soft, hard).unwrap();
        holding.wait_until_held(6).await;
        holding.release(6);
        for mut client in clients {
            let mut answer = String::new();
            std::io::Read::read_to_string(&mut client, &mut answer).unwrap();
            assert_eq!(answer, "done");
        }
        stop(workers, accepting, handles).await;
    }
}
