//! The service's hot path without sockets: routing an event to its recipients, and
//! `Hub::publish` (reducer, one serialisation, a push into every recipient's mailbox).
//! Run with `cargo bench -p scoreline-service --bench fanout`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use scoreline_protocol::test_support::{event, goal};
use scoreline_protocol::{ScoreEvent, Side, Topic};
use scoreline_service::hub::{Command, Hub, HubLimits, InboundEvent};
use scoreline_service::mailbox::{Mailbox, MailboxLimits, Outbound};
use scoreline_service::matches::StoreLimits;
use scoreline_service::routing::{ConnId, Routes};

fn main() {
    divan::main();
}

const MATCH: &str = "football/premier-league/ars-che";

/// Mailboxes that never overflow during a bench: the bench empties them between samples.
const ROOMY: MailboxLimits = MailboxLimits {
    max_critical: 1_000_000,
    max_frames: 1_000_000,
};

/// A hub's limits roomy enough for every bench.
const HUB_LIMITS: HubLimits = HubLimits {
    max_topics: 64,
    max_snapshots: 100,
    store: StoreLimits {
        max_matches: 1_000,
        finished_retention_ms: 60_000,
        recent_events: 256,
    },
    max_delay_secs: 300,
};

fn topic(text: &str) -> Topic {
    Topic::parse(text).expect("a valid literal")
}

/// Routing an event of one match followed by 10 clients, while `unrelated` other clients follow
/// other matches of the same competition and sport: the cost must stay flat as `unrelated` grows.
#[divan::bench(args = [0, 10_000, 100_000])]
fn route_with_unrelated_subscribers(bencher: divan::Bencher, unrelated: usize) {
    let mut routes = Routes::default();
    let mailbox = Arc::new(Mailbox::new(ROOMY));
    let mut next_conn = 0;
    let mut add = |routes: &mut Routes, subscription: Topic| {
        let conn = ConnId(next_conn);
        next_conn += 1;
        routes.connect(conn, mailbox.clone());
        routes
            .subscribe(conn, &[subscription], 64)
            .expect("within the topic limit");
    };
    for _ in 0..10 {
        add(&mut routes, topic(MATCH));
    }
    for index in 0..unrelated {
        add(
            &mut routes,
            topic(&format!("football/premier-league/m{}", index % 1000)),
        );
    }
    let event_topic = topic(MATCH);
    bencher.bench_local(|| routes.recipients(divan::black_box(&event_topic)).count());
}

/// `Hub::publish` of one goal to `recipients` clients of one match: applying it, serialising it
/// once, and pushing the shared frame into every mailbox (each push takes the mailbox's lock and
/// wakes its session). This is the per-event work of scenario S2.
#[divan::bench(args = [100, 1_000, 10_000])]
fn hub_publish_fanout(bencher: divan::Bencher, recipients: usize) {
    let mut hub = Hub::new(HUB_LIMITS, None);
    let mailboxes: Vec<Arc<Mailbox>> = (0..recipients)
        .map(|_| Arc::new(Mailbox::new(ROOMY)))
        .collect();
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let conn = ConnId(index as u64);
        hub.handle(Command::Connect {
            conn,
            mailbox: mailbox.clone(),
        });
        hub.handle(Command::Subscribe {
            conn,
            topics: vec![topic(MATCH)],
            resume: Default::default(),
            delay_secs: None,
        });
    }
    let hub = RefCell::new(hub);
    let next_seq = Cell::new(1);
    let mut drained: Vec<Outbound> = Vec::new();
    bencher
        .with_inputs(|| {
            // Emptying the mailboxes here keeps them as short as a reading client's, outside
            // the timed part.
            for mailbox in &mailboxes {
                mailbox.drain_into(&mut drained);
                drained.clear();
            }
            let seq = next_seq.get();
            next_seq.set(seq + 1);
            InboundEvent {
                event: ScoreEvent {
                    ts_ms: 1_740_841_380_000,
                    ..event(MATCH, seq, goal(Side::Home))
                },
                received_at: Instant::now(),
            }
        })
        .bench_local_values(|inbound| {
            hub.borrow_mut()
                .publish(inbound)
                .expect("the next seq applies")
        });
}

/// A fan subscribing to a match in play (60 events: the teams, goals by named players): the
/// hub's whole answer, from the request to the `subscribed` frame in the fan's mailbox, with
/// the match's snapshot in it. This is the per-client work of a reconnect storm into a final.
#[divan::bench]
fn hub_subscribe_to_a_match_in_play(bencher: divan::Bencher) {
    let mut hub = Hub::new(HUB_LIMITS, None);
    let received_at = Instant::now();
    for seq in 1..=60 {
        let kind = match seq {
            1 => scoreline_protocol::test_support::arsenal_chelsea(),
            _ if seq % 2 == 0 => {
                scoreline_protocol::test_support::goal_by(Side::Home, &format!("Player {seq}"))
            }
            _ => goal(Side::Away),
        };
        hub.publish(InboundEvent {
            event: event(MATCH, seq, kind),
            received_at,
        })
        .expect("the next seq applies");
    }
    let mailbox = Arc::new(Mailbox::new(ROOMY));
    let hub = RefCell::new(hub);
    let next_conn = Cell::new(0);
    let mut drained: Vec<Outbound> = Vec::new();
    bencher
        .with_inputs(|| {
            mailbox.drain_into(&mut drained);
            drained.clear();
            let conn = ConnId(next_conn.get());
            next_conn.set(next_conn.get() + 1);
            hub.borrow_mut().handle(Command::Connect {
                conn,
                mailbox: mailbox.clone(),
            });
            conn
        })
        .bench_local_values(|conn| {
            hub.borrow_mut().handle(Command::Subscribe {
                conn,
                topics: vec![topic(MATCH)],
                resume: Default::default(),
                delay_secs: None,
            })
        });
}
