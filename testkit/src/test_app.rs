//! The real service, started for one test.

use std::time::Duration;

use anyhow::Context;
use scoreline_protocol::{MatchSnapshot, ScoreEvent, ServerMessage};
use scoreline_service::startup::RunError;
use scoreline_service::{Application, BrokerKind, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{RedisServer, SentinelSetup, WsClient};

/// The publish token every test service accepts.
pub const TEST_TOKEN: &str = "test-token";

/// A running service on a free loopback port, started exactly as `main` starts it (through
/// [`Application::build`]), and stopped when the value is dropped or [`TestApp::shutdown`] is
/// called.
pub struct TestApp {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl TestApp {
    /// Settings for tests: port 0, short heartbeats, publish token [`TEST_TOKEN`], no `watching`
    /// counts (an hourly round), and the given Redis (or the in-process broker with `None`).
    pub fn config(redis: Option<&RedisServer>) -> Config {
        let mut config = Config::defaults();
        config.listen = ([127, 0, 0, 1], 0).into();
        config.workers = Some(1);
        config.heartbeat_secs = 1;
        config.idle_timeout_secs = 10;
        config.shutdown_timeout_secs = 3;
        config.publish_token = Some(TEST_TOKEN.to_owned());
        // `watching` counts would otherwise arrive every 5 s between the messages a test
        // expects; the audience tests set their own interval.
        config.audience_interval_millis = 3_600_000;
        match redis {
            Some(redis) => {
                config.broker = Some(BrokerKind::Redis);
                config.redis_url = Some(redis.url());
            }
            None => config.broker = Some(BrokerKind::Memory),
        }
        config
    }

    /// Starts the service on a private Redis and waits until it is subscribed (when Redis is up),
    /// so events published next are not missed.
    pub async fn with_redis(redis: &RedisServer) -> anyhow::Result<TestApp> {
        let app = TestApp::spawn(TestApp::config(Some(redis))).await?;
        if redis.is_running() {
            app.wait_until_ready(true).await?;
        }
        Ok(app)
    }

    /// Starts the service on the master of a Sentinel setup, given by its `redis+sentinel://`
    /// URL as an operator would, and waits until it is subscribed.
    pub async fn with_sentinel(sentinel: &SentinelSetup) -> anyhow::Result<TestApp> {
        let mut config = TestApp::config(None);
        config.broker = Some(BrokerKind::Redis);
        config.redis_url = Some(sentinel.url());
        let app = TestApp::spawn(config).await?;
        app.wait_until_ready(true).await?;
        Ok(app)
    }

    /// Starts the service on its in-process broker.
    pub async fn in_memory() -> anyhow::Result<TestApp> {
        TestApp::spawn(TestApp::config(None)).await
    }

    /// Starts the service with any configuration (see [`TestApp::config`] for a base). With Redis,
    /// call [`TestApp::wait_until_ready`] before publishing.
    pub async fn spawn(config: Config) -> anyhow::Result<TestApp> {
        let application = Application::build(config).await?;
        let port = application.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        Ok(TestApp {
            port,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A connected client that has read the welcome.
    pub async fn client(&self) -> anyhow::Result<WsClient> {
        let mut client = WsClient::connect(&self.ws_url()).await?;
        match client.recv().await? {
            ServerMessage::Welcome { .. } => Ok(client),
            other => anyhow::bail!("expected a welcome first, got {other:?}"),
        }
    }

    /// Publishes an event through `POST /api/publish`.
    pub async fn publish_http(&self, event: &ScoreEvent) -> anyhow::Result<HttpReply> {
        let headers = vec![("Authorization".to_owned(), format!("Bearer {TEST_TOKEN}"))];
        http(
            "POST",
            &self.http_url("/api/publish"),
            headers,
            Some(event.to_json()),
        )
        .await
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> anyhow::Result<HttpReply> {
        http("GET", &self.http_url(path), Vec::new(), None).await
    }

    /// Waits until the service has applied `seq` of `topic` (events reach it through Redis
    /// asynchronously), up to [`crate::PATIENCE`]; its snapshot then.
    pub async fn wait_for_seq(&self, topic: &str, seq: u64) -> anyhow::Result<MatchSnapshot> {
        let deadline = tokio::time::Instant::now() + crate::PATIENCE;
        loop {
            let reply = self.get(&format!("/api/matches/{topic}")).await?;
            if reply.status == 200 {
                let snapshot: MatchSnapshot = serde_json::from_str(&reply.body)?;
                if snapshot.seq >= seq {
                    return Ok(snapshot);
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{topic} never reached seq {seq}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/readyz` counts exactly `open` WebSocket connections (a closed one is
    /// counted until its session has ended), up to [`crate::PATIENCE`].
    pub async fn wait_for_connections(&self, open: u64) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + crate::PATIENCE;
        loop {
            let reply = self.get("/readyz").await?;
            let counted = reply.json()?["connections"].as_u64();
            if counted == Some(open) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "readyz still counts {counted:?} connections (wanted {open})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/readyz` says `ready` (or not), up to 15 s.
    pub async fn wait_until_ready(&self, ready: bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let reply = self.get("/readyz").await?;
            if (reply.status == 200) == ready {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "readyz stayed {} (wanted ready = {ready})",
                reply.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shuts the service down gracefully and waits for it to stop.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => Ok(task.await.context("the service task panicked")??),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP response as tests look at it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// Response headers, names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
}

impl HttpReply {
    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

/// Sends one HTTP request (on a blocking thread, as ureq is synchronous) and returns any status.
pub async fn http(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<String>,
) -> anyhow::Result<HttpReply> {
    let (method, url) = (method.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut request = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let request = request.body(body.unwrap_or_default())?;
        let mut response = agent
            .run(request)
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        let body = response.body_mut().read_to_string()?;
        Ok(HttpReply {
            status,
            body,
            headers,
        })
    })
    .await?
}
