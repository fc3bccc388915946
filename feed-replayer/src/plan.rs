//! Turning a fixture into the events a replay publishes and when: pure scheduling math.
//!
//! A replay publishes the header as a `match_scheduled` event, then every event line, numbered
//! 1, 2, 3... without gaps (corrections are renumbered to match). Each event is due at
//! `start + (offset_ms - from_ms) / speed`, measured from one fixed start instant, so delays never
//! accumulate however long the match; events before `from_ms` are due at once, in order, so a
//! viewer joining a replay started mid-match sees the state so far.

use std::collections::HashMap;

use scoreline_protocol::{EventKind, MatchTopic, ScoreEvent, Sport};

use crate::fixture::{Fixture, Problem};

/// How a replay maps recording time onto wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// How many recording milliseconds pass per wall millisecond: 1 is real time, 60 plays one
    /// match minute per second. Finite and above zero.
    pub speed: f64,
    /// Recording offset to start at: everything before it is published at once.
    pub from_ms: u64,
}

impl Pace {
    /// Real time from kickoff.
    pub const REAL_TIME: Pace = Pace {
        speed: 1.0,
        from_ms: 0,
    };

    /// Wall milliseconds after the start at which an event at `offset_ms` is due.
    pub fn due_ms(&self, offset_ms: u64) -> u64 {
        let ahead_ms = offset_ms.saturating_sub(self.from_ms);
        // Float rounding is fine here: the result is a schedule in whole milliseconds, and every
        // event is computed from the same start, so errors do not add up.
        (ahead_ms as f64 / self.speed).round() as u64
    }

    /// Wall milliseconds before the start at which kickoff (offset 0) happened, for the
    /// `kickoff_ms` a replay announces: positive when starting mid-match.
    pub fn kickoff_lead_ms(&self) -> u64 {
        (self.from_ms as f64 / self.speed).round() as u64
    }
}

/// Why a pace is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaceError {
    /// Zero, negative, infinite or NaN speed.
    #[error("speed must be a number above 0, not {0}")]
    BadSpeed(f64),
}

impl Pace {
    /// A checked pace.
    pub fn new(speed: f64, from_ms: u64) -> Result<Pace, PaceError> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(PaceError::BadSpeed(speed));
        }
        Ok(Pace { speed, from_ms })
    }
}

/// One event of a replay, numbered and placed in time, not yet stamped with an epoch or a
/// publishing time.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    /// The gap-free seq it is published with.
    pub seq: u64,
    /// Its offset in the recording, for progress displays.
    pub offset_ms: u64,
    /// The game clock, copied from the fixture.
    pub clock_secs: Option<u32>,
    /// What happened (corrections already point at published seqs). For the announcement this is
    /// `match_scheduled` with `kickoff_ms` 0, set when stamped.
    pub kind: EventKind,
    /// The fixture line it came from (the header's line 1 for the announcement).
    pub line: usize,
}

/// The whole replay of one match, in publishing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The topic every event goes to.
    pub match_topic: MatchTopic,
    /// The announcement first, then every event line.
    pub events: Vec<PlannedEvent>,
}

impl Plan {
    /// Numbers a fixture's events for publishing. Fails when a correction names a seq that no
    /// earlier line has.
    pub fn of(fixture: &Fixture) -> Result<Plan, Problem> {
        let mut events = Vec::with_capacity(fixture.events.len() + 1);
        events.push(PlannedEvent {
            seq: 1,
            offset_ms: 0,
            clock_secs: None,
            kind: fixture.schedule_kind(0),
            line: 1,
        });
        let mut published_seq: HashMap<u64, u64> = HashMap::with_capacity(fixture.events.len());
        for event in &fixture.events {
            let seq = events.len() as u64 + 1;
            let kind = match &event.kind {
                EventKind::Correction {
                    corrects,
                    replacement,
                } => EventKind::Correction {
                    corrects: *published_seq.get(corrects).ok_or_else(|| Problem {
                        line: event.line,
                        message: format!(
                            "correction names seq {corrects}, which no earlier line has"
                        ),
                    })?,
                    replacement: replacement.clone(),
                },
                other => other.clone(),
            };
            published_seq.insert(event.seq, seq);
            events.push(PlannedEvent {
                seq,
                offset_ms: event.offset_ms,
                clock_secs: event.clock_secs,
                kind,
                line: event.line,
            });
        }
        Ok(Plan {
            match_topic: fixture.header.match_topic.clone(),
            events,
        })
    }

