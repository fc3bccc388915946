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
//! which is how StatsBomb orders them, unless the competition's matches file
//! (`matches/<competition_id>/<season_id>.json`, read by [`match_info`]) names the home team. That
//! file also gives the date, kickoff, competition, season and stadium. Real time between periods is not in the data, so breaks get
//! their usual length (15 minutes at half-time, 5 before extra time and before penalties).

use std::collections::HashMap;

use scoreline_protocol::{
    CardColour, EventKind, MatchStatus, MatchTopic, Score, Side, Sport, Team,
};
use serde::Deserialize;

use crate::fixture::{FORMAT_NAME, FORMAT_VERSION, Fixture, FixtureEvent, Header, RecordedResult};
use crate::generate::slugify;
use crate::validate;

/// The largest input read: real events files are 3-5 MB.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// The competition segment of a derived topic when no competition is known.
pub const DEFAULT_COMPETITION_SLUG: &str = "statsbomb";

/// What the importer cannot know from the events file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The topic the fixture publishes to; `None` derives one with [`default_topic`] from the
    /// competition, the teams and `date`.
    pub match_topic: Option<MatchTopic>,
    /// Kickoff time (milliseconds since the Unix epoch).
    pub kickoff_ms: u64,
    /// Display name of the competition.
    pub competition: Option<String>,
    /// Where the match was played.
    pub venue: Option<String>,
    /// The home team's name as the events spell it, when known from elsewhere (the matches file):
    /// overrides the first-`Starting XI` rule.
    pub home_team: Option<String>,
    /// The match date (`YYYY-MM-DD`), for a derived topic.
    pub date: Option<String>,
    /// The competition's name without its season, for a derived topic (the date says when);
    /// `competition` is used when absent.
    pub topic_competition: Option<String>,
    /// Where the data came from, for the header.
    pub source: String,
}

