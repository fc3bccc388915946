//! Bad input never panics and never disturbs other clients: each gets an error message or the
//! right close code, and a counter in /metrics.

use scoreline_protocol::{ClientMessage, ErrorCode, EventKind, ServerMessage, Side};
use scoreline_testkit::{RedisServer, TestApp, event, goal, http};
use tokio_tungstenite::tungstenite::Message;

use scoreline_service::telemetry::BAD_INPUTS;

use crate::{metric, next_event, series, subscribe};

const GAME: &str = "football/premier-league/ars-che";

/// Sends `text` and expects an `error` with `code` that echoes the request.
async fn expect_error(client: &mut scoreline_testkit::WsClient, text: &str, code: ErrorCode) {
    client
        .send_raw(Message::text(text.to_owned()))
        .await
        .unwrap();
    match client.recv().await.unwrap() {
        ServerMessage::Error {
            code: got,
            message,
            request,
        } => {
            assert_eq!(got, code, "for {text}: {message}");
            assert_eq!(request.as_deref(), Some(text));
        }
        other => panic!("expected an error for {text}, got {other:?}"),
    }
}

#[tokio::test]
async fn each_bad_request_gets_an_error_and_the_connection_survives() {
    let mut config = TestApp::config(None);
    config.max_topics = 3;
    let app = TestApp::spawn(config).await.unwrap();
    let mut client = app.client().await.unwrap();

    expect_error(&mut client, "{not json", ErrorCode::BadRequest).await;
    expect_error(
        &mut client,
        r#"{"type":"subscribe"}"#,
        ErrorCode::BadRequest,
    )
    .await;
    expect_error(
        &mut client,
        r#"{"type":"subscribe","topics":[]}"#,
        ErrorCode::BadRequest,
    )
    .await;
    expect_error(&mut client, r#"{"type":"dance"}"#, ErrorCode::UnknownType).await;
    expect_error(
        &mut client,
        r#"{"type":"subscribe","topics":["Foot Ball"]}"#,
        ErrorCode::InvalidTopic,
    )
    .await;
    expect_error(
        &mut client,
        r#"{"type":"subscribe","topics":["a/b/c/d"]}"#,
        ErrorCode::InvalidTopic,
    )
    .await;
    client
        .send_raw(Message::text(
            r#"{"type":"subscribe","topics":["a","b","c","d"]}"#,
        ))
        .await
        .unwrap();
    assert!(matches!(
        client.recv().await.unwrap(),
        ServerMessage::Error {
            code: ErrorCode::TooManyTopics,
            ..
        }
    ));

    // Still fully usable afterwards.
    subscribe(&mut client, &["football"]).await;
    app.publish_http(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();
    assert_eq!(next_event(&mut client).await.seq, 1);
    // Each refusal counted once, under its own kind, and nothing else.
    let mut counted = series(&app, BAD_INPUTS).await;
    counted.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [
        ("bad_request", 3.0),
        ("invalid_topic", 2.0),
        ("too_many_topics", 1.0),
        ("unknown_type", 1.0),
    ]
    .map(|(kind, count)| (format!("kind=\"{kind}\""), count));
    assert_eq!(counted, expected);
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = app.client().await.unwrap();
    client
        .send_raw(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(client.closed().await.unwrap().code, Some(1003));
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009() {
    let mut config = TestApp::config(None);
    config.max_frame_bytes = 1024;
    let app = TestApp::spawn(config).await.unwrap();
    let mut client = app.client().await.unwrap();
    let huge = format!(
        r#"{{"type":"subscribe","topics":["{}"]}}"#,
        "a".repeat(4000)
    );
    client.send_raw(Message::text(huge)).await.unwrap();
    assert_eq!(client.closed().await.unwrap().code, Some(1009));
}

#[tokio::test]
async fn a_request_flood_is_limited_then_closed_with_1008_without_disturbing_others() {
    let mut config = TestApp::config(None);
    config.max_requests_per_sec = 5;
    let app = TestApp::spawn(config).await.unwrap();
    let mut bystander = app.client().await.unwrap();
    subscribe(&mut bystander, &["football"]).await;
    let mut flooder = app.client().await.unwrap();
    for id in 0..60 {
        // The server may close mid-flood; later sends may fail.
        if flooder.send(&ClientMessage::Ping { id }).await.is_err() {
            break;
        }
    }
    let mut limited = 0;
    let close = loop {
        match flooder.recv().await {
            Ok(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => limited += 1,
            Ok(_) => {}
            Err(error) => break error.to_string(),
        }
    };
    assert!(limited > 0, "no rate_limited error before the close");
    assert!(
        close.contains("1008") || close.contains("Policy"),
        "closed with: {close}"
    );

    app.publish_http(&event(GAME, 1, goal(Side::Home)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut bystander).await.seq, 1);
}

#[tokio::test]
async fn malformed_events_from_redis_are_dropped_and_counted() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football"]).await;

    let channel = format!("scores:{GAME}");
    redis
        .publish_raw(&channel, "{this is not json")
        .await
        .unwrap();
    redis
        .publish_raw(
            &channel,
            r#"{"match":"football/premier-league/ars-che","seq":1}"#,
        )
        .await
        .unwrap();
    let elsewhere = event(
        "football/premier-league/liv-eve",
        1,
        EventKind::MatchStarted,
    )
    .to_json();
    redis.publish_raw(&channel, &elsewhere).await.unwrap();
    redis
        .publish(&event(GAME, 1, EventKind::MatchStarted))
        .await
        .unwrap();

    let received = next_event(&mut client).await;
    assert_eq!((received.match_topic.as_str(), received.seq), (GAME, 1));
    let bad_events = metric(&app, BAD_INPUTS, r#"kind="broker_bad_event""#).await;
    assert_eq!(bad_events, 2.0);
    let mismatched = metric(&app, BAD_INPUTS, r#"kind="broker_channel_mismatch""#).await;
    assert_eq!(mismatched, 1.0);
}

#[tokio::test]
async fn origins_off_the_list_are_refused() {
    let mut config = TestApp::config(None);
    config.allowed_origins = vec!["https://fans.example".to_owned()];
    let app = TestApp::spawn(config).await.unwrap();
    let upgrade = |origin: &str| {
        vec![
            ("Origin".to_owned(), origin.to_owned()),
            ("Connection".to_owned(), "Upgrade".to_owned()),
            ("Upgrade".to_owned(), "websocket".to_owned()),
            ("Sec-WebSocket-Version".to_owned(), "13".to_owned()),
            (
                "Sec-WebSocket-Key".to_owned(),
                "dGhlIHNhbXBsZSBub25jZQ==".to_owned(),
            ),
        ]
    };
    let url = app.http_url("/ws");
    let refused = http("GET", &url, upgrade("https://evil.example"), None)
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    // No Origin header: not a browser, allowed.
    assert!(app.client().await.is_ok());
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_503() {
    let mut config = TestApp::config(None);
    config.max_connections = 2;
    let app = TestApp::spawn(config).await.unwrap();
    let first = app.client().await.unwrap();
    let _second = app.client().await.unwrap();
    let third = scoreline_testkit::WsClient::connect(&app.ws_url()).await;
    let error = third.err().expect("the third connection must be refused");
    match error.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
        Some(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("expected an HTTP 503 refusal, got {other:?} ({error:#})"),
    }
    // A slot frees when a client leaves.
    first.close().await.unwrap();
    app.wait_for_connections(1).await.unwrap();
    assert!(app.client().await.is_ok());
}
