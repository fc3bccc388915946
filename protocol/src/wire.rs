//! Wire messages: the JSON text frames exchanged on the WebSocket.
//!
//! Every frame is one JSON object with a `type` tag. Clients must ignore fields and message types
//! they do not know: new ones may be added within a protocol version. Anything that would break an
//! existing client bumps [`PROTOCOL_VERSION`], which the server announces in [`ServerMessage::Welcome`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{MatchStatus, ScoreEvent, Side, Team};
use crate::snapshot::{MatchSnapshot, Score};
use crate::sport::Sport;
use crate::topic::{MatchTopic, Topic, TopicError};

/// The version of this protocol, announced in the welcome.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request from a client.
///
/// Topics travel as plain strings so that the server can name the exact topic it rejects;
/// [`ClientMessage::parse_topics`] validates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start receiving the matches under each topic: their snapshots first, then live events.
    Subscribe {
        /// Match topics or prefixes (`football`, `football/premier-league`).
        topics: Vec<String>,
        /// Where the client left off, per match topic, after a reconnect: the server sends the
        /// missed events instead of a snapshot, or a `resync` when it cannot prove continuity.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        resume: BTreeMap<String, ResumePoint>,
        /// Spoiler delay: send this connection every event (and every snapshot) this many
        /// seconds after it happened, to match a video stream that runs behind the stadium.
        /// It applies to all the connection's topics; a subscribe that names a new delay moves
        /// them all, and its `subscribed` reply carries every covered match as of the new delay.
        /// Absent: the connection keeps its delay (0, live, until one is named). At most
        /// [`Limits::max_delay_secs`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_secs: Option<u32>,
    },
    /// Stop receiving the topics (exactly as subscribed).
    Unsubscribe {
        /// Topics previously subscribed.
        topics: Vec<String>,
    },
    /// Application-level ping; the server answers [`ServerMessage::Pong`] with the same id, for
    /// round-trip time.
    Ping {
        /// Any number the client chooses.
        id: u64,
    },
    /// Ask which matches the server knows, without subscribing.
    List {
        /// Only matches under this topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Only matches with this status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<MatchStatus>,
    },
}

/// The last event a client applied for one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The match's epoch.
    pub epoch: u64,
    /// The last `seq` applied.
    pub seq: u64,
}