    /// The `index`th event as published in history `epoch` of a replay whose offset 0 is at wall
    /// time `kickoff_ms`, stamped with publishing time `ts_ms`.
    pub fn stamp(&self, index: usize, epoch: u64, kickoff_ms: u64, ts_ms: u64) -> ScoreEvent {
        let planned = &self.events[index];
        let kind = match &planned.kind {
            EventKind::MatchScheduled {
                home,
                away,
                competition,
                venue,
                period_secs,
                tennis,
                ..
            } => EventKind::MatchScheduled {
                home: home.clone(),
                away: away.clone(),
                kickoff_ms,
                competition: competition.clone(),
                venue: venue.clone(),
                period_secs: *period_secs,
                tennis: *tennis,
            },
            other => other.clone(),
        };
        ScoreEvent {
            match_topic: self.match_topic.clone(),
            epoch,
            seq: planned.seq,
            ts_ms,
            clock_secs: planned.clock_secs,
            prev_critical_seq: None,
            kind,
        }
    }

    /// The plan with a `clock` event every `every_secs` of game clock while a period runs, for
    /// sports with a game clock.
    ///
    /// Displays extrapolate a running clock at real speed; in a replay at 60x the clock would crawl
    /// and then jump at each event. The readings come from the fixture's own clock values,
    /// interpolated linearly between two events of the same period, so they stop where the game
    /// clock stopped (basketball) and never run past the next real reading. Seq is renumbered
    /// gap-free again, and corrections follow.
    pub fn with_clock_ticks(self, every_secs: u32) -> Plan {
        if every_secs == 0 {
            return self;
        }
        // Readings the fixture gives while a period runs, tagged with which run of the clock
        // (period) they belong to; a period's start and end belong to it.
        let mut anchors: Vec<(usize, u64, u32)> = Vec::new();
        let mut run = 0usize;
        let mut running = false;
        for planned in &self.events {
            let belongs = match planned.kind {
                EventKind::PeriodStarted { .. } => {
                    run += 1;
                    running = true;
                    true
                }
                EventKind::PeriodEnded { .. } | EventKind::MatchEnded { .. } => {
                    let was = running;
                    running = false;
                    was
                }
                _ => running,
            };
            if belongs && let Some(clock_secs) = planned.clock_secs {
                anchors.push((run, planned.offset_ms, clock_secs));
            }
        }
        let mut ticks: Vec<(u64, u32)> = Vec::new();
        for pair in anchors.windows(2) {
            let ((run_a, from_ms, from_clock), (run_b, to_ms, to_clock)) = (pair[0], pair[1]);
            if run_a != run_b || to_clock <= from_clock || to_ms <= from_ms {
                continue;
            }
            let span_ms = (to_ms - from_ms) as f64;
            let span_secs = f64::from(to_clock - from_clock);
            let mut tick = (from_clock / every_secs + 1) * every_secs;
            while tick < to_clock {
                let offset_ms =
                    from_ms + (f64::from(tick - from_clock) / span_secs * span_ms).round() as u64;
                ticks.push((offset_ms, tick));
                tick += every_secs;
            }
        }
        let mut events: Vec<PlannedEvent> = Vec::with_capacity(self.events.len() + ticks.len());
        let mut renumbered: HashMap<u64, u64> = HashMap::with_capacity(self.events.len());
        let mut pending = ticks.into_iter().peekable();
        for planned in self.events {
            while let Some((offset_ms, clock_secs)) =
                pending.next_if(|(offset_ms, _)| *offset_ms < planned.offset_ms)
            {
                events.push(PlannedEvent {
                    seq: events.len() as u64 + 1,
                    offset_ms,
                    clock_secs: Some(clock_secs),
                    kind: EventKind::Clock { running: true },
                    line: planned.line,
                });
            }
            let seq = events.len() as u64 + 1;
            renumbered.insert(planned.seq, seq);
            let kind = match planned.kind {
                EventKind::Correction {
                    corrects,
                    replacement,
                } => EventKind::Correction {
                    corrects: renumbered.get(&corrects).copied().unwrap_or(corrects),
                    replacement,
                },
                other => other,
            };
            events.push(PlannedEvent {
                seq,
                kind,
                ..planned
            });
        }
        Plan {
            match_topic: self.match_topic,
            events,
        }
    }

