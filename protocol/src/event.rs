//! Score events: the facts feeds publish, one per message, each numbered within its match.
//!
//! An event is an envelope ([`ScoreEvent`]: which match, which history `epoch`, its `seq`, when it
//! happened) around one [`EventKind`]. Events are the only way a match changes: the reducer in
//! [`crate::reducer`] folds them into a [`crate::MatchSnapshot`].

use serde::{Deserialize, Serialize};

use crate::sport::TennisFormat;
use crate::topic::MatchTopic;

/// One event of one match, as published into the broker and pushed to clients.
///
/// ```json
/// {"match":"football/premier-league/ars-che-2025-03-01","epoch":0,"seq":7,
///  "ts_ms":1740841380000,"clock_secs":1380,"kind":"goal","side":"home","player":"Saka"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreEvent {
    /// The match this event belongs to.
    #[serde(rename = "match")]
    pub match_topic: MatchTopic,
    /// The history this `seq` counts in. It changes only when a match's history is reset, so that
    /// `seq` values of two histories are never compared. Plain publishers leave it 0.
    #[serde(default)]
    pub epoch: u64,
    /// Position in the match's history, from 1, without gaps. Lets every receiver detect a missed,
    /// duplicated or reordered event.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub ts_ms: u64,
    /// The game clock when it happened, in seconds, as [`crate::Sport::format_clock`] reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_secs: Option<u32>,
    /// The `seq` of the match's previous critical event in this epoch (0 when there is none),
    /// stamped by the service on every event it sends. A client that has applied seq N and
    /// receives seq M > N + 1 with `prev_critical_seq <= N` only skipped coalesced `clock`/`stat`
    /// events: a harmless skip, not a loss. Feeds leave it out; the service sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_critical_seq: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// An event before its match's history numbers it: what a feed hands to the atomic publish
/// script, which assigns `epoch` and `seq` (see `docs/protocol.md`, "Numbered publishing").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    /// The match this event belongs to.
    #[serde(rename = "match")]
    pub match_topic: MatchTopic,
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub ts_ms: u64,
    /// The game clock when it happened, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_secs: Option<u32>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl EventDraft {
    /// The event with its place in the match's history.
    pub fn numbered(self, epoch: u64, seq: u64) -> ScoreEvent {
        let EventDraft {
            match_topic,
            ts_ms,
            clock_secs,
            kind,
        } = self;
        ScoreEvent {
            match_topic,
            epoch,
            seq,
            ts_ms,
            clock_secs,
            prev_critical_seq: None,
            kind,
        }
    }

    /// The draft as compact JSON: an object without `epoch` and `seq`, which the publish script
    /// prepends.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Which of the two teams or players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The home team (the first-named player in tennis).
    Home,
    /// The away team (the second-named player in tennis).
    Away,
}

impl Side {
    /// The other side.
    pub fn opponent(self) -> Side {
        match self {
            Side::Home => Side::Away,
            Side::Away => Side::Home,
        }
    }
}

/// A team, or a player in an individual sport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Full name, e.g. `Arsenal` or `Novak Djokovic`.
    pub name: String,
    /// Short code for tight layouts, e.g. `ARS` or `DJO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Team {
    /// A team with a name and a short code.
    pub fn new(name: impl Into<String>, code: impl Into<String>) -> Team {
        Team {
            name: name.into(),
            code: Some(code.into()),
        }
    }

    /// The short code, or the name when there is none.
    pub fn short(&self) -> &str {
        self.code.as_deref().unwrap_or(&self.name)
    }
}

/// The state of a match as a fan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Not started yet.
    #[default]
    Scheduled,
    /// In play.
    Live,
    /// Between periods (half-time, quarter break, set break).
    Break,
    /// Interrupted (weather, crowd trouble, medical); expected to resume.
    Suspended,
    /// Over, with a result.
    Finished,
    /// Stopped for good without a result.
    Abandoned,
    /// Moved to another day before it started.
    Postponed,
}

impl MatchStatus {
    /// Whether the match is under way (live, at a break or suspended).
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            MatchStatus::Live | MatchStatus::Break | MatchStatus::Suspended
        )
    }

    /// Whether nothing more will happen in this match.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            MatchStatus::Finished | MatchStatus::Abandoned | MatchStatus::Postponed
        )
    }
}

/// A football card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardColour {
    /// A caution.
    Yellow,
    /// A second caution, which sends the player off.
    SecondYellow,
    /// A straight sending-off.
    Red,
}