impl ClientMessage {
    /// A subscribe request for validated topics.
    pub fn subscribe<'a>(topics: impl IntoIterator<Item = &'a Topic>) -> ClientMessage {
        ClientMessage::resume(topics, BTreeMap::new())
    }

    /// A subscribe request that resumes matches from where the client left off.
    pub fn resume<'a>(
        topics: impl IntoIterator<Item = &'a Topic>,
        resume: BTreeMap<String, ResumePoint>,
    ) -> ClientMessage {
        let topics = topics.into_iter().map(|t| t.to_string()).collect();
        ClientMessage::Subscribe {
            topics,
            resume,
            delay_secs: None,
        }
    }

    /// The same subscribe request with a spoiler delay (other messages are returned unchanged).
    pub fn delayed(self, secs: u32) -> ClientMessage {
        match self {
            ClientMessage::Subscribe { topics, resume, .. } => ClientMessage::Subscribe {
                topics,
                resume,
                delay_secs: Some(secs),
            },
            other => other,
        }
    }

    /// An unsubscribe request for validated topics.
    pub fn unsubscribe<'a>(topics: impl IntoIterator<Item = &'a Topic>) -> ClientMessage {
        ClientMessage::Unsubscribe {
            topics: topics.into_iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Validates a list of topic strings, naming the first bad one.
    pub fn parse_topics(topics: &[String]) -> Result<Vec<Topic>, (String, TopicError)> {
        topics
            .iter()
            .map(|text| Topic::parse(text).map_err(|error| (text.clone(), error)))
            .collect()
    }

    /// The message as a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame on every connection.
    Welcome {
        /// [`PROTOCOL_VERSION`] of the server.
        protocol: u32,
        /// Server name and version, for logs.
        server: String,
        /// The server pings every this many seconds.
        heartbeat_secs: u64,
        /// A connection silent this long (no frame, no pong) is closed.
        idle_timeout_secs: u64,
        /// What this connection may do.
        limits: Limits,
    },
    /// A subscribe request took effect. The snapshots come before any event of their matches.
    Subscribed {
        /// The topics now subscribed (as requested).
        topics: Vec<Topic>,
        /// Current state of the matches the topics cover, live matches first.
        snapshots: Vec<MatchSnapshot>,
        /// How many more covered matches were left out to keep the frame small; list them with a
        /// `list` request or the HTTP API.
        #[serde(default)]
        omitted: usize,
        /// Matches resumed from the client's resume points: no snapshot; the missed events follow
        /// as `event` messages.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resumed: Vec<MatchTopic>,
        /// The connection's spoiler delay in seconds (0, left out, is live): the snapshots are
        /// the matches as they stood that long ago, and events follow that long after they
        /// happened.
        #[serde(default, skip_serializing_if = "is_zero")]
        delay_secs: u32,
    },
    /// The server cannot prove the client has every event of this match (its history was reset
    /// or trimmed, or events were lost upstream): replace the match with this snapshot.
    Resync {
        /// Why continuity was lost.
        reason: ResyncReason,
        /// The current state; later events follow it.
        snapshot: MatchSnapshot,
    },
    /// An unsubscribe request took effect.
    Unsubscribed {
        /// The topics no longer subscribed.
        topics: Vec<Topic>,
    },
    /// A live event of a subscribed match.
    Event(ScoreEvent),
    /// Answer to [`ClientMessage::Ping`].
    Pong {
        /// The ping's id.
        id: u64,
        /// Server time, milliseconds since the Unix epoch.
        server_ms: u64,
    },
    /// How many fans watch a match: connections, on every instance sharing the Redis, that
    /// subscribed to the match's own topic (what a fan does by opening the match). Sent to those
    /// fans every few seconds when it changed; only the latest matters (coalescable).
    Watching {
        /// The match.
        #[serde(rename = "match")]
        match_topic: MatchTopic,
        /// Fans watching it now, this connection included.
        fans: u64,
    },
    /// Answer to [`ClientMessage::List`].
    Catalogue {
        /// Matches found, live first.
        matches: Vec<MatchSummary>,
        /// How many more matched but were left out.
        #[serde(default)]
        omitted: usize,
    },
    /// A request was refused, or something went wrong with this connection.
    Error {
        /// What kind of problem, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The offending request as received (cut to a few hundred bytes), when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

impl ServerMessage {
    /// The message as a JSON text frame.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string map keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a text frame from the server.
    pub fn from_json(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Why a `resync` was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The match's history was reset (a new epoch) since the client's resume point.
    EpochChanged,
    /// The missed events are older than the history the server keeps.
    HistoryTrimmed,
    /// Events were lost between the feed and the server and could not be recovered.
    EventsLost,
    /// The resume point is ahead of the server's history (the client saw another history).
    UnknownPosition,
    /// Redis's history of the match differs from what was delivered (a failover to a replica
    /// that had missed writes, then other events under the same seqs): the server rebuilt the
    /// match from the history, which is the truth, and this snapshot replaces what was shown.
    HistoryRewritten,
    /// A reason this version does not know (sent by a newer server); handle it like any resync.
    #[serde(other)]
    Other,
}

/// Limits the server enforces on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most topics subscribed at once.
    pub max_topics: usize,
    /// Largest client frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Requests per second allowed on average (bursts of twice that are tolerated).
    pub max_requests_per_sec: u32,
    /// Most snapshots sent in one `subscribed` reply.
    pub max_snapshots: usize,
    /// Longest spoiler delay a subscribe may ask for, in seconds (0 from a server without
    /// spoiler delay).
    #[serde(default)]
    pub max_delay_secs: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// A [`ServerMessage::Subscribed`] whose snapshots are already JSON, for a server that keeps
/// each match's serialised snapshot between events: a fan subscribing then costs a copy of
/// those bytes, not a clone and a serialisation of each snapshot. Serialises to exactly the
/// bytes of the `ServerMessage::Subscribed` with those snapshots.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "subscribed")]
pub struct SubscribedFrame<'a> {
    /// As in [`ServerMessage::Subscribed`].
    pub topics: &'a [Topic],
    /// Each one a [`MatchSnapshot`] as JSON.
    pub snapshots: &'a [&'a serde_json::value::RawValue],
    /// As in [`ServerMessage::Subscribed`].
    pub omitted: usize,
    /// As in [`ServerMessage::Subscribed`].
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub resumed: &'a [MatchTopic],
    /// As in [`ServerMessage::Subscribed`].
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_secs: u32,
}

impl SubscribedFrame<'_> {
    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        // Plain data and JSON already checked when its `RawValue` was made: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a request was refused; each code is documented in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON, or not a known message shape.
    BadRequest,
    /// The `type` is not one this server knows.
    UnknownType,
    /// A topic is not a valid topic.
    InvalidTopic,
    /// The subscription would exceed [`Limits::max_topics`].
    TooManyTopics,
    /// Requests are coming faster than [`Limits::max_requests_per_sec`].
    RateLimited,
    /// The server is shutting down or overloaded.
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `invalid_topic`; also used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidTopic => "invalid_topic",
            ErrorCode::TooManyTopics => "too_many_topics",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// A one-line view of a match, for catalogues and lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchSummary {
    /// The match.
    #[serde(rename = "match")]
    pub match_topic: MatchTopic,
    /// Its sport.
    pub sport: Sport,
    /// Display name of the competition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competition: Option<String>,
    /// Home team or first-named player.
    pub home: Team,
    /// Away team or second-named player.
    pub away: Team,
    /// Scheduled, live, finished...
    pub status: MatchStatus,
    /// Headline score.
    pub score: Score,
    /// Planned start, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kickoff_ms: Option<u64>,
    /// The winner, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Side>,
}

impl From<&MatchSnapshot> for MatchSummary {
    fn from(snapshot: &MatchSnapshot) -> MatchSummary {
        MatchSummary {
            match_topic: snapshot.match_topic.clone(),
            sport: snapshot.sport,
            competition: snapshot.competition.clone(),
            home: snapshot.home.clone(),
            away: snapshot.away.clone(),
            status: snapshot.status,
            score: snapshot.score,
            kickoff_ms: snapshot.kickoff_ms,
            winner: snapshot.winner,
        }
    }
}

/// Orders matches the way fans want them listed: live first, then upcoming by kickoff, then the
/// most recently finished.
pub fn listing_order(a: &MatchSnapshot, b: &MatchSnapshot) -> std::cmp::Ordering {
    fn rank(status: MatchStatus) -> u8 {
        match status {
            MatchStatus::Live | MatchStatus::Break | MatchStatus::Suspended => 0,
            MatchStatus::Scheduled => 1,
            _ => 2,
        }
    }
    rank(a.status)
        .cmp(&rank(b.status))
        .then_with(|| match rank(a.status) {
            2 => b.updated_ms.cmp(&a.updated_ms),
            _ => a.kickoff_ms.cmp(&b.kickoff_ms),
        })
        .then_with(|| a.match_topic.cmp(&b.match_topic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn a_subscribed_frame_over_snapshot_json_is_the_subscribed_message_byte_for_byte() {
        use crate::test_support::{arsenal_chelsea, event, goal_by};
        let mut first = MatchSnapshot::new(MatchTopic::parse("football/pl/ars-che").unwrap());
        for (seq, kind) in [
            (1, arsenal_chelsea()),
            (2, goal_by(Side::Home, "Saka")),
            (3, goal_by(Side::Away, "Palmer \"Cole\" \u{e9}")),
        ] {
            crate::apply(&mut first, &event("football/pl/ars-che", seq, kind)).unwrap();
        }
        let second = MatchSnapshot::new(MatchTopic::parse("football/pl/liv-eve").unwrap());
        let topics = vec![Topic::parse("football/pl").unwrap()];
        let resumed = vec![MatchTopic::parse("football/pl/tot-ars").unwrap()];
        for (resumed, delay_secs) in [(vec![], 0), (resumed, 40)] {
            let message = ServerMessage::Subscribed {
                topics: topics.clone(),
                snapshots: vec![first.clone(), second.clone()],
                omitted: 3,
                resumed: resumed.clone(),
                delay_secs,
            };
            let json: Vec<Box<serde_json::value::RawValue>> = [&first, &second]
                .iter()
                .map(|snapshot| serde_json::value::RawValue::from_string(snapshot.to_json()))
                .collect::<Result<_, _>>()
                .unwrap();
            let raw: Vec<&serde_json::value::RawValue> = json.iter().map(AsRef::as_ref).collect();
            let frame = SubscribedFrame {
                topics: &topics,
                snapshots: &raw,
                omitted: 3,
                resumed: &resumed,
                delay_secs,
            };
            assert_eq!(frame.to_json(), message.to_json());
        }
    }

    #[test]
    fn client_messages_have_documented_shapes() {
        let sub: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","topics":["football"]}"#).unwrap();
        let football = Topic::parse("football").unwrap();
        assert_eq!(sub, ClientMessage::subscribe([&football]));
        let resume: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","topics":["football"],"resume":{"football/pl/a-b":{"epoch":3,"seq":9}}}"#,
        )
        .unwrap();
        let ClientMessage::Subscribe { resume, .. } = resume else {
            panic!()
        };
        assert_eq!(resume["football/pl/a-b"], ResumePoint { epoch: 3, seq: 9 });
        let delayed: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","topics":["football"],"delay_secs":40}"#)
                .unwrap();
        assert_eq!(delayed, ClientMessage::subscribe([&football]).delayed(40));
        assert_eq!(
            delayed.to_json(),
            r#"{"type":"subscribe","topics":["football"],"delay_secs":40}"#
        );
        let ping: ClientMessage = serde_json::from_str(r#"{"type":"ping","id":4}"#).unwrap();
        assert_eq!(ping.to_json(), r#"{"type":"ping","id":4}"#);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
    }

    #[test]
    fn event_message_is_flat() {
        let event = ScoreEvent {
            ts_ms: 10,
            ..crate::test_support::event("football/pl/a-b", 3, EventKind::MatchStarted)
        };
        let text = ServerMessage::Event(event.clone()).to_json();
        assert_eq!(
            text,
            r#"{"type":"event","match":"football/pl/a-b","epoch":0,"seq":3,"ts_ms":10,"kind":"match_started"}"#
        );
        assert_eq!(
            ServerMessage::from_json(&text).unwrap(),
            ServerMessage::Event(event)
        );
    }

    #[test]
    fn parse_topics_names_the_bad_one() {
        let topics = vec!["football".to_owned(), "Bad Topic".to_owned()];
        let (bad, _) = ClientMessage::parse_topics(&topics).unwrap_err();
        assert_eq!(bad, "Bad Topic");
    }
}
