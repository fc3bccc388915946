//! A private `redis-server` for one test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scoreline_feed::{ConnectionSettings, RedisConnection};

/// A `redis-server` child process on a free loopback port, without persistence.
///
/// Each test gets its own, so tests can run in parallel, never see each other's traffic, and may
/// [`stop`](RedisServer::stop) and [`start_again`](RedisServer::start_again) it to simulate Redis
/// going away. The process is killed when the value is dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    /// Whether writes survive a restart (append-only file, synced on every write).
    persistent: bool,
    /// What [`publish`](RedisServer::publish) goes through: Scoreline's own connection, made
    /// anew when the server is started again.
    connection: RedisConnection,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`. It keeps nothing on
    /// disk: a restart empties it.
    pub fn start() -> anyhow::Result<RedisServer> {
        RedisServer::start_with(false)
    }

    /// Starts a server whose data survives [`stop`](RedisServer::stop) and
    /// [`start_again`](RedisServer::start_again), as a production Redis with an append-only file
    /// does.
    pub fn start_persistent() -> anyhow::Result<RedisServer> {
        RedisServer::start_with(true)
    }

    fn start_with(persistent: bool) -> anyhow::Result<RedisServer> {
        let dir = std::env::temp_dir().join(format!(
            "scoreline-redis-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).context("creating the redis working directory")?;
        // A port found free can be taken before redis binds it; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let connection = connection_to(port)?;
            let mut server = RedisServer {
                port,
                child: None,
                dir: dir.clone(),
                persistent,
                connection,
            };
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (not [`stop`](RedisServer::stop)ped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The URL clients connect with.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A client for the test's own commands.
    pub fn client(&self) -> redis::Client {
        // The URL is well formed by construction.
        redis::Client::open(self.url()).expect("valid redis url")
    }

    /// Kills the server abruptly, as a crash would: connections drop at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        // A new process, a new connection: the old one would fail its next command (it cannot
        // know the server went away until it tries), and a test publishing right after a restart
        // means to publish, not to find out.
        self.connection = connection_to(self.port)?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "no"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed? .ci/run installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.answers_ping() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                bail!(
                    "redis-server on port {} exited at start with {status}",
                    self.port
                );
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "redis-server on port {} did not answer PING within 5 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A synchronous probe of the process just started (not Scoreline's way of connecting:
    /// this asks one process whether it is up yet, before any runtime may exist).
    fn answers_ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(200))
        else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut connection).is_ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Scoreline's connection to the server on `port`, with generous timeouts: a loaded CI machine
/// can be slow to answer, and that is not what the tests are about.
fn connection_to(port: u16) -> anyhow::Result<RedisConnection> {
    let settings = ConnectionSettings {
        connect_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(10),
    };
    Ok(RedisConnection::open(
        &format!("redis://127.0.0.1:{port}/"),
        settings,
    )?)
}

/// A port nothing listens on now (another process may take it before it is used).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A number unique within this process, for directory and name suffixes.
pub(crate) fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl RedisServer {
    /// Publishes an event the way feeds do: `PUBLISH scores:<topic> <json>`.
    pub async fn publish(&self, event: &scoreline_protocol::ScoreEvent) -> anyhow::Result<()> {
        self.publish_raw(&format!("scores:{}", event.match_topic), &event.to_json())
            .await
    }

    /// Publishes any payload on any channel, well-formed or not.
    pub async fn publish_raw(&self, channel: &str, payload: &str) -> anyhow::Result<()> {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut self.connection.clone())
            .await
            .context("PUBLISH")?;
        Ok(())
    }

    /// Scoreline's connection to this server (shared by clones), for feeds under test. It
    /// reconnects by itself; after [`start_again`](RedisServer::start_again) its first command
    /// fails (the old process is gone) and the next one connects to the new process.
    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }
}

/// Leaves a match in Redis as a replica that missed the writes after `kept` holds it once
/// promoted: its history is exactly `kept` (one epoch, oldest first) and its seq counter the last
/// of them. What a failover to a lagging replica does to a match, for tests of what follows.
pub async fn roll_back_to<C: redis::aio::ConnectionLike + Send>(
    connection: &mut C,
    layout: &scoreline_feed::Layout,
    kept: &[scoreline_protocol::ScoreEvent],
) -> anyhow::Result<()> {
    let Some(last) = kept.last() else {
        anyhow::bail!("roll back to at least one event");
    };
    let topic = &last.match_topic;
    let mut rollback = redis::pipe();
    rollback.atomic().del(layout.history_key(topic));
    for event in kept {
        rollback
            .cmd("XADD")
            .arg(layout.history_key(topic))
            .arg(format!("0-{}", event.seq))
            .arg("event")
            .arg(event.to_json());
    }
    rollback.hset(layout.sequence_key(topic), "seq", last.seq);
    let () = rollback.query_async(connection).await?;
    Ok(())
}
