//! A private Redis Sentinel setup for one test: a primary, its replica and three sentinels, all
//! on loopback, with failure injection (kill the master, make the replica lag, fail over).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::{Instant, sleep};

use crate::redis_server::{free_port, unique_suffix};

/// How long a sentinel waits for an unanswered master before it calls it down. Small, so tests
/// fail over in a few seconds; production uses tens of seconds.
pub const DOWN_AFTER_MILLIS: u64 = 1000;
/// Sentinel's `failover-timeout`: how soon a failed failover may be tried again, among others.
pub const FAILOVER_TIMEOUT_MILLIS: u64 = 3000;
/// How long [`SentinelSetup::start`] and [`SentinelSetup::wait_for_new_master`] wait.
const SETUP_PATIENCE: Duration = Duration::from_secs(20);

/// Three sentinels (quorum 2) watching a primary with one replica: every process a child of the
/// test on a free loopback port, without persistence, in a temporary directory. Everything is
/// killed, and the directory removed, when the value is dropped.
///
/// Clients reach the master through [`SentinelSetup::url`], as Scoreline's programs do. The
/// helper itself talks to each process directly: it inspects particular processes, not "the
/// master".
pub struct SentinelSetup {
    dir: PathBuf,
    master_name: String,
    /// The data nodes: the first primary, then its replica. Their roles change at a failover.
    nodes: Vec<Process>,
    sentinels: Vec<Process>,
}

/// One child process on a port.
struct Process {
    port: u16,
    child: Option<Child>,
    paused: bool,
}

impl Process {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it already exited, which is what is wanted.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    fn signal(&self, signal: rustix::process::Signal) -> anyhow::Result<()> {
        let child = self
            .child
            .as_ref()
            .with_context(|| format!("the process on port {} is not running", self.port))?;
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .context("a child pid out of range")?;
        rustix::process::kill_process(pid, signal)
            .with_context(|| format!("signalling the process on port {}", self.port))
    }
}

impl SentinelSetup {
    /// Starts the primary, the replica (`--replicaof`), and three sentinels monitoring the
    /// primary under a master name of its own, then waits until the replica is in sync and every
    /// sentinel knows the replica and the two other sentinels (without which none could fail
    /// over).
    pub async fn start() -> anyhow::Result<SentinelSetup> {
        let dir = std::env::temp_dir().join(format!(
            "scoreline-sentinel-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).context("creating the sentinel working directory")?;
        let mut setup = SentinelSetup {
            dir,
            master_name: format!("scoreline-{}", unique_suffix()),
            nodes: Vec::new(),
            sentinels: Vec::new(),
        };
        let primary = setup.spawn_node(None).await?;
        setup.spawn_node(Some(primary)).await?;
        for index in 0..3 {
            setup.spawn_sentinel(index, primary).await?;
        }
        setup.wait_until_watched().await?;
        Ok(setup)
    }

    /// `redis+sentinel://127.0.0.1:<port>,…/<master name>`: the URL Scoreline's programs take.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!(
            "redis+sentinel://{}/{}",
            sentinels.join(","),
            self.master_name
        )
    }

