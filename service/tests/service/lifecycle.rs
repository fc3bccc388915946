//! Start, heartbeat, idle timeout, graceful shutdown, operations endpoints and TLS.

use std::time::Duration;

use scoreline_service::startup::{RunError, TaskFailure};
use scoreline_service::{Application, telemetry};
use scoreline_testkit::{PATIENCE, RedisServer, TestApp, WsClient, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{metric, subscribe};

#[tokio::test]
async fn graceful_shutdown_closes_clients_with_1001() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut first = app.client().await.unwrap();
    let mut second = app.client().await.unwrap();
    subscribe(&mut first, &["football"]).await;
    let stopping = tokio::spawn(app.shutdown());
    assert_eq!(first.closed().await.unwrap().code, Some(1001));
    assert_eq!(second.closed().await.unwrap().code, Some(1001));
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hub_that_panics_takes_readiness_down_and_stops_the_service_with_an_error() {
    let application = Application::build(TestApp::config(None)).await.unwrap();
    let hooks = application.test_hooks();
    let readyz = format!("http://127.0.0.1:{}/readyz", application.port());
    let ws_url = format!("ws://127.0.0.1:{}/ws", application.port());
    let running = tokio::spawn(application.run_until(std::future::pending()));
    assert_eq!(
        http("GET", &readyz, vec![], None).await.unwrap().status,
        200
    );
    // A fan that does not read keeps its session in the closing handshake for a while, so the
    // HTTP server is still up to be asked after the failure.
    let _fan = WsClient::connect(&ws_url).await.unwrap();

    hooks.panic_hub().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let reply = loop {
        let reply = http("GET", &readyz, vec![], None).await.unwrap();
        if reply.status != 200 {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "readyz stayed 200");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json().unwrap()["stopped_task"], "hub");

    let error = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the service did not stop")
        .unwrap()
        .unwrap_err();
    match &error {
        RunError::TaskStopped(TaskFailure::Panicked { task, message }) => {
            assert_eq!(*task, "hub");
            assert!(message.contains("told to panic"), "{message}");
        }
        other => panic!("expected the hub's panic, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let mut config = TestApp::config(None);
    // No ping before the timeout: the close frame is the only thing the client will find.
    config.heartbeat_secs = 30;
    config.idle_timeout_secs = 2;
    let app = TestApp::spawn(config).await.unwrap();
    let connecting = tokio::time::Instant::now();
    let mut silent = app.client().await.unwrap();
    // Reading does not count as hearing from the client: it only waits for the close.
    let closed = silent.closed().await.unwrap();
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(1000), "idle timeout")
    );
    assert!(
        connecting.elapsed() >= Duration::from_secs(2),
        "closed before the idle timeout"
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected_while_idle() {
    let mut config = TestApp::config(None);
    config.heartbeat_secs = 1;
    config.idle_timeout_secs = 2;
    let app = TestApp::spawn(config).await.unwrap();
    let mut client = app.client().await.unwrap();
    // Reading lets the client answer pings; nothing else arrives.
    assert!(client.recv_within(Duration::from_secs(4)).await.is_err());
    client
        .send(&scoreline_protocol::ClientMessage::Ping { id: 1 })
        .await
        .unwrap();
    assert!(client.recv().await.is_ok());
}

#[tokio::test]
async fn operations_endpoints_report_health_readiness_and_metrics() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let _client = app.client().await.unwrap();
    let health = app.get("/healthz").await.unwrap();
    assert_eq!(
        (health.status, health.json().unwrap()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = app.get("/readyz").await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json().unwrap()["broker"], "redis");
    assert_eq!(metric(&app, telemetry::CONNECTIONS, "").await, 1.0);
    assert_eq!(metric(&app, telemetry::BROKER_UP, "").await, 1.0);
}

#[tokio::test]
async fn tls_serves_https_with_the_given_certificate() {
    let dir = std::env::temp_dir().join(format!("scoreline-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for this test (.ci/run installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut config = TestApp::config(None);
    config.tls_cert = Some(cert.clone());
    config.tls_key = Some(key);
    let app = TestApp::spawn(config).await.unwrap();
    let url = format!("https://127.0.0.1:{}/healthz", app.port());
    let output = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .output()
        .await
        .expect("curl is needed for this test (.ci/run installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok"));

    // WSS: the upgraded TLS stream carries the WebSocket (its frames are written through TLS and
    // flushed). openssl is the client: it sends the handshake and prints what comes back.
    let mut client = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&cert)
        .args(["-connect", &format!("127.0.0.1:{}", app.port())])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let mut seen = Vec::new();
    let answered = tokio::time::timeout(scoreline_testkit::PATIENCE, async {
        let mut chunk = [0_u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(r#""type":"welcome""#) {
            let read = stdout.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the TLS connection ended");
            seen.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(answered.is_ok(), "no welcome over WSS; got {seen:?}");
    assert!(seen.starts_with("HTTP/1.1 101"), "{seen:?}");
    drop(stdin);
    let _ = std::fs::remove_dir_all(&dir);
}
