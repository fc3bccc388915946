//! Synthetic matches for demos and load, deterministic per seed, and real results filled in
//! event by event.
//!
//! Every generator draws from one `ChaCha8Rng` seeded with the request's seed, so a seed names a
//! match on every machine and version of `rand`'s platform. The result in the header is not
//! guessed: it is what the reducer makes of the generated events, so a generated fixture always
//! validates. With real scores given (tennis sets, basketball quarters) the events are arranged to
//! arrive at exactly those scores; who scored each point is invented and left unnamed.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scoreline_protocol::{
    CardColour, EventKind, MatchStatus, MatchTopic, Score, Side, Sport, Team, TennisFormat,
};

use crate::fixture::{FORMAT_NAME, FORMAT_VERSION, Fixture, FixtureEvent, Header, RecordedResult};
use crate::validate;

/// 2026-01-01 15:00 UTC: the kickoff of seed 0; seed `n` kicks off `n mod 365` days later.
const BASE_KICKOFF_MS: u64 = 1_767_279_600_000;
const DAY_MS: u64 = 86_400_000;

/// Why a generation request cannot be met.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// A score list could not be read.
    #[error("{0}")]
    BadScores(String),
    /// The scores given cannot happen under the sport's rules.
    #[error("impossible result: {0}")]
    Impossible(String),
    /// No valid topic could be made from the team names; pass one with `--topic`.
    #[error("cannot make a topic from the team names ({0}); give one with --topic")]
    Topic(#[from] scoreline_protocol::TopicError),
}

/// What every generator needs: the seed, and optionally names to use.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The seed; the same seed and options give the same match.
    pub seed: u64,
    /// The topic; by default `<sport>/<competition>/<home>-<away>-<seed>`, the competition
    /// segment made from [`Request::competition`] (`synthetic` without one).
    pub topic: Option<MatchTopic>,
    /// Display name of the competition; invented when absent.
    pub competition: Option<String>,
    /// Home team or player; invented when absent.
    pub home: Option<Team>,
    /// Away team or player; invented when absent.
    pub away: Option<Team>,
}

/// A topic segment from a display name: lower-case ASCII letters and digits, words joined by
/// `-` (`UEFA Champions League 2004-05` → `uefa-champions-league-2004-05`). Letters with
/// accents lose them where a plain form exists (`Atlético` → `atletico`); other characters
/// separate words.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let plain = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' | 'ń' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'š' | 'ś' => 's',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'ž' | 'ź' | 'ż' => 'z',
            other => other,
        };
        if plain.is_ascii_alphanumeric() {
            slug.push(plain);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// Reads `Name` or `Name:CODE`.
pub fn parse_team(text: &str) -> Team {
    match text.rsplit_once(':') {
        Some((name, code)) if !code.is_empty() => Team::new(name.trim(), code.trim()),
        _ => Team {
            name: text.trim().to_owned(),
            code: None,
        },
    }
}

/// One set's games, and the loser's points in its tie-break if it had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetScore {
    /// Games won by the home player.
    pub home: u32,
    /// Games won by the away player.
    pub away: u32,
    /// The tie-break loser's points, as written in `7-6(5)`.
    pub tiebreak_loser_points: Option<u32>,
}

/// Reads set scores as written in results: `6-4,6-7(5),7-5`.
pub fn parse_sets(text: &str) -> Result<Vec<SetScore>, GenerateError> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let (games, tiebreak) = match part.split_once('(') {
                Some((games, rest)) => {
                    let points = rest
                        .strip_suffix(')')
                        .and_then(|points| points.parse().ok())
                        .ok_or_else(|| bad(part, "a tie-break is written 7-6(5)"))?;
                    (games, Some(points))
                }
                None => (part, None),
            };
            let (home, away) = pair(games).ok_or_else(|| bad(part, "a set is written 6-4"))?;
            Ok(SetScore {
                home,
                away,
                tiebreak_loser_points: tiebreak,
            })
        })
        .collect()
}

/// Reads quarter (and overtime) scores: `22-23,20-26,33-26,18-14`.
pub fn parse_quarters(text: &str) -> Result<Vec<(u32, u32)>, GenerateError> {
    text.split(',')
        .map(|part| pair(part.trim()).ok_or_else(|| bad(part, "a quarter is written 22-23")))
        .collect()
}

fn pair(text: &str) -> Option<(u32, u32)> {
    let (home, away) = text.split_once('-')?;
    Some((home.trim().parse().ok()?, away.trim().parse().ok()?))
}

fn bad(part: &str, hint: &str) -> GenerateError {
    GenerateError::BadScores(format!("cannot read {part:?}: {hint}"))
}

/// Collects events with offsets and numbers them; the header's result is filled in at the end.
struct Builder {
    events: Vec<FixtureEvent>,
}

impl Builder {
    fn new() -> Builder {
        Builder { events: Vec::new() }
    }

    fn push(&mut self, offset_ms: u64, clock_secs: Option<u32>, kind: EventKind) {
        // Offsets never go backwards, whatever rounding the generator did.
        let offset_ms = offset_ms.max(self.events.last().map_or(0, |event| event.offset_ms));
        self.events.push(FixtureEvent {
            offset_ms,
            seq: self.events.len() as u64 + 1,
            clock_secs,
            kind,
            line: 0,
        });
    }