    /// The name the sentinels monitor the master under.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// A client for one data node, to look at what that node holds.
    pub fn node_client(&self, port: u16) -> anyhow::Result<redis::Client> {
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).context("a node URL")
    }

    /// The master's port as the first answering sentinel reports it.
    pub async fn master_port(&self) -> anyhow::Result<u16> {
        let mut last_error = None;
        for sentinel in self.sentinels.iter().filter(|s| s.child.is_some()) {
            match self.reported_master(sentinel.port).await {
                Ok(port) => return Ok(port),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no sentinel is running")))
    }

    /// Kills the current master with SIGKILL, as a crash would, and returns its port.
    pub async fn kill_master(&mut self) -> anyhow::Result<u16> {
        let port = self.master_port().await?;
        self.node_mut(port)?.kill();
        Ok(port)
    }

    /// Makes the replica fall behind: stops it (SIGSTOP) and has the master drop its replication
    /// link, so that nothing written from now on reaches it until [`resume_replica`]. Stopping
    /// alone is not enough: what the master already sent would wait in the stopped replica's
    /// socket and be applied when it resumes. Returns the replica's port.
    ///
    /// [`resume_replica`]: SentinelSetup::resume_replica
    pub async fn lag_replica(&mut self) -> anyhow::Result<u16> {
        let master = self.master_port().await?;
        let replica = self.replica_port(master)?;
        let process = self.node_mut(replica)?;
        process.signal(rustix::process::Signal::STOP)?;
        process.paused = true;
        let killed: i64 = ask(
            master,
            redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica"),
        )
        .await
        .context("cutting the replication link")?;
        anyhow::ensure!(
            killed >= 1,
            "the master had no replica connected to cut off"
        );
        Ok(replica)
    }

    /// Lets a replica stopped by [`lag_replica`](SentinelSetup::lag_replica) run again.
    pub fn resume_replica(&mut self) -> anyhow::Result<()> {
        for node in self.nodes.iter_mut().filter(|node| node.paused) {
            node.signal(rustix::process::Signal::CONT)?;
            node.paused = false;
        }
        Ok(())
    }

    /// Asks a sentinel to fail over now (`SENTINEL FAILOVER`), the master being alive: the
    /// replica is promoted and the old master demoted to its replica.
    pub async fn failover(&self) -> anyhow::Result<()> {
        let sentinel = self.sentinels.first().context("no sentinel")?;
        let _: redis::Value = ask(
            sentinel.port,
            redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(&self.master_name),
        )
        .await
        .context("SENTINEL FAILOVER")?;
        Ok(())
    }

    /// Waits until the failover is over: every sentinel reports a master other than `old_port`,
    /// that node says it is a master, and the old master, if still running, says it is a
    /// replica (until then it still takes writes, which its demotion then throws away: Redis
    /// replication is asynchronous). Returns the new master's port.
    pub async fn wait_for_new_master(&self, old_port: u16) -> anyhow::Result<u16> {
        let deadline = Instant::now() + SETUP_PATIENCE;
        let old_is_running = self
            .nodes
            .iter()
            .any(|node| node.port == old_port && node.child.is_some() && !node.paused);
        loop {
            let mut reports = Vec::new();
            for sentinel in &self.sentinels {
                reports.push(self.reported_master(sentinel.port).await.ok());
            }
            if let Some(Some(port)) = reports.first()
                && *port != old_port
                && reports.iter().all(|report| *report == Some(*port))
                && self.role(*port).await.as_deref() == Some("master")
                && (!old_is_running || self.role(old_port).await.as_deref() == Some("slave"))
            {
                return Ok(*port);
            }
            if Instant::now() > deadline {
                bail!(
                    "the sentinels did not agree on a new master (other than {old_port}) within {SETUP_PATIENCE:?}: {reports:?}"
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The data node that is not the master.
    fn replica_port(&self, master: u16) -> anyhow::Result<u16> {
        self.nodes
            .iter()
            .map(|node| node.port)
            .find(|port| *port != master)
            .context("no replica")
    }

    fn node_mut(&mut self, port: u16) -> anyhow::Result<&mut Process> {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .with_context(|| format!("no data node on port {port}"))
    }

    async fn reported_master(&self, sentinel: u16) -> anyhow::Result<u16> {
        let (_host, port): (String, u16) = ask(
            sentinel,
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master_name),
        )
        .await?;
        Ok(port)
    }

    /// What `ROLE` says a node is (`master`, `slave`), `None` if it does not answer.
    async fn role(&self, port: u16) -> Option<String> {
        let role: Vec<redis::Value> = ask(port, &redis::cmd("ROLE")).await.ok()?;
        match role.first() {
            Some(redis::Value::BulkString(role)) => String::from_utf8(role.clone()).ok(),
            _ => None,
        }
    }

    /// Starts a data node (a replica of `primary` when given) and waits until it answers, and,
    /// for a replica, until it is in sync.
    async fn spawn_node(&mut self, primary: Option<u16>) -> anyhow::Result<u16> {
        let dir = self.dir.clone();
        let process = spawn_on_free_port(|port| {
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir);
            if let Some(primary) = primary {
                command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
            }
            command
        })
        .await?;
        let port = process.port;
        self.nodes.push(process);
        if primary.is_some() {
            let deadline = Instant::now() + SETUP_PATIENCE;
            loop {
                let info: String = ask(port, redis::cmd("INFO").arg("replication")).await?;
                if info.contains("master_link_status:up") {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the replica on {port} did not sync within {SETUP_PATIENCE:?}"
                );
                sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(port)
    }

    async fn spawn_sentinel(&mut self, index: usize, primary: u16) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let name = self.master_name.clone();
        let process = spawn_on_free_port(|port| {
            let config = dir.join(format!("sentinel-{index}-{port}.conf"));
            // The sentinel rewrites this file as it learns; it must be its own and writable.
            let text = format!(
                "port {port}\n\
                 bind 127.0.0.1\n\
                 dir {dir}\n\
                 sentinel resolve-hostnames no\n\
                 sentinel monitor {name} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {name} {DOWN_AFTER_MILLIS}\n\
                 sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MILLIS}\n\
                 sentinel parallel-syncs {name} 1\n",
                dir = dir.display()
            );
            let mut command = Command::new("redis-server");
            if let Err(error) = std::fs::write(&config, text) {
                // Let the spawn report it: redis-server exits at once without its file.
                eprintln!("writing {}: {error}", config.display());
            }
            command.arg(&config).arg("--sentinel");
            command
        })
        .await?;
        self.sentinels.push(process);
        Ok(())
    }

    /// Waits until every sentinel sees the replica (in sync) and the two other sentinels.
    async fn wait_until_watched(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETUP_PATIENCE;
        let mut last = String::new();
        loop {
            let mut ready = true;
            for sentinel in &self.sentinels {
                let master: Vec<String> = ask(
                    sentinel.port,
                    redis::cmd("SENTINEL").arg("MASTER").arg(&self.master_name),
                )
                .await
                .unwrap_or_default();
                let field = |name: &str| {
                    master
                        .chunks(2)
                        .find(|pair| pair[0] == name)
                        .and_then(|pair| pair.get(1))
                        .cloned()
                        .unwrap_or_default()
                };
                let replicas: Vec<Vec<String>> = ask(
                    sentinel.port,
                    redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(&self.master_name),
                )
                .await
                .unwrap_or_default();
                let replica_ok = replicas.iter().any(|replica| {
                    replica.windows(2).any(|pair| pair == ["flags", "slave"])
                        && replica
                            .windows(2)
                            .any(|pair| pair == ["master-link-status", "ok"])
                });
                if field("num-other-sentinels") != "2" || !replica_ok {
                    ready = false;
                    last = format!(
                        "sentinel {}: {} other sentinels, replica ok: {replica_ok}",
                        sentinel.port,
                        field("num-other-sentinels")
                    );
                }
            }
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the sentinels were not ready within {SETUP_PATIENCE:?} ({last})"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SentinelSetup {
    fn drop(&mut self) {
        for process in self.sentinels.iter_mut().chain(self.nodes.iter_mut()) {
            process.kill();
        }
        // Nothing to do if it is already gone.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `command(port)` on a free port and waits until it answers `PING`, trying a few ports:
/// one found free can be taken before the server binds it.
async fn spawn_on_free_port(command: impl Fn(u16) -> Command) -> anyhow::Result<Process> {
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_port()?;
        let child = command(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed? scripts/setup installs it)")?;
        let mut process = Process {
            port,
            child: Some(child),
            paused: false,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if ask::<String>(port, &redis::cmd("PING")).await.is_ok() {
                return Ok(process);
            }
            if let Some(child) = &mut process.child
                && let Ok(Some(status)) = child.try_wait()
            {
                process.child = None;
                last_error = Some(anyhow::anyhow!(
                    "redis-server on port {port} exited at start with {status}"
                ));
                break;
            }
            if Instant::now() > deadline {
                process.kill();
                last_error = Some(anyhow::anyhow!(
                    "redis-server on port {port} did not answer PING within 5 s"
                ));
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
}

/// One command to one process on loopback, on a connection of its own with short timeouts (a
/// stopped process must not hold the test up).
async fn ask<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> anyhow::Result<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    command
        .query_async(&mut connection)
        .await
        .with_context(|| format!("asking 127.0.0.1:{port}"))
}