/// What a StatsBomb matches file says about one match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchInfo {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Kickoff, when the file gives the time (read as UTC: the data does not say its zone).
    pub kickoff_ms: Option<u64>,
    /// Competition and season, e.g. `FIFA World Cup 2022`.
    pub competition: Option<String>,
    /// Competition name alone, for the topic, e.g. `FIFA World Cup`.
    pub competition_name: Option<String>,
    /// The stadium.
    pub venue: Option<String>,
    /// Home team.
    pub home: String,
    /// Away team.
    pub away: String,
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not JSON, or not StatsBomb's shape; serde's message names line and column.
    #[error("not a StatsBomb {what} file")]
    Json {
        /// `events`, `lineups` or `matches`.
        what: &'static str,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// The topic is not football.
    #[error("StatsBomb data is football; the topic {0} is not")]
    NotFootball(MatchTopic),
    /// The matches file does not list the match.
    #[error("the matches file lists no match {0}")]
    NotListed(u64),
    /// No valid topic can be made from the names; the caller must give one.
    #[error("cannot make a topic from {0:?}; give one with --topic")]
    NoTopic(String),
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
    if let Some(topic) = &options.match_topic
        && Sport::from_slug(topic.sport_slug()) != Sport::Football
    {
        return Err(ImportError::NotFootball(topic.clone()));
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
    if options.home_team.as_ref() == Some(&teams[1]) {
        teams.swap(0, 1);
    }
    let match_topic = match options.match_topic.clone() {
        Some(topic) => topic,
        None => default_topic(
            options
                .topic_competition
                .as_deref()
                .or(options.competition.as_deref()),
            &teams[0],
            &teams[1],
            options.date.as_deref(),
        )?,
    };
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
            match_topic,
            sport: Sport::Football,
            competition: options.competition,
            venue: options.venue,
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

/// The topic a match is published under when none is given:
/// `football/<competition>/<home>-<away>[-<date>]`, e.g.
/// `football/fifa-world-cup/argentina-france-2022-12-18`. The competition segment is
/// [`DEFAULT_COMPETITION_SLUG`] when no competition is known; long team names are cut at a word
/// so the segment stays within the topic's length limit.
pub fn default_topic(
    competition: Option<&str>,
    home: &str,
    away: &str,
    date: Option<&str>,
) -> Result<MatchTopic, ImportError> {
    use scoreline_protocol::topic::MAX_SEGMENT_LEN;
    let cut = |slug: String, max: usize| -> String {
        if slug.len() <= max {
            return slug;
        }
        let mut cut = slug[..max].to_owned();
        if slug.as_bytes()[max] != b'-'
            && let Some(end) = cut.rfind('-')
        {
            cut.truncate(end);
        }
        cut.trim_end_matches('-').to_owned()
    };
    let competition = competition
        .map(|name| cut(slugify(name), MAX_SEGMENT_LEN))
        .filter(|slug| !slug.is_empty())
        .unwrap_or_else(|| DEFAULT_COMPETITION_SLUG.to_owned());
    let date = date.map(slugify).filter(|date| !date.is_empty());
    // Each team gets an equal share of what the date leaves of the segment.
    let room = MAX_SEGMENT_LEN - date.as_ref().map_or(0, |date| date.len() + 1) - 1;
    let mut segment = format!(
        "{}-{}",
        cut(slugify(home), room / 2),
        cut(slugify(away), room / 2)
    );
    if let Some(date) = date {
        segment.push('-');
        segment.push_str(&date);
    }
    let text = format!("football/{competition}/{segment}");
    MatchTopic::parse(&text).map_err(|_| ImportError::NoTopic(format!("{home} v {away}")))
}

#[derive(Debug, Deserialize)]
struct ListedMatch {
    match_id: u64,
    #[serde(default)]
    match_date: Option<String>,
    #[serde(default)]
    kick_off: Option<String>,
    #[serde(default)]
    competition: Option<ListedCompetition>,
    #[serde(default)]
    season: Option<ListedSeason>,
    home_team: ListedHome,
    away_team: ListedAway,
    #[serde(default)]
    stadium: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct ListedCompetition {
    competition_name: String,
}

#[derive(Debug, Deserialize)]
struct ListedSeason {
    season_name: String,
}

#[derive(Debug, Deserialize)]
struct ListedHome {
    home_team_name: String,
}

#[derive(Debug, Deserialize)]
struct ListedAway {
    away_team_name: String,
}

/// Reads what a StatsBomb matches file (`matches/<competition_id>/<season_id>.json`) says about
/// match `match_id`.
pub fn match_info(matches_json: &str, match_id: u64) -> Result<MatchInfo, ImportError> {
    let listed: Vec<ListedMatch> =
        serde_json::from_str(matches_json).map_err(|source| ImportError::Json {
            what: "matches",
            source,
        })?;
    let found = listed
        .into_iter()
        .find(|listed| listed.match_id == match_id)
        .ok_or(ImportError::NotListed(match_id))?;
    let date = found.match_date.unwrap_or_default();
    let kickoff_ms = found.kick_off.as_deref().and_then(|time| {
        let time = time.split('.').next().unwrap_or(time);
        let parsed = humantime::parse_rfc3339_weak(&format!("{date}T{time}Z")).ok()?;
        let since = parsed.duration_since(std::time::UNIX_EPOCH).ok()?;
        u64::try_from(since.as_millis()).ok()
    });
    let competition_name = found.competition.map(|c| c.competition_name);
    let competition = match (&competition_name, found.season) {
        (Some(name), Some(season)) => Some(format!("{name} {}", season.season_name)),
        (name, _) => name.clone(),
    };
    Ok(MatchInfo {
        date,
        kickoff_ms,
        competition,
        competition_name,
        venue: found.stadium.map(|stadium| stadium.name),
        home: found.home_team.home_team_name,
        away: found.away_team.away_team_name,
    })
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