    fn finish(self, mut header: Header) -> Fixture {
        let mut fixture = Fixture {
            header: header.clone(),
            events: self.events,
        };
        // The generators only emit events the reducer accepts; should one not, the fixture is
        // still returned and the caller's validation reports the line.
        if let Ok(snapshot) = validate::story(&fixture) {
            header.result = RecordedResult::from_snapshot(&snapshot);
            fixture.header = header;
        }
        fixture
    }
}

fn header(
    sport: Sport,
    request: &Request,
    home: Team,
    away: Team,
    competition: &str,
    source: String,
) -> Result<Header, GenerateError> {
    let slug = |team: &Team| {
        team.short()
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    };
    let sport_slug = match sport {
        Sport::Football => "football",
        Sport::Basketball => "basketball",
        Sport::Tennis => "tennis",
        Sport::Other => "other",
    };
    // A match of a named competition is published under it, so following that competition
    // (or listing it) finds the match; a competition name without a letter or digit gives none.
    let competition_slug = request
        .competition
        .as_deref()
        .map(|name| {
            let mut slug = slugify(name);
            slug.truncate(scoreline_protocol::topic::MAX_SEGMENT_LEN);
            slug.trim_end_matches('-').to_owned()
        })
        .filter(|slug| !slug.is_empty())
        .unwrap_or_else(|| "synthetic".to_owned());
    let topic = match &request.topic {
        Some(topic) => topic.clone(),
        None => {
            let text = format!(
                "{sport_slug}/{competition_slug}/{}-{}-{}",
                slug(&home),
                slug(&away),
                request.seed
            );
            // Team codes make good slugs; should one not (accents, punctuation), use the seed.
            MatchTopic::parse(&text).or_else(|_| {
                MatchTopic::parse(&format!(
                    "{sport_slug}/{competition_slug}/match-{}",
                    request.seed
                ))
            })?
        }
    };
    let competition = request.competition.as_deref().unwrap_or(competition);
    Ok(Header {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        match_topic: topic,
        sport,
        competition: Some(competition.into()),
        venue: None,
        home,
        away,
        kickoff_ms: BASE_KICKOFF_MS + (request.seed % 365) * DAY_MS,
        period_secs: None,
        tennis: None,
        source: Some(source),
        result: RecordedResult {
            status: MatchStatus::Scheduled,
            score: Score::default(),
            winner: None,
            shootout: None,
            periods: None,
            cards: None,
        },
    })
}

const CLUBS: &[(&str, &str)] = &[
    ("Northbridge Rovers", "NBR"),
    ("Castlemoor Athletic", "CAS"),
    ("Port Ellis", "PEL"),
    ("Redwater United", "RED"),
    ("Kingsferry City", "KFC"),
    ("Ashgrove Wanderers", "ASH"),
    ("Fenmouth Town", "FEN"),
    ("Halden Albion", "HAL"),
];

const SURNAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castillo",
    "Brennan",
    "Sato",
    "Kowalski",
    "Adeyemi",
    "Ferreira",
    "Novak",
    "Haddad",
    "Jensen",
    "Rossi",
    "Mendes",
    "Kader",
    "Ivanov",
    "Dubois",
    "Murphy",
    "Tanaka",
    "Silva",
    "Weber",
    "Larsen",
    "Costa",
    "Petrov",
    "Nakamura",
    "Osei",
    "Varga",
    "Quinn",
    "Bauer",
    "Reyes",
    "Holm",
    "Marin",
];

const PLAYERS: &[(&str, &str)] = &[
    ("Elena Varga", "VAR"),
    ("Maya Lindqvist", "LIN"),
    ("Tomas Ferreira", "FER"),
    ("Jonah Brennan", "BRE"),
    ("Aiko Tanaka", "TAN"),
    ("Luca Moreau", "MOR"),
];

fn two_teams(rng: &mut ChaCha8Rng, names: &[(&str, &str)], request: &Request) -> (Team, Team) {
    let mut picks: Vec<&(&str, &str)> = names.iter().collect();
    picks.shuffle(rng);
    let home = request
        .home
        .clone()
        .unwrap_or_else(|| Team::new(picks[0].0, picks[0].1));
    let away = request
        .away
        .clone()
        .unwrap_or_else(|| Team::new(picks[1].0, picks[1].1));
    (home, away)
}

fn squad(rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut names: Vec<&str> = SURNAMES.to_vec();
    names.shuffle(rng);
    names.into_iter().take(18).map(str::to_owned).collect()
}

