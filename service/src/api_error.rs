//! [`ApiError`]: every refusal of an HTTP request (the API routes and the WebSocket upgrade),
//! each mapped to one status code and error code, with its cause kept as a source.

use actix_web::error::QueryPayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use scoreline_protocol::{MatchTopic, TopicError};

use crate::broker::BrokerError;
use crate::hub::HubGone;
use crate::matches::UnknownStatus;
use crate::telemetry::ErrorChain;
use crate::upgrade::HandshakeError;

/// Everything an HTTP request can be refused with. The body is
/// `{"error": "<code>", "message": "<the error and its causes>"}`; the code is one of
/// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `unprocessable`,
/// `upgrade_required`, `unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The query string does not parse (400).
    #[error("invalid query string")]
    InvalidQuery(#[source] QueryPayloadError),
    /// A topic in the path or the query is not valid (400).
    #[error("invalid topic {topic:?}")]
    InvalidTopic {
        /// The text given.
        topic: String,
        /// What is wrong with it.
        #[source]
        error: TopicError,
    },
    /// A `status` filter names no match status (400).
    #[error("invalid status filter")]
    InvalidStatus(#[source] UnknownStatus),
    /// The body of `POST /api/publish` is not a score event (400).
    #[error("not a valid score event")]
    InvalidEvent(#[source] serde_json::Error),
    /// A plain `GET /ws`, without the upgrade headers (400).
    #[error(
        "this is the WebSocket endpoint: connect with a WebSocket client \
         (GET with `Connection: Upgrade` and `Upgrade: websocket`)"
    )]
    NotAnUpgrade,
    /// No bearer token, or the wrong one (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// `POST /api/publish` on a service started without `--publish-token` (403).
    #[error("publishing over HTTP is disabled: start the service with --publish-token")]
    PublishingDisabled,
    /// A browser origin not on `--allowed-origin` (403).
    #[error("origin {origin:?} is not allowed")]
    OriginRefused {
        /// The `Origin` header sent.
        origin: String,
    },
    /// No such match (404).
    #[error("no match {0}")]
    NoSuchMatch(MatchTopic),
    /// A WebSocket upgrade on another path than `/ws` (404).
    #[error("no WebSocket endpoint at {path}; connect to {endpoint}")]
    NoWebSocketHere {
        /// The path asked for.
        path: String,
        /// The one that speaks WebSocket.
        endpoint: &'static str,
    },
    /// A well-formed request that cannot apply: an event its match's reducer refuses, with the
    /// reducer's reason (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The broker could not take a published event (503).
    #[error("the event could not be published")]
    BrokerUnavailable(#[source] BrokerError),
    /// The hub is gone: the service is shutting down (503).
    #[error("the service is shutting down")]
    ShuttingDown(#[from] HubGone),
    /// `--max-connections` WebSockets are open (503).
    #[error("connection limit reached; try again later")]
    ConnectionLimit,
    /// A WebSocket upgrade whose handshake breaks RFC 6455 (400; 405 for a method other than
    /// `GET`, 426 for a version other than 13).
    #[error("invalid WebSocket handshake")]
    BadHandshake(#[from] HandshakeError),
}

impl ApiError {
    /// The `error` field of the body: one per status.
    pub fn code(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::UPGRADE_REQUIRED => "upgrade_required",
            _ => "unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidQuery(_)
            | ApiError::InvalidTopic { .. }
            | ApiError::InvalidStatus(_)
            | ApiError::InvalidEvent(_)
            | ApiError::NotAnUpgrade => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::PublishingDisabled | ApiError::OriginRefused { .. } => StatusCode::FORBIDDEN,
            ApiError::NoSuchMatch(_) | ApiError::NoWebSocketHere { .. } => StatusCode::NOT_FOUND,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BrokerUnavailable(_)
            | ApiError::ShuttingDown(_)
            | ApiError::ConnectionLimit => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadHandshake(HandshakeError::NotGet) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadHandshake(HandshakeError::UnsupportedVersion) => {
                StatusCode::UPGRADE_REQUIRED
            }
            ApiError::BadHandshake(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::BadHandshake(HandshakeError::NotGet) => {
                response.insert_header((header::ALLOW, "GET"));
            }
            ApiError::BadHandshake(HandshakeError::UnsupportedVersion) => {
                response.insert_header((header::SEC_WEBSOCKET_VERSION, "13"));
            }
            _ => {}
        }
        // The whole chain: a client is told why ("invalid topic \"x y\": ..."), not just that.
        let message = ErrorChain(self).to_string();
        response.json(serde_json::json!({ "error": self.code(), "message": message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_one_status_and_its_body_names_every_cause() {
        let error = ApiError::InvalidTopic {
            topic: "Foot Ball".into(),
            error: scoreline_protocol::Topic::parse("Foot Ball").unwrap_err(),
        };
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
        let body = actix_web::body::to_bytes(error.error_response().into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "bad_request");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid topic \"Foot Ball\": "),
            "{message}"
        );

        let codes = [
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::PublishingDisabled, 403, "forbidden"),
            (
                ApiError::NoWebSocketHere {
                    path: "/x".into(),
                    endpoint: "/ws",
                },
                404,
                "not_found",
            ),
            (
                ApiError::Unprocessable("a goal after the end".into()),
                422,
                "unprocessable",
            ),
            (ApiError::ShuttingDown(HubGone), 503, "unavailable"),
            (ApiError::ConnectionLimit, 503, "unavailable"),
        ];
        for (error, status, code) in codes {
            assert_eq!(error.status_code().as_u16(), status, "{error}");
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