/// What happened. Serialised with a `kind` tag beside the envelope's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The match is announced: who plays, when, and under which format.
    MatchScheduled {
        /// Home team (first-named player in tennis).
        home: Team,
        /// Away team.
        away: Team,
        /// Planned start, milliseconds since the Unix epoch.
        kickoff_ms: u64,
        /// Display name of the competition, e.g. `Premier League`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        competition: Option<String>,
        /// Where it is played.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        venue: Option<String>,
        /// Length of a regular period in seconds, when not the sport's default (e.g. FIBA's
        /// 10-minute quarters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period_secs: Option<u32>,
        /// Tennis only: best of 3 or 5 and the final-set rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tennis: Option<TennisFormat>,
    },
    /// Play begins.
    MatchStarted,
    /// A period begins: a half, quarter, overtime, extra-time half, shoot-out or set.
    PeriodStarted {
        /// Period number from 1; see [`crate::Sport::period_name`].
        period: u8,
    },
    /// A period ends.
    PeriodEnded {
        /// Period number from 1.
        period: u8,
    },
    /// Football: a goal counted for `side`.
    Goal {
        /// The team the goal counts for (for an own goal, the scorer's opponents).
        side: Side,
        /// Scorer's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player: Option<String>,
        /// Scored by a player of the other team.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        own_goal: bool,
        /// Scored from a penalty kick during play.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        penalty: bool,
    },
    /// Football: one kick of a penalty shoot-out.
    ShootoutKick {
        /// The kicker's team.
        side: Side,
        /// Kicker's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player: Option<String>,
        /// Whether it went in.
        scored: bool,
    },
    /// Basketball (or another points sport): a scoring play.
    Points {
        /// The scoring team.
        side: Side,
        /// 1 (free throw), 2 or 3.
        points: u8,
        /// Scorer's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player: Option<String>,
    },
    /// Tennis: a point won. Games, sets and tie-breaks follow from the points.
    Point {
        /// Who won the point.
        side: Side,
    },
    /// Football: a card shown.
    Card {
        /// The player's team.
        side: Side,
        /// Player's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player: Option<String>,
        /// Which card.
        card: CardColour,
    },
    /// A substitution.
    Substitution {
        /// The team making it.
        side: Side,
        /// Player coming on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player_on: Option<String>,
        /// Player going off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player_off: Option<String>,
    },
    /// The status changes outside the usual flow (suspension, abandonment, postponement).
    StatusChanged {
        /// The new status.
        status: MatchStatus,
        /// Why, for the fan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The game clock, sent often while it runs. Only the latest one matters.
    Clock {
        /// Whether the clock is running after this reading.
        running: bool,
    },
    /// A running statistic such as possession or shots. Only the latest value per name matters.
    Stat {
        /// Statistic name, e.g. `possession_pct`, `shots`.
        name: String,
        /// Home value.
        home: u32,
        /// Away value.
        away: u32,
    },
    /// The final whistle, last point or buzzer: the result stands.
    MatchEnded {
        /// The winner, when the score alone does not tell (a retirement, a walkover).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winner: Option<Side>,
    },
    /// Amends an earlier event of the same match: a goal ruled out on video review, a wrong scorer.
    Correction {
        /// The `seq` of the event being amended.
        corrects: u64,
        /// What the event should have been; `None` voids it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<Box<EventKind>>,
    },
}

/// How an event may be treated when a client falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery<'a> {
    /// Must reach the client, in order: anything that changes the score, the status or the story.
    Critical,
    /// Only the latest value matters; a newer event with the same key replaces a queued one.
    Latest(CoalesceKey<'a>),
}

/// What a coalescable event replaces: the previous event of the same match with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoalesceKey<'a> {
    /// The game clock.
    Clock,
    /// One named statistic.
    Stat(&'a str),
}