/// A league football match: two halves with stoppage time, goals (some penalties, the odd own
/// goal), yellow and red cards, substitutions after the hour, and running stats.
pub fn football(request: &Request) -> Result<Fixture, GenerateError> {
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let (home, away) = two_teams(&mut rng, CLUBS, request);
    let squads = [squad(&mut rng), squad(&mut rng)];
    let mut state = FootballState {
        // Indexes into the squad: 0..11 start, 11..18 on the bench.
        on_pitch: [(0..11).collect(), (0..11).collect()],
        bench: [(11..18).collect(), (11..18).collect()],
        booked: [Vec::new(), Vec::new()],
        shots: [0, 0],
        subs_left: [5, 5],
    };
    let mut builder = Builder::new();
    let half_time_ms = 15 * 60_000;
    let first_stoppage_mins = rng.gen_range(1..=4);
    let second_stoppage_mins = rng.gen_range(2..=7);
    builder.push(0, Some(0), EventKind::MatchStarted);
    builder.push(0, Some(0), EventKind::PeriodStarted { period: 1 });
    let mut period_start_ms = 0;
    for period in 1..=2u8 {
        let start_secs = Sport::Football.period_start_secs(period);
        let stoppage = if period == 1 {
            first_stoppage_mins
        } else {
            second_stoppage_mins
        };
        if period == 2 {
            builder.push(
                period_start_ms,
                Some(start_secs),
                EventKind::PeriodStarted { period },
            );
        }
        for minute in 0..(45 + stoppage) {
            let second = rng.gen_range(0..60);
            let clock_secs = start_secs + minute * 60 + second;
            let offset_ms = period_start_ms + u64::from(clock_secs - start_secs) * 1000;
            let absolute_minute = start_secs / 60 + minute;
            if absolute_minute > 0 && absolute_minute.is_multiple_of(15) && second < 30 {
                let possession_home = rng.gen_range(38..=62);
                builder.push(
                    offset_ms,
                    Some(clock_secs),
                    EventKind::Stat {
                        name: "possession_pct".into(),
                        home: possession_home,
                        away: 100 - possession_home,
                    },
                );
                builder.push(
                    offset_ms,
                    Some(clock_secs),
                    EventKind::Stat {
                        name: "shots".into(),
                        home: state.shots[0],
                        away: state.shots[1],
                    },
                );
            }
            if period == 2 && (55..88).contains(&absolute_minute) {
                for side in [Side::Home, Side::Away] {
                    let team = index(side);
                    if state.subs_left[team] > 0
                        && rng.gen_bool(0.09)
                        && let Some(kind) = state.substitution(&mut rng, side, &squads[team])
                    {
                        builder.push(offset_ms, Some(clock_secs), kind);
                    }
                }
            }
            let side = if rng.gen_bool(0.55) {
                Side::Home
            } else {
                Side::Away
            };
            let team = index(side);
            if rng.gen_bool(0.12) {
                state.shots[team] += 1;
            }
            let roll: f64 = rng.r#gen();
            let kind = if roll < 0.029 {
                state.shots[team] += 1;
                state.goal(&mut rng, side, &squads)
            } else if roll < 0.029 + 0.038 {
                state.card(&mut rng, side, &squads[team])
            } else {
                None
            };
            if let Some(kind) = kind {
                builder.push(offset_ms, Some(clock_secs), kind);
            }
        }
        let end_secs = start_secs + (45 + stoppage) * 60 + rng.gen_range(0..40);
        let end_ms = period_start_ms + u64::from(end_secs - start_secs) * 1000;
        builder.push(end_ms, Some(end_secs), EventKind::PeriodEnded { period });
        if period == 2 {
            builder.push(
                end_ms,
                Some(end_secs),
                EventKind::MatchEnded { winner: None },
            );
        }
        period_start_ms = end_ms + half_time_ms;
    }
    let source = format!(
        "synthetic: feed-replayer generate --sport football --seed {}",
        request.seed
    );
    Ok(builder.finish(header(
        Sport::Football,
        request,
        home,
        away,
        "Synthetic League",
        source,
    )?))
}

fn index(side: Side) -> usize {
    match side {
        Side::Home => 0,
        Side::Away => 1,
    }
}

struct FootballState {
    on_pitch: [Vec<usize>; 2],
    bench: [Vec<usize>; 2],
    booked: [Vec<usize>; 2],
    shots: [u32; 2],
    subs_left: [u32; 2],
}

impl FootballState {
    fn pick(rng: &mut ChaCha8Rng, players: &[usize]) -> Option<usize> {
        players.choose(rng).copied()
    }

    fn goal(
        &mut self,
        rng: &mut ChaCha8Rng,
        side: Side,
        squads: &[Vec<String>; 2],
    ) -> Option<EventKind> {
        let own_goal = rng.gen_bool(0.04);
        let scorer_side = if own_goal { side.opponent() } else { side };
        let team = index(scorer_side);
        // Outfield players (not the goalkeeper, index 0) score.
        let outfield: Vec<usize> = self.on_pitch[team]
            .iter()
            .copied()
            .filter(|&p| p != 0)
            .collect();
        let scorer = Self::pick(rng, &outfield)?;
        Some(EventKind::Goal {
            side,
            player: Some(squads[team][scorer].clone()),
            own_goal,
            penalty: !own_goal && rng.gen_bool(0.1),
        })
    }

    fn card(&mut self, rng: &mut ChaCha8Rng, side: Side, squad: &[String]) -> Option<EventKind> {
        let team = index(side);
        let player = Self::pick(rng, &self.on_pitch[team])?;
        let card = if self.booked[team].contains(&player) {
            CardColour::SecondYellow
        } else if rng.gen_bool(0.06) {
            CardColour::Red
        } else {
            CardColour::Yellow
        };
        if card == CardColour::Yellow {
            self.booked[team].push(player);
        } else {
            self.on_pitch[team].retain(|&p| p != player);
        }
        Some(EventKind::Card {
            side,
            player: Some(squad[player].clone()),
            card,
        })
    }

    fn substitution(
        &mut self,
        rng: &mut ChaCha8Rng,
        side: Side,
        squad: &[String],
    ) -> Option<EventKind> {
        let team = index(side);
        let outfield: Vec<usize> = self.on_pitch[team]
            .iter()
            .copied()
            .filter(|&p| p != 0)
            .collect();
        let off = Self::pick(rng, &outfield)?;
        let on = Self::pick(rng, &self.bench[team])?;
        self.on_pitch[team].retain(|&p| p != off);
        self.bench[team].retain(|&p| p != on);
        self.on_pitch[team].push(on);
        self.subs_left[team] -= 1;
        Some(EventKind::Substitution {
            side,
            player_on: Some(squad[on].clone()),
            player_off: Some(squad[off].clone()),
        })
    }
}

