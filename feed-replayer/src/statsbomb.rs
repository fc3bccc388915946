//! StatsBomb open-data events converted into a fixture.
//!
//! A StatsBomb events file is a JSON array of every on-ball and administrative event of one
//! match. What matters for a score feed:
//! - `period` (1, 2; 3, 4 extra time; 5 the shoot-out) and `timestamp` (`HH:MM:SS.mmm`, restarting
//!   at zero every period), beside `minute`/`second`, which run on from kickoff (45:00 opens the
//!   second half);
//! - `Half Start` / `Half End`, one per team per period;
//! - `Shot` with `shot.outcome.name` `Goal` and `shot.type.name` `Penalty` for penalties; in
//!   period 5 every shot is a shoot-out kick;
//! - `Own Goal Against` (the player who put it in his own net, with his team) paired with
//!   `Own Goal For` (the benefiting team); the pair is one goal, taken from the `Against` event;
//! - cards inside `foul_committed.card` or `bad_behaviour.card`: `Yellow Card`, `Second Yellow`,
//!   `Red Card` (matched by name: the ids in the data do not always follow the specification);
//! - `Substitution` (the player going off, `substitution.replacement` coming on).
//!
//! Events carry no home/away marker: the team of the first `Starting XI` event is taken as home,
//! which is how StatsBomb orders them. Real time between periods is not in the data, so breaks get
//! their usual length (15 minutes at half-time, 5 before extra time and before penalties).

use std::collections::HashMap;

use scoreline_protocol::{
    CardColour, EventKind, MatchStatus, MatchTopic, Score, Side, Sport, Team,
};
use serde::Deserialize;

use crate::fixture::{FORMAT_NAME, FORMAT_VERSION, Fixture, FixtureEvent, Header, RecordedResult};
use crate::validate;