impl EventKind {
    /// Whether this event must be delivered, or may be coalesced with newer ones of its kind.
    pub fn delivery(&self) -> Delivery<'_> {
        match self {
            EventKind::Clock { .. } => Delivery::Latest(CoalesceKey::Clock),
            EventKind::Stat { name, .. } => Delivery::Latest(CoalesceKey::Stat(name)),
            _ => Delivery::Critical,
        }
    }

    /// Whether this event must reach every subscriber in order (anything but `clock` and `stat`).
    pub fn is_critical(&self) -> bool {
        matches!(self.delivery(), Delivery::Critical)
    }

    /// The side this event is about, if it is about one.
    pub fn side(&self) -> Option<Side> {
        match self {
            EventKind::Goal { side, .. }
            | EventKind::ShootoutKick { side, .. }
            | EventKind::Points { side, .. }
            | EventKind::Point { side }
            | EventKind::Card { side, .. }
            | EventKind::Substitution { side, .. } => Some(*side),
            EventKind::MatchEnded { winner } => *winner,
            _ => None,
        }
    }

    /// The tag this kind is serialised with, e.g. `goal`; handy for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::MatchScheduled { .. } => "match_scheduled",
            EventKind::MatchStarted => "match_started",
            EventKind::PeriodStarted { .. } => "period_started",
            EventKind::PeriodEnded { .. } => "period_ended",
            EventKind::Goal { .. } => "goal",
            EventKind::ShootoutKick { .. } => "shootout_kick",
            EventKind::Points { .. } => "points",
            EventKind::Point { .. } => "point",
            EventKind::Card { .. } => "card",
            EventKind::Substitution { .. } => "substitution",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::Clock { .. } => "clock",
            EventKind::Stat { .. } => "stat",
            EventKind::MatchEnded { .. } => "match_ended",
            EventKind::Correction { .. } => "correction",
        }
    }
}

impl ScoreEvent {
    /// The event without its numbering, to publish again through the numbering script.
    pub fn draft(&self) -> EventDraft {
        EventDraft {
            match_topic: self.match_topic.clone(),
            ts_ms: self.ts_ms,
            clock_secs: self.clock_secs,
            kind: self.kind.clone(),
        }
    }

    /// Parses one event from JSON, as received from the broker or the HTTP publish API.
    pub fn from_json(text: &[u8]) -> Result<ScoreEvent, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The event as compact JSON, in the form feeds publish.
    pub fn to_json(&self) -> String {
        // Serialising these plain data types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_round_trips_in_documented_form() {
        let text = r#"{"match":"football/premier-league/ars-che-2025-03-01","epoch":0,"seq":7,"ts_ms":1740841380000,"clock_secs":1380,"kind":"goal","side":"home","player":"Saka"}"#;
        let event = ScoreEvent::from_json(text.as_bytes()).unwrap();
        assert_eq!(event.seq, 7);
        assert_eq!(
            event.kind,
            EventKind::Goal {
                side: Side::Home,
                player: Some("Saka".into()),
                own_goal: false,
                penalty: false
            }
        );
        assert_eq!(event.to_json(), text);
    }

    #[test]
    fn epoch_defaults_to_zero_and_unknown_kinds_fail() {
        let text =
            r#"{"match":"tennis/wimbledon/a-b","seq":1,"ts_ms":5,"kind":"point","side":"away"}"#;
        assert_eq!(ScoreEvent::from_json(text.as_bytes()).unwrap().epoch, 0);
        let bad = r#"{"match":"tennis/wimbledon/a-b","seq":1,"ts_ms":5,"kind":"ace"}"#;
        assert!(ScoreEvent::from_json(bad.as_bytes()).is_err());
        let prefix = r#"{"match":"tennis/wimbledon","seq":1,"ts_ms":5,"kind":"match_started"}"#;
        assert!(ScoreEvent::from_json(prefix.as_bytes()).is_err());
    }

    #[test]
    fn correction_nests_a_replacement() {
        let text = r#"{"match":"football/pl/a-b","epoch":0,"seq":9,"ts_ms":5,"kind":"correction","corrects":7,"replacement":{"kind":"goal","side":"home","player":"Odegaard"}}"#;
        let event = ScoreEvent::from_json(text.as_bytes()).unwrap();
        assert!(matches!(
            event.kind,
            EventKind::Correction {
                corrects: 7,
                replacement: Some(_)
            }
        ));
        assert_eq!(event.to_json(), text);
    }

    #[test]
    fn clock_and_stats_coalesce_everything_else_is_critical() {
        assert_eq!(
            EventKind::Clock { running: true }.delivery(),
            Delivery::Latest(CoalesceKey::Clock)
        );
        let stat = EventKind::Stat {
            name: "shots".into(),
            home: 3,
            away: 1,
        };
        assert_eq!(
            stat.delivery(),
            Delivery::Latest(CoalesceKey::Stat("shots"))
        );
        assert_eq!(
            EventKind::Point { side: Side::Home }.delivery(),
            Delivery::Critical
        );
    }
}