/// How long one game-clock second takes in real time in basketball: stoppages, fouls and
/// timeouts make a 12-minute quarter last about half an hour.
const BASKETBALL_WALL_PER_CLOCK: f64 = 2.3;

/// A basketball match: every scoring play of four quarters (and overtimes while tied). With
/// `quarters`, the plays add up to exactly those quarter scores.
pub fn basketball(
    request: &Request,
    quarters: Option<&[(u32, u32)]>,
) -> Result<Fixture, GenerateError> {
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let basketball_teams: &[(&str, &str)] = &[
        ("Harbor City Comets", "HCC"),
        ("Mesa Ridge Falcons", "MRF"),
        ("Lakeview Pilots", "LVP"),
        ("Granite Bay Bison", "GBB"),
    ];
    let (home, away) = two_teams(&mut rng, basketball_teams, request);
    let given = quarters.is_some();
    let mut scores: Vec<(u32, u32)> = match quarters {
        Some(quarters) => {
            if quarters.len() < 4 {
                return Err(GenerateError::Impossible(format!(
                    "{} quarters given; a game has at least 4",
                    quarters.len()
                )));
            }
            let (mut home_total, mut away_total) = (0, 0);
            for (index, (home, away)) in quarters.iter().enumerate() {
                if index >= 4 && home_total == away_total {
                    // An overtime is played only when tied, which is fine; a period after a
                    // decided one is not.
                } else if index >= 4 {
                    return Err(GenerateError::Impossible(format!(
                        "period {} played after the game was decided",
                        index + 1
                    )));
                }
                home_total += home;
                away_total += away;
            }
            if home_total == away_total {
                return Err(GenerateError::Impossible(
                    "the game ends tied; add an overtime".into(),
                ));
            }
            quarters.to_vec()
        }
        None => (0..4)
            .map(|_| (rng.gen_range(19..=33), rng.gen_range(19..=33)))
            .collect(),
    };
    if !given {
        while scores.iter().map(|s| s.0).sum::<u32>() == scores.iter().map(|s| s.1).sum::<u32>() {
            scores.push((rng.gen_range(6..=15), rng.gen_range(6..=15)));
        }
    }
    let rosters = [squad(&mut rng), squad(&mut rng)];
    let mut builder = Builder::new();
    builder.push(0, Some(0), EventKind::MatchStarted);
    let mut period_start_ms: u64 = 0;
    for (quarter, (home_points, away_points)) in scores.iter().enumerate() {
        let period = quarter as u8 + 1;
        let length_secs: u32 = if period > 4 { 300 } else { 720 };
        builder.push(
            period_start_ms,
            Some(0),
            EventKind::PeriodStarted { period },
        );
        let mut plays: Vec<(u32, Side, Vec<u8>)> = Vec::new();
        for (side, points) in [(Side::Home, *home_points), (Side::Away, *away_points)] {
            for possession in possessions(&mut rng, points) {
                plays.push((rng.gen_range(1..length_secs), side, possession));
            }
        }
        plays.sort_by_key(|play| play.0);
        for (clock_secs, side, possession) in plays {
            let base_ms = period_start_ms
                + (f64::from(clock_secs) * BASKETBALL_WALL_PER_CLOCK * 1000.0) as u64;
            let shooter = if given {
                None
            } else {
                rosters[index(side)]
                    .iter()
                    .take(9)
                    .collect::<Vec<_>>()
                    .choose(&mut rng)
                    .map(|name| (*name).clone())
            };
            for (shot, points) in possession.into_iter().enumerate() {
                // Free throws after a foul come a few seconds apart at a stopped clock.
                builder.push(
                    base_ms + shot as u64 * 25_000,
                    Some(clock_secs),
                    EventKind::Points {
                        side,
                        points,
                        player: shooter.clone(),
                    },
                );
            }
        }
        let end_ms = period_start_ms
            + (f64::from(length_secs) * BASKETBALL_WALL_PER_CLOCK * 1000.0) as u64
            + 30_000;
        builder.push(end_ms, Some(length_secs), EventKind::PeriodEnded { period });
        let is_last = quarter + 1 == scores.len();
        if is_last {
            builder.push(
                end_ms,
                Some(length_secs),
                EventKind::MatchEnded { winner: None },
            );
        }
        // Two minutes between quarters, fifteen at half-time.
        period_start_ms = end_ms + if period == 2 { 15 * 60_000 } else { 2 * 60_000 };
    }
    // The quarter scores are whatever the caller gave: they may be a real result or invented,
    // so the header says where they came from and nothing more.
    let source = match quarters {
        Some(quarters) => format!(
            "quarter scores given as --quarters {}; plays synthesized by feed-replayer generate --sport basketball --seed {}",
            quarters
                .iter()
                .map(|(home, away)| format!("{home}-{away}"))
                .collect::<Vec<_>>()
                .join(","),
            request.seed
        ),
        None => format!(
            "synthetic: feed-replayer generate --sport basketball --seed {}",
            request.seed
        ),
    };
    let competition = if given {
        "Basketball"
    } else {
        "Synthetic Basketball League"
    };
    Ok(builder.finish(header(
        Sport::Basketball,
        request,
        home,
        away,
        competition,
        source,
    )?))
}

