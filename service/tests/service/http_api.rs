//! The HTTP API: match snapshots and publishing.

use scoreline_protocol::{EventKind, MatchSnapshot, Side};
use scoreline_testkit::{RedisServer, TEST_TOKEN, TestApp, event, goal, http, scheduled};

use crate::{next_event, subscribe, wait_for_seq};

const GAME: &str = "football/premier-league/ars-che";

#[tokio::test]
async fn matches_can_be_listed_by_topic_and_status_and_fetched_one_by_one() {
    let app = TestApp::in_memory().await.unwrap();
    app.publish_http(&event(GAME, 1, scheduled("ARS", "CHE")))
        .await
        .unwrap();
    app.publish_http(&event(GAME, 2, EventKind::MatchStarted))
        .await
        .unwrap();
    app.publish_http(&event(
        "football/premier-league/liv-eve",
        1,
        scheduled("LIV", "EVE"),
    ))
    .await
    .unwrap();
    app.publish_http(&event("basketball/nba/lal-bos", 1, EventKind::MatchStarted))
        .await
        .unwrap();
    // A match at half-time: a fan's "live" includes it.
    let half_time = "football/premier-league/mci-tot";
    for (seq, kind) in [
        (1, scheduled("MCI", "TOT")),
        (2, EventKind::PeriodStarted { period: 1 }),
        (3, EventKind::PeriodEnded { period: 1 }),
    ] {
        app.publish_http(&event(half_time, seq, kind))
            .await
            .unwrap();
    }
    wait_for_seq(&app, "basketball/nba/lal-bos", 1).await;
    wait_for_seq(&app, half_time, 3).await;

    assert_eq!(
        listed(&app, "/api/matches?topic=football&status=live").await,
        [GAME, half_time],
        "live includes the match at half-time"
    );
    assert_eq!(
        listed(&app, "/api/matches?topic=football&status=break").await,
        [half_time]
    );
    assert_eq!(
        listed(&app, "/api/matches?topic=football&status=live,break").await,
        [GAME, half_time]
    );
    assert_eq!(
        listed(&app, "/api/matches?status=break,scheduled").await,
        ["football/premier-league/liv-eve", half_time]
    );
    assert_eq!(listed(&app, "/api/matches?status=finished").await, [""; 0]);

    let all = app.get("/api/matches").await.unwrap().json().unwrap();
    assert_eq!(all["matches"].as_array().unwrap().len(), 4);
    let limited = app
        .get("/api/matches?limit=1")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (
            limited["matches"].as_array().unwrap().len(),
            limited["omitted"].as_u64()
        ),
        (1, Some(3))
    );

    let one = app.get(&format!("/api/matches/{GAME}")).await.unwrap();
    let snapshot: MatchSnapshot = serde_json::from_str(&one.body).unwrap();
    assert_eq!((snapshot.seq, snapshot.home.name.as_str()), (2, "ARS"));

    assert_eq!(
        app.get("/api/matches/football/premier-league/nobody")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        app.get("/api/matches/football/premier-league")
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        app.get("/api/matches?topic=Foot%20Ball")
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        app.get("/api/matches?status=sleeping")
            .await
            .unwrap()
            .status,
        400
    );
    let refused = app.get("/api/matches?status=live,sleeping").await.unwrap();
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("sleeping"), "{}", refused.body);
}

#[tokio::test]
async fn publishing_needs_the_token_and_a_valid_event() {
    let redis = RedisServer::start().unwrap();
    let app = TestApp::with_redis(&redis).await.unwrap();
    let mut client = app.client().await.unwrap();
    subscribe(&mut client, &["football"]).await;
    let url = app.http_url("/api/publish");
    let body = Some(event(GAME, 1, goal(Side::Home)).to_json());

    let without = http("POST", &url, Vec::new(), body.clone()).await.unwrap();
    assert_eq!(without.status, 401);
    let wrong = vec![("Authorization".to_owned(), "Bearer nope".to_owned())];
    assert_eq!(
        http("POST", &url, wrong, body.clone())
            .await
            .unwrap()
            .status,
        401
    );

    let auth = vec![("Authorization".to_owned(), format!("Bearer {TEST_TOKEN}"))];
    let bad = http(
        "POST",
        &url,
        auth.clone(),
        Some(r#"{"match":"x"}"#.to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json().unwrap()["error"], "bad_request");

    let accepted = http("POST", &url, auth, body).await.unwrap();
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    // Through Redis and back to the subscriber.
    assert_eq!(next_event(&mut client).await.kind, goal(Side::Home));
}

#[tokio::test]
async fn publishing_is_off_without_a_token() {
    let mut config = TestApp::config(None);
    config.publish_token = None;
    let app = TestApp::spawn(config).await.unwrap();
    let reply = app
        .publish_http(&event(GAME, 1, goal(Side::Home)))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
}

/// The match topics `GET path` lists, sorted.
async fn listed(app: &TestApp, path: &str) -> Vec<String> {
    let reply = app.get(path).await.unwrap();
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    let mut topics: Vec<String> = reply.json().unwrap()["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|snapshot| snapshot["match"].as_str().unwrap().to_owned())
        .collect();
    topics.sort();
    topics
}
