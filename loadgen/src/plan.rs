//! Scenario planning: who subscribes to what, and which event is published when.
//!
//! Everything here is pure so the numbers a run is judged by (events per topic, what each client
//! must receive) are unit-tested without sockets.

use std::time::Duration;

use serde::Serialize;

/// One stretch of publishing at a constant rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Phase {
    /// Events per second over all topics.
    pub events_per_sec: u32,
    /// How long the phase lasts.
    pub secs: u32,
}

impl Phase {
    /// Events this phase publishes: its rate times its length, exactly.
    pub fn event_count(&self) -> u64 {
        u64::from(self.events_per_sec) * u64::from(self.secs)
    }

    /// When the `index`-th event of the phase is due, counted from the phase start.
    pub fn due_after(&self, index: u64) -> Duration {
        // Computed from the phase start (not by adding intervals) so rounding never accumulates.
        Duration::from_nanos(
            index.saturating_mul(1_000_000_000) / u64::from(self.events_per_sec.max(1)),
        )
    }
}

/// How the load generator publishes, as the two kinds of feed in `docs/protocol.md` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// Through `scoreline-feed`'s numbering script: the event is also appended to its match's
    /// history in Redis, so the service can refill any gap (the guaranteed path).
    Numbered,
    /// A bare `PUBLISH` of an event the load generator numbered (best effort: an event the
    /// service drops cannot be recovered, and subscribers get a `resync`).
    Plain,
}

/// The named scenarios of issue 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Match day: 5,000 clients, 100 match topics, one each, 200 events/s for 20 s.
    S1,
    /// The final: 10,000 clients on one match; 20 events/s for 5 s, then 100 events/s for 10 s.
    S2,
    /// A goal in the final: 10,000 clients on one match and a realistic 5 events/s for 10 s, so
    /// each event is a burst of 10,000 frames whose tail is what the last fan waits for.
    S2c,
    /// Idle: 10,000 subscribed clients and no events, for server RSS per connection.
    S3,
    /// Reconnect storm: 10,000 clients connect and subscribe at once, then a short check that
    /// every one of them receives events.
    S4,
    /// Slow fans: S1 plus 500 clients subscribed to every match that stop reading.
    S5,
    /// Only the flags given (defaults: 100 clients, 10 topics, 50 events/s for 5 s).
    Custom,
}

/// What a run does, before any socket is opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Clients that read every frame (the fans being measured).
    pub readers: usize,
    /// Clients that subscribe to every topic of the run and then stop reading.
    pub slow: usize,
    /// Match topics events are published on.
    pub topics: usize,
    /// How many clients connect at the same time.
    pub connect_concurrency: usize,
    /// Publishing, one phase after the other. Empty: subscribe, hold, and measure memory.
    pub phases: Vec<Phase>,
    /// With no phases, how long to hold the idle connections before measuring.
    pub hold_secs: u32,
    /// The first `seq` this run publishes on each topic. Above 1, an earlier run with the same
    /// run id published the ones before: the clients connect to matches in play, and a service
    /// that keeps state answers each `subscribe` with the match as it stands.
    pub first_seq: u64,
}

impl Scenario {
    /// The preset plan of a scenario; `Custom` starts from small defaults for flags to override.
    pub fn plan(self) -> Plan {
        let base = Plan {
            readers: 100,
            slow: 0,
            topics: 10,
            connect_concurrency: 200,
            phases: vec![Phase {
                events_per_sec: 50,
                secs: 5,
            }],
            hold_secs: 0,
            first_seq: 1,
        };
        let match_day = Plan {
            readers: 5_000,
            topics: 100,
            phases: vec![Phase {
                events_per_sec: 200,
                secs: 20,
            }],
            ..base.clone()
        };
        match self {
            Scenario::S1 => match_day,
            Scenario::S2 => Plan {
                readers: 10_000,
                topics: 1,
                phases: vec![
                    Phase {
                        events_per_sec: 20,
                        secs: 5,
                    },
                    Phase {
                        events_per_sec: 100,
                        secs: 10,
                    },
                ],
                ..base
            },
            Scenario::S2c => Plan {
                readers: 10_000,
                topics: 1,
                phases: vec![Phase {
                    events_per_sec: 5,
                    secs: 10,
                }],
                ..base.clone()
            },
            Scenario::S3 => Plan {
                readers: 10_000,
                topics: 100,
                phases: Vec::new(),
                hold_secs: 5,
                ..base
            },
            Scenario::S4 => Plan {
                readers: 10_000,
                topics: 100,
                connect_concurrency: 10_000,
                phases: vec![Phase {
                    events_per_sec: 100,
                    secs: 2,
                }],
                ..base
            },
            Scenario::S5 => Plan {
                slow: 500,
                ..match_day
            },
            Scenario::Custom => base,
        }
    }
}