/// Splits a team's points in one quarter into scoring possessions: threes, twos, and-ones and
/// trips to the line, at roughly the mix of a modern game.
fn possessions(rng: &mut ChaCha8Rng, points: u32) -> Vec<Vec<u8>> {
    let mut left = points;
    let mut list = Vec::new();
    while left > 0 {
        let roll: f64 = rng.r#gen();
        let possession: Vec<u8> = if roll < 0.28 && left >= 3 {
            vec![3]
        } else if roll < 0.36 && left >= 3 {
            vec![2, 1]
        } else if roll < 0.50 && left >= 2 {
            vec![1, 1]
        } else if roll < 0.55 {
            vec![1]
        } else if left >= 2 {
            vec![2]
        } else {
            vec![1]
        };
        left -= possession.iter().map(|&p| u32::from(p)).sum::<u32>();
        list.push(possession);
    }
    list
}

/// A tennis match point by point. With `sets`, the points arrive at exactly those set scores
/// (tie-breaks included); otherwise the server wins about two points in three until someone has
/// won the match.
pub fn tennis(
    request: &Request,
    format: TennisFormat,
    sets: Option<&[SetScore]>,
) -> Result<Fixture, GenerateError> {
    if !matches!(format.best_of, 3 | 5) {
        return Err(GenerateError::Impossible(format!(
            "best of {}; tennis is best of 3 or 5",
            format.best_of
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let (home, away) = two_teams(&mut rng, PLAYERS, request);
    // A simulated match knows who served first; scripted set scores are filled in without
    // modelling service, so who serves is left unknown rather than invented.
    let (points, first_server) = match sets {
        Some(sets) => (
            scripted_points(&mut rng, format, sets)?,
            format.first_server,
        ),
        None => {
            let (points, first_server) = simulated_points(&mut rng, format);
            (points, Some(first_server))
        }
    };
    let mut builder = Builder::new();
    builder.push(0, None, EventKind::MatchStarted);
    let mut offset_ms: u64 = 0;
    for point in points {
        offset_ms += match point.pause {
            Pause::Point => rng.gen_range(18_000..45_000),
            Pause::Changeover => rng.gen_range(80_000..100_000),
            Pause::SetBreak => rng.gen_range(120_000..150_000),
        };
        builder.push(offset_ms, None, EventKind::Point { side: point.winner });
    }
    builder.push(
        offset_ms + 5_000,
        None,
        EventKind::MatchEnded { winner: None },
    );
    // As for basketball: the set scores are the caller's, real or invented.
    let source = match sets {
        Some(sets) => format!(
            "set scores given as --sets {}; points synthesized by feed-replayer generate --sport tennis --seed {}",
            sets.iter()
                .map(|set| match set.tiebreak_loser_points {
                    Some(points) => format!("{}-{}({points})", set.home, set.away),
                    None => format!("{}-{}", set.home, set.away),
                })
                .collect::<Vec<_>>()
                .join(","),
            request.seed
        ),
        None => format!(
            "synthetic: feed-replayer generate --sport tennis --seed {}",
            request.seed
        ),
    };
    let competition = if sets.is_some() {
        "Tennis"
    } else {
        "Synthetic Open"
    };
    let mut header = header(Sport::Tennis, request, home, away, competition, source)?;
    header.tennis = Some(TennisFormat {
        first_server,
        ..format
    });
    Ok(builder.finish(header))
}

/// What comes before a point: play, a changeover (after odd games), or a set break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Point,
    Changeover,
    SetBreak,
}

#[derive(Debug, Clone, Copy)]
struct TennisPoint {
    winner: Side,
    pause: Pause,
}

/// Appends the points of one game (or tie-break to `target`) won by `winner`, the loser taking
/// `loser_points`.
fn game_points(
    rng: &mut ChaCha8Rng,
    winner: Side,
    target: u32,
    loser_points: u32,
    first_pause: Pause,
    out: &mut Vec<TennisPoint>,
) {
    // Up to target-1 all, any order keeps the game open; beyond it, points go in pairs (one
    // each) until the winner takes two in a row.
    let before = loser_points.min(target - 1);
    let mut opening: Vec<Side> = std::iter::repeat_n(winner, (target - 1) as usize)
        .chain(std::iter::repeat_n(winner.opponent(), before as usize))
        .collect();
    opening.shuffle(rng);
    let mut sequence = opening;
    if loser_points >= target - 1 {
        for _ in 0..(loser_points - (target - 1)) {
            let mut pair = [winner, winner.opponent()];
            pair.shuffle(rng);
            sequence.extend(pair);
        }
        sequence.push(winner);
    }
    sequence.push(winner);
    for (index, side) in sequence.into_iter().enumerate() {
        out.push(TennisPoint {
            winner: side,
            pause: if index == 0 {
                first_pause
            } else {
                Pause::Point
            },
        });
    }
}

fn random_loser_points(rng: &mut ChaCha8Rng, target: u32) -> u32 {
    // Most games are won to 0, 15 or 30; about one in five goes to deuce.
    if rng.gen_bool(0.2) {
        target - 1 + rng.gen_range(0..3)
    } else {
        rng.gen_range(0..target - 1)
    }
}

fn scripted_points(
    rng: &mut ChaCha8Rng,
    format: TennisFormat,
    sets: &[SetScore],
) -> Result<Vec<TennisPoint>, GenerateError> {
    let needed = format.sets_to_win();
    let mut won = Score::default();
    let mut points = Vec::new();
    for (index, set) in sets.iter().enumerate() {
        let number = index as u8 + 1;
        if won.home >= needed || won.away >= needed {
            return Err(GenerateError::Impossible(format!(
                "set {number} is played after the match was won"
            )));
        }
        let set_games = Score::new(set.home, set.away);
        let Some(winner) = set_games.leader() else {
            return Err(GenerateError::Impossible(format!("set {number} is tied")));
        };
        let (games_won, games_lost) = (set_games.get(winner), set_games.get(winner.opponent()));
        // The set rules are the protocol's: the set must be won at this score and not one game
        // earlier, and only a tie-break finish may pass the score at which the tie-break is played.
        let tiebreak_at = format.tiebreak_at_games(number);
        let tiebreak = tiebreak_at == Some(games_lost) && games_won == games_lost + 1;
        let mut before_last_game = set_games;
        *before_last_game.get_mut(winner) -= 1;
        let valid = format.set_winner(number, set_games) == Some(winner)
            && format.set_winner(number, before_last_game).is_none()
            && (tiebreak || tiebreak_at.is_none_or(|at| games_lost < at));
        if !valid {
            return Err(GenerateError::Impossible(format!(
                "set {number} cannot end {}-{}",
                set.home, set.away
            )));
        }
        if tiebreak != set.tiebreak_loser_points.is_some() {
            return Err(GenerateError::Impossible(format!(
                "set {number} {}-{}: give the tie-break loser's points exactly when the set went to a tie-break, as in 7-6(5)",
                set.home, set.away
            )));
        }
        // Game winners: the loser's games and all but the winner's last, in an order that never
        // ends the set early (no one reaches six with a two-game lead before the end).
        let mut games: Vec<Side> = Vec::new();
        if games_won == 6 {
            let mut opening: Vec<Side> = std::iter::repeat_n(winner, 5)
                .chain(std::iter::repeat_n(winner.opponent(), games_lost as usize))
                .collect();
            opening.shuffle(rng);
            games.extend(opening);
            games.push(winner);
        } else {
            let mut opening: Vec<Side> = std::iter::repeat_n(winner, 5)
                .chain(std::iter::repeat_n(winner.opponent(), 5))
                .collect();
            opening.shuffle(rng);
            games.extend(opening);
            // Level up to the loser's games; a tie-break finish is then at the tie-break score.
            let level_pairs = games_lost - 5;
            for _ in 0..level_pairs {
                let mut pair = [winner, winner.opponent()];
                pair.shuffle(rng);
                games.extend(pair);
            }
            if !tiebreak {
                games.extend([winner, winner]);
            }
        }
        for (game, game_winner) in games.iter().enumerate() {
            let pause = if game == 0 {
                if index == 0 {
                    Pause::Point
                } else {
                    Pause::SetBreak
                }
            } else if game % 2 == 1 {
                Pause::Changeover
            } else {
                Pause::Point
            };
            let loser_points = random_loser_points(rng, 4);
            game_points(rng, *game_winner, 4, loser_points, pause, &mut points);
        }
        if let Some(loser_points) = set.tiebreak_loser_points {
            let target = u32::from(format.tiebreak_points(number));
            game_points(
                rng,
                winner,
                target,
                loser_points,
                Pause::Changeover,
                &mut points,
            );
        }
        *won.get_mut(winner) += 1;
    }
    if won.home < needed && won.away < needed {
        return Err(GenerateError::Impossible(format!(
            "after {} sets no one has won {needed}",
            sets.len()
        )));
    }
    Ok(points)
}

/// Plays a match out point by point; returns the points and who served first.
fn simulated_points(rng: &mut ChaCha8Rng, format: TennisFormat) -> (Vec<TennisPoint>, Side) {
    let needed = format.sets_to_win();
    let mut sets_won = Score::default();
    let mut server = if rng.gen_bool(0.5) {
        Side::Home
    } else {
        Side::Away
    };
    let first_server = server;
    let mut points = Vec::new();
    let mut set_number: u8 = 0;
    while sets_won.home < needed && sets_won.away < needed {
        set_number += 1;
        let tiebreak_at = format.tiebreak_at_games(set_number);
        let mut games = Score::default();
        let mut first_game = true;
        loop {
            let pause = if first_game {
                if set_number == 1 {
                    Pause::Point
                } else {
                    Pause::SetBreak
                }
            } else if (games.home + games.away) % 2 == 1 {
                Pause::Changeover
            } else {
                Pause::Point
            };
            first_game = false;
            let tiebreak = tiebreak_at.is_some_and(|at| games.home == at && games.away == at);
            let target = if tiebreak {
                format.tiebreak_points(set_number)
            } else {
                4
            };
            let winner = play_out(rng, server, target, tiebreak, pause, &mut points);
            *games.get_mut(winner) += 1;
            server = server.opponent();
            if let Some(set_winner) = format.set_winner(set_number, games) {
                *sets_won.get_mut(set_winner) += 1;
                break;
            }
        }
    }
    (points, first_server)
}

/// Plays one game or tie-break point by point; the server wins about 64% of points.
fn play_out(
    rng: &mut ChaCha8Rng,
    first_server: Side,
    target: u16,
    tiebreak: bool,
    first_pause: Pause,
    out: &mut Vec<TennisPoint>,
) -> Side {
    let mut score = [0u16, 0u16];
    let mut played = 0u32;
    loop {
        // In a tie-break the serve changes after the first point, then every two.
        let server = if tiebreak && played.div_ceil(2) % 2 == 1 {
            first_server.opponent()
        } else {
            first_server
        };
        let winner = if rng.gen_bool(0.64) {
            server
        } else {
            server.opponent()
        };
        out.push(TennisPoint {
            winner,
            pause: if played == 0 {
                first_pause
            } else {
                Pause::Point
            },
        });
        played += 1;
        score[index(winner)] += 1;
        let (mine, theirs) = (score[index(winner)], score[index(winner.opponent())]);
        if mine >= target && mine >= theirs + 2 {
            return winner;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;
    use scoreline_protocol::FinalSet;

    fn request(seed: u64) -> Request {
        Request {
            seed,
            ..Request::default()
        }
    }

    #[test]
    fn same_seed_same_match_other_seed_other_match() {
        for make in [
            |seed| football(&request(seed)).unwrap(),
            |seed| basketball(&request(seed), None).unwrap(),
            |seed| tennis(&request(seed), TennisFormat::default(), None).unwrap(),
        ] {
            let (a, b, c) = (make(7), make(7), make(8));
            assert_eq!(a.to_jsonl(), b.to_jsonl());
            assert_ne!(a.to_jsonl(), c.to_jsonl());
        }
    }

    #[test]
    fn generated_matches_validate_and_look_like_their_sport() {
        for seed in 0..40 {
            let match_ = football(&request(seed)).unwrap();
            let snapshot =
                check(&match_).unwrap_or_else(|problems| panic!("seed {seed}: {problems:?}"));
            assert_eq!(snapshot.status, MatchStatus::Finished);
            assert!(
                snapshot.score.home + snapshot.score.away <= 10,
                "seed {seed}"
            );
            let duration_mins = match_.duration_ms() / 60_000;
            assert!(
                (105..=125).contains(&duration_mins),
                "seed {seed}: {duration_mins} minutes"
            );

            let game = basketball(&request(seed), None).unwrap();
            let snapshot =
                check(&game).unwrap_or_else(|problems| panic!("seed {seed}: {problems:?}"));
            assert!((70..=150).contains(&snapshot.score.home), "seed {seed}");
            assert!(snapshot.winner.is_some());

            for format in [
                TennisFormat::default(),
                TennisFormat {
                    best_of: 5,
                    final_set: FinalSet::Advantage,
                    first_server: None,
                },
            ] {
                let tennis_match = tennis(&request(seed), format, None).unwrap();
                let snapshot = check(&tennis_match)
                    .unwrap_or_else(|problems| panic!("seed {seed}: {problems:?}"));
                assert_eq!(
                    snapshot.score.get(snapshot.winner.unwrap()),
                    format.sets_to_win()
                );
            }
        }
    }

    #[test]
    fn a_simulated_match_announces_who_served_first() {
        // The server wins about 64% of points, so following service from the announced first
        // server by the rules must find the server winning most points; a wrong first server
        // would find the receiver winning them.
        let (mut served_won, mut points) = (0_u32, 0_u32);
        for seed in 0..10 {
            let fixture = tennis(&request(seed), TennisFormat::default(), None).unwrap();
            let format = fixture.header.tennis.unwrap();
            assert!(format.first_server.is_some(), "seed {seed}");
            let mut snapshot =
                scoreline_protocol::MatchSnapshot::new(fixture.header.match_topic.clone());
            snapshot.tennis = Some(format);
            for (index, event) in fixture.events.iter().enumerate() {
                let EventKind::Point { side } = event.kind else {
                    continue;
                };
                let games: u32 = snapshot.periods.iter().map(|set| set.home + set.away).sum();
                let tiebreak = snapshot
                    .game
                    .filter(|game| game.tiebreak)
                    .map(|game| u32::from(game.home + game.away));
                let server = format.server(games, tiebreak).unwrap();
                points += 1;
                served_won += u32::from(server == side);
                let event = scoreline_protocol::ScoreEvent {
                    match_topic: snapshot.match_topic.clone(),
                    epoch: 0,
                    seq: index as u64 + 1,
                    ts_ms: event.offset_ms,
                    clock_secs: None,
                    prev_critical_seq: None,
                    kind: event.kind.clone(),
                };
                scoreline_protocol::apply(&mut snapshot, &event).unwrap();
            }
        }
        let share = f64::from(served_won) / f64::from(points);
        assert!(
            (0.58..0.70).contains(&share),
            "server won {share:.2} of {points} points"
        );
    }

    #[test]
    fn a_named_competition_names_the_topic_and_given_scores_are_not_called_real() {
        let named = Request {
            seed: 4,
            competition: Some("Ligue Régionale 2025-26".into()),
            ..Request::default()
        };
        let fixture = football(&named).unwrap();
        assert_eq!(
            fixture.header.competition.as_deref(),
            Some("Ligue Régionale 2025-26")
        );
        assert_eq!(
            fixture.header.match_topic.competition_slug(),
            "ligue-regionale-2025-26"
        );
        let unnamed = football(&request(4)).unwrap();
        assert_eq!(unnamed.header.match_topic.competition_slug(), "synthetic");
        assert_eq!(slugify("  St. Mary's -- Under 21 "), "st-mary-s-under-21");
        assert_eq!(slugify("!!!"), "");

        let sets = parse_sets("6-4, 6-7(5), 7-5").unwrap();
        let given = tennis(&request(1), TennisFormat::default(), Some(&sets)).unwrap();
        let source = given.header.source.unwrap();
        assert!(!source.contains("public record"), "{source}");
        assert!(source.contains("--sets 6-4,6-7(5),7-5"), "{source}");
        let quarters = parse_quarters("22-23,27-19,26-33,14-18").unwrap();
        let given = basketball(&request(1), Some(&quarters)).unwrap();
        let source = given.header.source.unwrap();
        assert!(!source.contains("public record"), "{source}");
        assert!(
            source.contains("--quarters 22-23,27-19,26-33,14-18"),
            "{source}"
        );
    }

    #[test]
    fn real_set_scores_come_out_exactly() {
        let format = TennisFormat {
            best_of: 5,
            final_set: FinalSet::Advantage,
            first_server: None,
        };
        let sets = parse_sets("5-7, 6-4, 6-2, 6-7(5), 7-5").unwrap();
        for seed in 0..20 {
            let fixture = tennis(&request(seed), format, Some(&sets)).unwrap();
            let snapshot = check(&fixture).unwrap();
            let games: Vec<(u32, u32, Option<Score>)> = snapshot
                .periods
                .iter()
                .map(|set| (set.home, set.away, set.tiebreak))
                .collect();
            assert_eq!(
                games,
                [
                    (5, 7, None),
                    (6, 4, None),
                    (6, 2, None),
                    (6, 7, Some(Score::new(5, 7))),
                    (7, 5, None)
                ]
            );
            assert_eq!(snapshot.winner, Some(Side::Home));
        }
        let long_deuce = parse_sets("6-7(12),7-6(10),7-6(9)").unwrap();
        let snapshot = check(
            &tennis(
                &request(1),
                TennisFormat {
                    best_of: 3,
                    final_set: FinalSet::TiebreakTo10,
                    first_server: None,
                },
                Some(&long_deuce),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(snapshot.periods[0].tiebreak, Some(Score::new(12, 14)));
        // The deciding set goes to a first-to-10 tie-break: 9 points for the loser, 11 for the winner.
        assert_eq!(snapshot.periods[2].tiebreak, Some(Score::new(11, 9)));
        let advantage_marathon = parse_sets("6-4,6-4,4-6,4-6,11-9").unwrap();
        assert!(check(&tennis(&request(2), format, Some(&advantage_marathon)).unwrap()).is_ok());
    }

    #[test]
    fn final_set_tiebreak_at_twelve_all() {
        let format = TennisFormat {
            best_of: 3,
            final_set: FinalSet::TiebreakAt12,
            first_server: None,
        };
        // Simulated matches validate, and some deciding sets go past six games all.
        let mut past_six_all = 0;
        for seed in 0..60 {
            let snapshot = check(&tennis(&request(seed), format, None).unwrap())
                .unwrap_or_else(|problems| panic!("seed {seed}: {problems:?}"));
            past_six_all += snapshot
                .periods
                .get(2)
                .filter(|set| set.home + set.away > 12)
                .map_or(0, |_| 1);
        }
        assert!(past_six_all > 0);
        let decided_at_twelve_all = parse_sets("6-4,4-6,13-12(4)").unwrap();
        let snapshot =
            check(&tennis(&request(1), format, Some(&decided_at_twelve_all)).unwrap()).unwrap();
        assert_eq!(snapshot.periods[2].tiebreak, Some(Score::new(7, 4)));
        let by_two_games = parse_sets("6-4,4-6,12-10").unwrap();
        assert!(check(&tennis(&request(1), format, Some(&by_two_games)).unwrap()).is_ok());
        for sets in ["6-4,4-6,7-6(4)", "6-4,4-6,14-12", "6-4,4-6,13-12"] {
            assert!(
                tennis(&request(1), format, Some(&parse_sets(sets).unwrap())).is_err(),
                "{sets}"
            );
        }
        // Only the deciding set waits for twelve all.
        let early_sets = parse_sets("7-6(4),6-7(5),13-12(4)").unwrap();
        assert!(check(&tennis(&request(1), format, Some(&early_sets)).unwrap()).is_ok());
    }

    #[test]
    fn impossible_set_scores_are_refused() {
        let format = TennisFormat::default();
        for (sets, expected) in [
            ("6-5,6-0", "cannot end 6-5"),
            ("7-6,6-0", "tie-break loser's points"),
            ("6-4,6-4,6-4", "after the match was won"),
            ("6-4", "no one has won"),
            ("6-6", "tied"),
        ] {
            let error = tennis(&request(1), format, Some(&parse_sets(sets).unwrap())).unwrap_err();
            assert!(error.to_string().contains(expected), "{sets}: {error}");
        }
        assert!(parse_sets("6:4").is_err());
        assert!(parse_sets("7-6(x)").is_err());
    }

    #[test]
    fn real_quarter_scores_come_out_exactly() {
        let quarters = parse_quarters("22-23,20-26,33-26,18-14").unwrap();
        for seed in 0..20 {
            let snapshot = check(&basketball(&request(seed), Some(&quarters)).unwrap()).unwrap();
            let per_quarter: Vec<(u32, u32)> =
                snapshot.periods.iter().map(|q| (q.home, q.away)).collect();
            assert_eq!(per_quarter, quarters);
            assert_eq!((snapshot.score.home, snapshot.score.away), (93, 89));
        }
        assert!(
            basketball(
                &request(1),
                Some(&parse_quarters("20-20,20-20,20-20,20-20").unwrap())
            )
            .is_err()
        );
        assert!(
            basketball(
                &request(1),
                Some(&parse_quarters("30-20,20-20,20-20,20-20,10-5").unwrap())
            )
            .is_err()
        );
        let overtime = parse_quarters("20-20,20-20,20-20,20-20,12-9").unwrap();
        assert_eq!(
            check(&basketball(&request(1), Some(&overtime)).unwrap())
                .unwrap()
                .period,
            5
        );
    }
}