    /// Where in the recording a match time falls, for `--from`.
    ///
    /// A football fan's "70th minute" is on the game clock, which skips half-time and stoppage
    /// time: the recording offset is found from the last event, in order, whose clock reading is
    /// at or before the target, plus the time since. Other sports have no clock that runs through
    /// the whole match (basketball's restarts every quarter, tennis has none), so there match time
    /// is time since kickoff.
    pub fn recording_offset_ms(&self, match_time_ms: u64) -> u64 {
        if match_time_ms == 0 || Sport::from_slug(self.match_topic.sport_slug()) != Sport::Football
        {
            return match_time_ms;
        }
        let target_secs = u32::try_from(match_time_ms / 1000).unwrap_or(u32::MAX);
        let anchor = self
            .events
            .iter()
            .rev()
            .filter_map(|event| Some((event.offset_ms, event.clock_secs?)))
            .find(|(_, clock_secs)| *clock_secs <= target_secs);
        match anchor {
            Some((offset_ms, clock_secs)) => {
                offset_ms + u64::from(target_secs - clock_secs) * 1000 + match_time_ms % 1000
            }
            None => match_time_ms,
        }
    }

    /// The recording time the replay covers, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.events.last().map_or(0, |event| event.offset_ms)
    }
}

/// Parses a `--from` position: a duration in recording time such as `70m`, `45m30s`, `1h` or
/// `90000ms`; a bare number means minutes, as football fans count.
pub fn parse_from(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(minutes) = text.parse::<u64>() {
        return minutes
            .checked_mul(60_000)
            .ok_or_else(|| format!("{text} minutes is too far"));
    }
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a match time like 70m, 45m30s or 1h: {error}"))?;
    u64::try_from(duration.as_millis()).map_err(|_| format!("{text} is too far"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::parse;

    fn fixture() -> Fixture {
        parse(concat!(
            r#"{"format":"scoreline-fixture","version":1,"match":"football/test/a-b","sport":"football","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0,"result":{"status":"finished","score":{"home":0,"away":0}}}"#, "\n",
            r#"{"offset_ms":0,"seq":10,"kind":"match_started"}"#, "\n",
            r#"{"offset_ms":60000,"seq":20,"kind":"goal","side":"home"}"#, "\n",
            r#"{"offset_ms":90000,"seq":30,"kind":"correction","corrects":20}"#, "\n",
        ))
        .unwrap()
    }

    #[test]
    fn numbers_gap_free_and_follows_corrections() {
        let plan = Plan::of(&fixture()).unwrap();
        let seqs: Vec<u64> = plan.events.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert!(matches!(
            plan.events[3].kind,
            EventKind::Correction { corrects: 3, .. }
        ));
        assert_eq!(plan.events[3].line, 4);
    }

    #[test]
    fn correction_of_an_unknown_seq_is_a_problem_at_its_line() {
        let mut fixture = fixture();
        fixture.events[2].kind = EventKind::Correction {
            corrects: 99,
            replacement: None,
        };
        assert_eq!(Plan::of(&fixture).unwrap_err().line, 4);
    }

    #[test]
    fn stamping_announces_the_replay_kickoff() {
        let plan = Plan::of(&fixture()).unwrap();
        let event = plan.stamp(0, 7, 1_000, 2_000);
        assert_eq!((event.epoch, event.seq, event.ts_ms), (7, 1, 2_000));
        assert!(matches!(
            event.kind,
            EventKind::MatchScheduled {
                kickoff_ms: 1_000,
                ..
            }
        ));
    }

    #[test]
    fn clock_ticks_fill_running_periods_and_keep_numbering_whole() {
        let text = concat!(
            r#"{"format":"scoreline-fixture","version":1,"match":"football/test/a-b","sport":"football","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0,"result":{"status":"finished","score":{"home":0,"away":0}}}"#,
            "\n",
            r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"period_started","period":1}"#,
            "\n",
            r#"{"offset_ms":150000,"seq":2,"clock_secs":150,"kind":"goal","side":"home"}"#,
            "\n",
            r#"{"offset_ms":300000,"seq":3,"clock_secs":300,"kind":"period_ended","period":1}"#,
            "\n",
            r#"{"offset_ms":900000,"seq":4,"clock_secs":2700,"kind":"period_started","period":2}"#,
            "\n",
            r#"{"offset_ms":960000,"seq":5,"kind":"correction","corrects":2}"#,
            "\n",
            r#"{"offset_ms":1000000,"seq":6,"clock_secs":2800,"kind":"period_ended","period":2}"#,
            "\n",
        );
        let plan = Plan::of(&parse(text).unwrap())
            .unwrap()
            .with_clock_ticks(60);
        let ticks: Vec<(u64, Option<u32>)> = plan
            .events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Clock { .. }))
            .map(|event| (event.offset_ms, event.clock_secs))
            .collect();
        // Minutes 1-4 of the first half, none over half-time, and one in the second half,
        // interpolated across the correction (which has no clock of its own).
        assert_eq!(
            ticks,
            [
                (60_000, Some(60)),
                (120_000, Some(120)),
                (180_000, Some(180)),
                (240_000, Some(240)),
                (960_000, Some(2760))
            ]
        );
        assert!(
            plan.events
                .iter()
                .enumerate()
                .all(|(index, event)| event.seq == index as u64 + 1)
        );
        let goal_seq = plan
            .events
            .iter()
            .find(|event| matches!(event.kind, EventKind::Goal { .. }))
            .unwrap()
            .seq;
        assert!(plan.events.iter().any(|event| event.kind
            == EventKind::Correction {
                corrects: goal_seq,
                replacement: None
            }));
        assert!(
            plan.events
                .windows(2)
                .all(|pair| pair[0].offset_ms <= pair[1].offset_ms)
        );
        // The reducer accepts the ticked stream.
        let mut snapshot = scoreline_protocol::MatchSnapshot::new(plan.match_topic.clone());
        for index in 0..plan.events.len() {
            scoreline_protocol::apply(
                &mut snapshot,
                &plan.stamp(index, 1, 0, plan.events[index].offset_ms),
            )
            .unwrap();
        }
        assert_eq!(snapshot.score.home, 0);
    }

    #[test]
    fn from_is_game_clock_in_football_and_time_since_kickoff_elsewhere() {
        let plan = Plan::of(&fixture()).unwrap();
        // The goal at offset 60 s has no clock reading in this fixture: match time is offset.
        assert_eq!(plan.recording_offset_ms(30_000), 30_000);
        let text = concat!(
            r#"{"format":"scoreline-fixture","version":1,"match":"football/test/a-b","sport":"football","home":{"name":"A"},"away":{"name":"B"},"kickoff_ms":0,"result":{"status":"finished","score":{"home":0,"away":0}}}"#,
            "\n",
            r#"{"offset_ms":0,"seq":1,"clock_secs":0,"kind":"period_started","period":1}"#,
            "\n",
            r#"{"offset_ms":2820000,"seq":2,"clock_secs":2820,"kind":"period_ended","period":1}"#,
            "\n",
            r#"{"offset_ms":3720000,"seq":3,"clock_secs":2700,"kind":"period_started","period":2}"#,
            "\n",
            r#"{"offset_ms":6500000,"seq":4,"clock_secs":5480,"kind":"period_ended","period":2}"#,
            "\n",
        );
        let football = Plan::of(&parse(text).unwrap()).unwrap();
        assert_eq!(football.recording_offset_ms(10 * 60_000), 600_000);
        // The 46th minute is the second half's first, after stoppage time and the break.
        assert_eq!(
            football.recording_offset_ms(45 * 60_000 + 30_000),
            3_750_000
        );
        assert_eq!(
            football.recording_offset_ms(70 * 60_000),
            3_720_000 + 25 * 60_000
        );
        let tennis = Plan {
            match_topic: MatchTopic::parse("tennis/test/a-b").unwrap(),
            ..football.clone()
        };
        assert_eq!(tennis.recording_offset_ms(70 * 60_000), 70 * 60_000);
    }

    #[test]
    fn due_times_scale_with_speed_and_start_at_from() {
        let pace = Pace::new(60.0, 0).unwrap();
        assert_eq!(pace.due_ms(60_000), 1_000);
        assert_eq!(pace.due_ms(5_400_000), 90_000);
        let mid = Pace::new(60.0, 70 * 60_000).unwrap();
        assert_eq!(mid.due_ms(10 * 60_000), 0, "earlier events are due at once");
        assert_eq!(mid.due_ms(71 * 60_000), 1_000);
        assert_eq!(mid.kickoff_lead_ms(), 70_000);
        assert!(Pace::new(0.0, 0).is_err());
        assert!(Pace::new(f64::NAN, 0).is_err());
        assert!(Pace::new(-2.0, 0).is_err());
    }

    #[test]
    fn from_positions() {
        assert_eq!(parse_from("70m"), Ok(4_200_000));
        assert_eq!(parse_from("70"), Ok(4_200_000));
        assert_eq!(parse_from("45m30s"), Ok(2_730_000));
        assert_eq!(parse_from("1h"), Ok(3_600_000));
        assert_eq!(parse_from("1500ms"), Ok(1_500));
        assert!(parse_from("soon").is_err());
    }
}
