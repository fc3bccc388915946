//! HTTP routes: the WebSocket upgrade, the match API, HTTP publishing and operations endpoints.
//! Each handler is a thin shell: validate, ask the hub or the broker, map the error to a status.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use scoreline_protocol::{EventDraft, MatchSnapshot, MatchTopic, ScoreEvent, Topic};
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::broker::PublishDraftError;
use crate::matches::StatusFilter;
use crate::state::AppState;
use crate::{telemetry, upgrade};

/// Registers every route.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            upgrade::WEBSOCKET_PATH,
            web::get().to(websocket_without_upgrade),
        )
        .route("/api/matches", web::get().to(list_matches))
        .route("/api/matches/{topic:.*}", web::get().to(get_match))
        .service(
            web::resource("/api/publish")
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route(web::post().to(publish)),
        )
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// `GET /ws` without the upgrade headers (with them, actix-http hands the request to
/// [`crate::upgrade`] before routing): say what is expected instead of a bare 404.
async fn websocket_without_upgrade() -> Result<HttpResponse, ApiError> {
    telemetry::bad_input("websocket_handshake");
    Err(ApiError::NotAnUpgrade)
}

/// Query of `GET /api/matches`.
#[derive(Debug, Deserialize)]
struct MatchesQuery {
    /// A topic prefix.
    topic: Option<String>,
    /// A comma-separated list of statuses: `live` (which includes `break` and `suspended`),
    /// `scheduled`, `finished`...
    status: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /api/matches?topic=<prefix>&status=<status,...>&limit=<n>`: snapshots, live first.
async fn list_matches(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<MatchesQuery>::from_query(request.query_string())
        .map_err(ApiError::InvalidQuery)?;
    let prefix = query
        .topic
        .as_deref()
        .map(|text| {
            Topic::parse(text).map_err(|error| ApiError::InvalidTopic {
                topic: text.to_owned(),
                error,
            })
        })
        .transpose()?;
    let status = StatusFilter::parse(query.status.as_deref().unwrap_or_default())
        .map_err(ApiError::InvalidStatus)?;
    let limit = query.limit.unwrap_or(100).min(1000);
    let (matches, omitted) = state.hub.query(prefix, status, limit).await?;
    // A struct, not `json!`, so each snapshot keeps its documented field order.
    #[derive(serde::Serialize)]
    struct MatchList {
        matches: Vec<MatchSnapshot>,
        omitted: usize,
    }
    Ok(HttpResponse::Ok().json(MatchList { matches, omitted }))
}

/// `GET /api/matches/<sport>/<competition>/<match>`: one snapshot.
async fn get_match(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let topic = MatchTopic::parse(&path).map_err(|error| ApiError::InvalidTopic {
        topic: path.into_inner(),
        error,
    })?;
    match state.hub.get(topic.clone()).await? {
        Some(snapshot) => Ok(HttpResponse::Ok().json(snapshot)),
        None => Err(ApiError::NoSuchMatch(topic)),
    }
}

/// Query of `POST /api/publish`.
#[derive(Debug, Deserialize)]
struct PublishQuery {
    /// Start a new history (a new epoch) for the match with this event.
    #[serde(default)]
    new_history: bool,
}

/// `POST /api/publish[?new_history=true]` with `Authorization: Bearer <token>`: publishes one
/// event through the broker, for feeds that cannot reach Redis. An event without `seq` is
/// numbered in its match's history (and recorded there), like the Redis publish script does; an
/// event with its own `seq` is published as it is, best-effort. 202 when the broker took it.
async fn publish(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(expected) = &state.config.publish_token else {
        return Err(ApiError::PublishingDisabled);
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
        telemetry::bad_input("publish_unauthorized");
        return Err(ApiError::Unauthorized);
    }
    let new_history = web::Query::<PublishQuery>::from_query(request.query_string())
        .map_err(ApiError::InvalidQuery)?
        .new_history;
    let bad_event = |error: serde_json::Error| {
        telemetry::bad_input("publish_bad_event");
        ApiError::InvalidEvent(error)
    };
    let numbered_by_feed = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(bad_event)?
        .get("seq")
        .is_some();
    let event = if numbered_by_feed {
        let event = ScoreEvent::from_json(&body).map_err(bad_event)?;
        state
            .broker
            .check(&event, false)
            .await
            .map_err(publish_failed)?;
        state
            .broker
            .publish(&event)
            .await
            .map_err(|error| publish_failed(error.into()))?;
        event
    } else {
        let draft: EventDraft = serde_json::from_slice(&body).map_err(bad_event)?;
        state
            .broker
            .publish_draft(draft, new_history)
            .await
            .map_err(publish_failed)?
    };
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "accepted": true, "match": event.match_topic, "epoch": event.epoch, "seq": event.seq
    })))
}

/// The answer to a publish that failed: 422 with the reducer's reason for an event that cannot
/// apply (nothing was numbered), 503 (logged here, once, with its causes) when the broker could
/// not take it.
fn publish_failed(error: PublishDraftError) -> ApiError {
    match error {
        PublishDraftError::Refused(reason) => {
            telemetry::bad_input("publish_refused");
            ApiError::Unprocessable(format!("the event does not apply to its match: {reason}"))
        }
        PublishDraftError::Unavailable(error) => {
            let error = ApiError::BrokerUnavailable(error);
            let chain = telemetry::ErrorChain(&error);
            tracing::warn!(error = %chain, "POST /api/publish answered 503");
            error
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /healthz`: the process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: events can flow (the broker is reachable, every supervised task is running,
/// the service is not shutting down). 503 otherwise, so a load balancer stops sending new fans
/// to an instance that would show them stale scores.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let stopped_task = state.supervision.stopped_task();
    let ready = state.broker.is_ready()
        && stopped_task.is_none()
        && !state.sessions_shutdown.is_cancelled();
    let body = serde_json::json!({
        "ready": ready,
        "broker": state.broker.name(),
        "connections": state.connections.open.load(Ordering::Relaxed),
        "stopped_task": stopped_task,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(body)
}

/// `GET /metrics`: Prometheus text format.
async fn metrics() -> HttpResponse {
    let body = telemetry::metrics_handle()
        .map(|handle| handle.render())
        .unwrap_or_default();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