impl Plan {
    /// The topics reader `client` subscribes to: one match each, spread evenly.
    pub fn reader_topic(&self, client: usize) -> usize {
        client % self.topics.max(1)
    }

    /// Every event of the run, in publishing order.
    pub fn total_events(&self) -> u64 {
        self.phases.iter().map(Phase::event_count).sum()
    }

    /// Which phase published the run's `index`-th event (counted from 0 over all phases).
    pub fn phase_of(&self, index: u64) -> Option<usize> {
        let mut end = 0;
        self.phases.iter().position(|phase| {
            end += phase.event_count();
            index < end
        })
    }

    /// The run's index of event `seq` of `topic`, as the round-robin [`Sequencer`] numbers them;
    /// `None` for an event published before the run.
    pub fn event_index(&self, topic: usize, seq: u64) -> Option<u64> {
        let sequence = seq.checked_sub(self.first_seq)?;
        Some(sequence * self.topics.max(1) as u64 + topic as u64)
    }

    /// Which phase published event `seq` of `topic`; `None` for one published before the run or
    /// past its plan.
    pub fn phase_of_event(&self, topic: usize, seq: u64) -> Option<usize> {
        self.phase_of(self.event_index(topic, seq)?)
    }

    /// The last `seq` of each topic published before the run (0 for fresh matches).
    pub fn published_before(&self) -> u64 {
        self.first_seq.saturating_sub(1)
    }

    /// The highest `seq` any topic reaches if every planned event is published.
    pub fn max_seq(&self) -> u64 {
        self.published_before() + self.total_events().div_ceil(self.topics.max(1) as u64)
    }
}

/// Numbers events per topic: the run's `k`-th event goes to topic `k mod T` with the next `seq`
/// of that topic, from 1 and without gaps, as the service requires.
#[derive(Debug, Clone)]
pub struct Sequencer {
    next_seq: Vec<u64>,
    next_topic: usize,
    first_seq: u64,
}

/// One numbered event to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    /// Index of the topic in the run.
    pub topic: usize,
    /// Its `seq` within the topic, from 1.
    pub seq: u64,
}

impl Sequencer {
    /// A sequencer over `topics` topics, each starting at `first_seq` (1 for fresh matches).
    pub fn new(topics: usize, first_seq: u64) -> Sequencer {
        let first_seq = first_seq.max(1);
        Sequencer {
            next_seq: vec![first_seq; topics.max(1)],
            next_topic: 0,
            first_seq,
        }
    }

    /// The next event: round-robin over topics so every match gets the same share.
    pub fn next_event(&mut self) -> Numbered {
        let topic = self.next_topic;
        let seq = self.next_seq[topic];
        self.next_seq[topic] += 1;
        self.next_topic = (topic + 1) % self.next_seq.len();
        Numbered { topic, seq }
    }

    /// How many events each topic has been given so far.
    pub fn published_per_topic(&self) -> Vec<u64> {
        self.next_seq
            .iter()
            .map(|next| next - self.first_seq)
            .collect()
    }
}

/// The run's topics: a fresh competition per run (`football/loadgen-<run>/m<i>`), so a service
/// that already saw an earlier run's matches never refuses the new `seq` 1 as stale.
pub fn topic_names(run_id: &str, topics: usize) -> Vec<String> {
    (0..topics.max(1))
        .map(|index| format!("football/loadgen-{run_id}/m{index}"))
        .collect()
}