/// The largest input read: real events files are 3-5 MB.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What the importer cannot know from the events file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The topic the fixture publishes to.
    pub match_topic: MatchTopic,
    /// Kickoff time (milliseconds since the Unix epoch).
    pub kickoff_ms: u64,
    /// Display name of the competition.
    pub competition: Option<String>,
    /// Where the data came from, for the header.
    pub source: String,
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not JSON, or not StatsBomb's shape; serde's message names line and column.
    #[error("not a StatsBomb {what} file")]
    Json {
        /// `events` or `lineups`.
        what: &'static str,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// The topic is not football.
    #[error("StatsBomb data is football; the topic {0} is not")]
    NotFootball(MatchTopic),
    /// Fewer or more than two teams appear.
    #[error("found {0} teams; a match has two")]
    Teams(usize),
    /// A timestamp is not `HH:MM:SS.mmm`.
    #[error("event {index}: timestamp {text:?} is not HH:MM:SS.mmm")]
    Timestamp {
        /// The event's `index`.
        index: u64,
        /// The text.
        text: String,
    },
    /// A period outside 1..=5.
    #[error("event {index}: period {period} is not 1 to 5")]
    Period {
        /// The event's `index`.
        index: u64,
        /// The period.
        period: u8,
    },
    /// The converted events do not make a valid match (the reducer says why).
    #[error("the converted match is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Debug, Clone, Deserialize)]
struct Named {
    #[serde(default)]
    id: Option<u64>,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    index: u64,
    period: u8,
    timestamp: String,
    #[serde(default)]
    minute: u32,
    #[serde(default)]
    second: u32,
    #[serde(rename = "type")]
    kind: Named,
    #[serde(default)]
    team: Option<Named>,
    #[serde(default)]
    player: Option<Named>,
    #[serde(default)]
    shot: Option<Shot>,
    #[serde(default)]
    foul_committed: Option<Carded>,
    #[serde(default)]
    bad_behaviour: Option<Carded>,
    #[serde(default)]
    substitution: Option<Replacement>,
}

#[derive(Debug, Deserialize)]
struct Shot {
    #[serde(default)]
    outcome: Option<Named>,
    #[serde(default, rename = "type")]
    kind: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Carded {
    #[serde(default)]
    card: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Replacement {
    #[serde(default)]
    replacement: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct LineupTeam {
    #[serde(default)]
    lineup: Vec<LineupPlayer>,
}

#[derive(Debug, Deserialize)]
struct LineupPlayer {
    player_id: u64,
    #[serde(default)]
    player_nickname: Option<String>,
}

/// Converts an events file (and optionally its lineups file, for the names players are known by)
/// into a fixture whose recorded result is what the events add up to.
pub fn import(
    events_json: &str,
    lineups_json: Option<&str>,
    options: ImportOptions,
) -> Result<Fixture, ImportError> {
    if Sport::from_slug(options.match_topic.sport_slug()) != Sport::Football {
        return Err(ImportError::NotFootball(options.match_topic));
    }
    let mut events: Vec<Event> =
        serde_json::from_str(events_json).map_err(|source| ImportError::Json {
            what: "events",
            source,
        })?;
    let nicknames: HashMap<u64, String> = match lineups_json {
        Some(text) => {
            let teams: Vec<LineupTeam> =
                serde_json::from_str(text).map_err(|source| ImportError::Json {
                    what: "lineups",
                    source,
                })?;
            teams
                .into_iter()
                .flat_map(|team| team.lineup)
                .filter_map(|player| Some((player.player_id, player.player_nickname?)))
                .collect()
        }
        None => HashMap::new(),
    };
    let name_of = |player: &Option<Named>| {
        player.as_ref().map(|player| {
            player
                .id
                .and_then(|id| nicknames.get(&id).cloned())
                .unwrap_or_else(|| player.name.clone())
        })
    };

    // Teams in order of first appearance, Starting XI first.
    let mut teams: Vec<String> = Vec::new();
    let starting = events
        .iter()
        .filter(|event| event.kind.name == "Starting XI");
    for event in starting.chain(events.iter()) {
        if let Some(team) = &event.team
            && !teams.contains(&team.name)
        {
            teams.push(team.name.clone());
        }
    }
    if teams.len() != 2 {
        return Err(ImportError::Teams(teams.len()));
    }
    let side_of = |team: &Option<Named>| match team {
        Some(team) if team.name == teams[1] => Side::Away,
        _ => Side::Home,
    };

    let mut timed = Vec::with_capacity(events.len());
    for event in events.drain(..) {
        if !(1..=5).contains(&event.period) {
            return Err(ImportError::Period {
                index: event.index,
                period: event.period,
            });
        }
        let since_period_ms =
            parse_timestamp(&event.timestamp).ok_or_else(|| ImportError::Timestamp {
                index: event.index,
                text: event.timestamp.clone(),
            })?;
        timed.push((event.period, since_period_ms, event));
    }
    timed.sort_by_key(|(period, since_ms, event)| (*period, *since_ms, event.index));

    // Where each period starts in match time: after the previous period's last event plus the
    // usual break.
    let mut period_start_ms: HashMap<u8, u64> = HashMap::new();
    let mut period_length_ms: HashMap<u8, u64> = HashMap::new();
    for (period, since_ms, _) in &timed {
        let length = period_length_ms.entry(*period).or_default();
        *length = (*length).max(*since_ms);
    }
    let mut next_start_ms = 0;
    for period in 1..=5u8 {
        if let Some(length) = period_length_ms.get(&period) {
            period_start_ms.insert(period, next_start_ms);
            let break_ms = match period {
                1 => 15 * 60_000,
                2 | 4 => 5 * 60_000,
                _ => 60_000,
            };
            next_start_ms += length + break_ms;
        }
    }

    let mut output: Vec<(u64, Option<u32>, EventKind)> = Vec::new();
    output.push((0, Some(0), EventKind::MatchStarted));
    let mut started = [false; 6];
    let mut ended = [false; 6];
    let mut last_offset_ms = 0;
    let mut last_clock_secs = 0;
    for (period, since_ms, event) in &timed {
        let offset_ms = period_start_ms.get(period).copied().unwrap_or(0) + since_ms;
        let clock_secs = (*period < 5).then_some(event.minute * 60 + event.second);
        let period_index = usize::from(*period);
        if !started[period_index] {
            started[period_index] = true;
            output.push((
                offset_ms,
                clock_secs,
                EventKind::PeriodStarted { period: *period },
            ));
        }
        let side = side_of(&event.team);
        let player = name_of(&event.player);
        let kind = match event.kind.name.as_str() {
            "Half End" if !ended[period_index] => {
                ended[period_index] = true;
                Some(EventKind::PeriodEnded { period: *period })
            }
            "Shot" => {
                let shot = event.shot.as_ref();
                let scored = shot
                    .and_then(|shot| shot.outcome.as_ref())
                    .is_some_and(|outcome| outcome.name == "Goal");
                let penalty = shot
                    .and_then(|shot| shot.kind.as_ref())
                    .is_some_and(|kind| kind.name == "Penalty");
                if *period == 5 {
                    Some(EventKind::ShootoutKick {
                        side,
                        player,
                        scored,
                    })
                } else if scored {
                    Some(EventKind::Goal {
                        side,
                        player,
                        own_goal: false,
                        penalty,
                    })
                } else {
                    None
                }
            }
            "Own Goal Against" if *period < 5 => Some(EventKind::Goal {
                side: side.opponent(),
                player,
                own_goal: true,
                penalty: false,
            }),
            "Foul Committed" | "Bad Behaviour" => {
                let carded = event
                    .foul_committed
                    .as_ref()
                    .or(event.bad_behaviour.as_ref());
                card_colour(carded.and_then(|carded| carded.card.as_ref()))
                    .map(|card| EventKind::Card { side, player, card })
            }
            "Substitution" => Some(EventKind::Substitution {
                side,
                player_on: name_of(
                    &event
                        .substitution
                        .as_ref()
                        .and_then(|sub| sub.replacement.clone()),
                ),
                player_off: player,
            }),
            _ => None,
        };
        if let Some(kind) = kind {
            output.push((offset_ms, clock_secs, kind));
        }
        last_offset_ms = last_offset_ms.max(offset_ms);
        if let Some(clock) = clock_secs {
            last_clock_secs = clock;
        }
    }
    let final_period = (1..=5u8)
        .rev()
        .find(|period| started[usize::from(*period)])
        .unwrap_or(1);
    if !ended[usize::from(final_period)] {
        output.push((
            last_offset_ms,
            (final_period < 5).then_some(last_clock_secs),
            EventKind::PeriodEnded {
                period: final_period,
            },
        ));
    }
    output.push((last_offset_ms, None, EventKind::MatchEnded { winner: None }));

    let mut fixture_events = Vec::with_capacity(output.len());
    let mut previous_ms = 0;
    for (index, (offset_ms, clock_secs, kind)) in output.into_iter().enumerate() {
        previous_ms = offset_ms.max(previous_ms);
        fixture_events.push(FixtureEvent {
            offset_ms: previous_ms,
            seq: index as u64 + 1,
            clock_secs,
            kind,
            line: 0,
        });
    }
    let mut fixture = Fixture {
        header: Header {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            match_topic: options.match_topic,
            sport: Sport::Football,
            competition: options.competition,
            venue: None,
            home: Team {
                name: teams[0].clone(),
                code: None,
            },
            away: Team {
                name: teams[1].clone(),
                code: None,
            },
            kickoff_ms: options.kickoff_ms,
            period_secs: None,
            tennis: None,
            source: Some(options.source),
            result: RecordedResult {
                status: MatchStatus::Finished,
                score: Score::default(),
                winner: None,
                shootout: None,
                periods: None,
                cards: None,
            },
        },
        events: fixture_events,
    };
    let snapshot = validate::story(&fixture).map_err(|problems| {
        ImportError::Inconsistent(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    fixture.header.result = RecordedResult::from_snapshot(&snapshot);
    Ok(fixture)
}

fn card_colour(card: Option<&Named>) -> Option<CardColour> {
    match card?.name.as_str() {
        "Yellow Card" => Some(CardColour::Yellow),
        "Second Yellow" => Some(CardColour::SecondYellow),
        "Red Card" => Some(CardColour::Red),
        _ => None,
    }
}

/// `HH:MM:SS.mmm` (fraction optional) as milliseconds.
fn parse_timestamp(text: &str) -> Option<u64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let mut parts = clock.split(':').map(|part| part.parse::<u64>().ok());
    let (hours, minutes, seconds) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || minutes >= 60 || seconds >= 60 {
        return None;
    }
    let digits: String = fraction.chars().take(3).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let millis = digits.parse::<u64>().ok()? * 10u64.pow(3 - digits.len() as u32);
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("00:00:00.000"), Some(0));
        assert_eq!(parse_timestamp("00:23:04.5"), Some(1_384_500));
        assert_eq!(parse_timestamp("01:02:03.045"), Some(3_723_045));
        assert_eq!(parse_timestamp("00:61:00.000"), None);
        assert_eq!(parse_timestamp("23:04"), None);
        assert_eq!(parse_timestamp("aa:00:00.000"), None);
    }
}