/// The prefix covering every topic of the run, which slow clients subscribe to.
pub fn run_prefix(run_id: &str) -> String {
    format!("football/loadgen-{run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_issue() {
        let s1 = Scenario::S1.plan();
        assert_eq!(
            (s1.readers, s1.topics, s1.total_events()),
            (5_000, 100, 4_000)
        );
        let s2 = Scenario::S2.plan();
        assert_eq!((s2.readers, s2.topics), (10_000, 1));
        // 100 events/s to 10,000 clients is the issue's 1M deliveries/s.
        assert_eq!(s2.phases[1].events_per_sec as usize * s2.readers, 1_000_000);
        assert!(Scenario::S3.plan().phases.is_empty());
        assert_eq!(Scenario::S4.plan().connect_concurrency, 10_000);
        let s5 = Scenario::S5.plan();
        assert_eq!(
            (s5.readers, s5.slow, s5.phases.clone()),
            (5_000, 500, s1.phases)
        );
    }

    #[test]
    fn sequencer_numbers_each_topic_from_one_without_gaps() {
        let mut sequencer = Sequencer::new(3, 1);
        let events: Vec<Numbered> = (0..7).map(|_| sequencer.next_event()).collect();
        let of_topic = |topic| {
            events
                .iter()
                .filter(|e| e.topic == topic)
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(of_topic(0), vec![1, 2, 3]);
        assert_eq!(of_topic(1), vec![1, 2]);
        assert_eq!(of_topic(2), vec![1, 2]);
        assert_eq!(sequencer.published_per_topic(), vec![3, 2, 2]);
    }

    /// `events` events over `topics` topics in one second.
    fn one_second(topics: usize, events: u32) -> Plan {
        Plan {
            topics,
            phases: vec![Phase {
                events_per_sec: events,
                secs: 1,
            }],
            ..Scenario::Custom.plan()
        }
    }

    #[test]
    fn max_seq_covers_the_busiest_topic() {
        let plan = one_second(3, 7);
        let mut sequencer = Sequencer::new(plan.topics, plan.first_seq);
        let highest = (0..plan.total_events())
            .map(|_| sequencer.next_event().seq)
            .max();
        assert_eq!(highest, Some(plan.max_seq()));
    }

    #[test]
    fn events_map_back_to_their_phase() {
        let plan = Plan {
            topics: 2,
            phases: vec![
                Phase {
                    events_per_sec: 2,
                    secs: 2,
                },
                Phase {
                    events_per_sec: 3,
                    secs: 1,
                },
            ],
            ..Scenario::Custom.plan()
        };
        let mut sequencer = Sequencer::new(plan.topics, plan.first_seq);
        let phases: Vec<Option<usize>> = (0..plan.total_events())
            .map(|_| {
                let event = sequencer.next_event();
                plan.phase_of_event(event.topic, event.seq)
            })
            .collect();
        assert_eq!(phases, [0, 0, 0, 0, 1, 1, 1].map(Some));
        assert_eq!(plan.phase_of(7), None);
    }

    #[test]
    fn due_times_are_spread_evenly_without_drift() {
        let phase = Phase {
            events_per_sec: 3,
            secs: 10,
        };
        assert_eq!(phase.due_after(0), Duration::ZERO);
        assert_eq!(phase.due_after(1), Duration::from_nanos(333_333_333));
        // The 30th event is due exactly 10 s in, not 30 × 333,333,333 ns.
        assert_eq!(phase.due_after(30), Duration::from_secs(10));
    }

    #[test]
    fn readers_spread_evenly_over_topics() {
        let plan = Scenario::S1.plan();
        let mut per_topic = vec![0; plan.topics];
        for client in 0..plan.readers {
            per_topic[plan.reader_topic(client)] += 1;
        }
        assert!(per_topic.iter().all(|&count| count == 50));
    }

    #[test]
    fn topic_names_are_valid_match_topics_under_the_run_prefix() {
        for name in topic_names("r1", 3) {
            assert!(
                scoreline_protocol::MatchTopic::parse(&name).is_ok(),
                "{name}"
            );
            assert!(name.starts_with(&run_prefix("r1")));
        }
        assert!(scoreline_protocol::Topic::parse(&run_prefix("r1")).is_ok());
    }

    #[test]
    fn a_run_into_matches_in_play_numbers_and_places_only_its_own_events() {
        let plan = Plan {
            first_seq: 51,
            ..one_second(2, 4)
        };
        let mut sequencer = Sequencer::new(plan.topics, plan.first_seq);
        let events: Vec<(usize, u64)> = (0..4)
            .map(|_| sequencer.next_event())
            .map(|event| (event.topic, event.seq))
            .collect();
        assert_eq!(events, [(0, 51), (1, 51), (0, 52), (1, 52)]);
        assert_eq!(sequencer.published_per_topic(), [2, 2]);
        assert_eq!(plan.max_seq(), 52);
        assert_eq!(plan.published_before(), 50);
        assert_eq!(plan.event_index(1, 52), Some(3));
        assert_eq!(plan.event_index(1, 50), None, "published before the run");
    }
}
