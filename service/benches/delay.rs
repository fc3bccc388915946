//! The spoiler delay's cost on the hub's thread: one housekeeping tick releasing what became due
//! to every delay group, with many matches and many groups.
//! Run with `cargo bench -p scoreline-service --bench delay`.

use std::sync::Arc;
use std::time::Instant;

use scoreline_protocol::test_support::{event, goal};
use scoreline_protocol::{EventKind, ScoreEvent, Side, Topic};
use scoreline_service::hub::{Command, Hub, HubLimits, InboundEvent};
use scoreline_service::mailbox::{Mailbox, MailboxLimits};
use scoreline_service::matches::StoreLimits;
use scoreline_service::routing::ConnId;

fn main() {
    divan::main();
}

const MATCHES: u64 = 1_000;
/// Each match's events in the window: one every 5 s over the 300 s kept.
const EVENTS_PER_MATCH: u64 = 60;
const NOW_MS: u64 = 1_800_000_000_000;

fn topic(index: u64) -> String {
    format!("football/league-{}/match-{index}", index % 20)
}

/// A hub holding `MATCHES` matches with `EVENTS_PER_MATCH` events each over the last 300 s, and
/// `groups` delays in use, each with 10 fans of one match and 10 of a whole competition.
fn busy_hub(groups: u32) -> (Hub, Vec<Arc<Mailbox>>) {
    let limits = HubLimits {
        max_topics: 64,
        max_snapshots: 100,
        store: StoreLimits {
            max_matches: 10_000,
            finished_retention_ms: 60_000,
            recent_events: 256,
        },
        max_delay_secs: 300,
    };
    let mut hub = Hub::new(limits, None);
    let start = NOW_MS - 300_000;
    for index in 0..MATCHES {
        for seq in 1..=EVENTS_PER_MATCH {
            let kind = if seq == 1 {
                EventKind::MatchStarted
            } else {
                goal(if seq % 2 == 0 { Side::Home } else { Side::Away })
            };
            // Spread over the window, each match a little apart from the others.
            let ts_ms = start + (seq - 1) * 5_000 + index;
            hub.set_now_ms(ts_ms);
            let inbound = InboundEvent {
                event: ScoreEvent {
                    ts_ms,
                    ..event(&topic(index), seq, kind)
                },
                received_at: Instant::now(),
            };
            hub.publish(inbound).expect("each event follows the last");
        }
    }
    hub.set_now_ms(NOW_MS);
    let roomy = MailboxLimits {
        max_critical: 1_000_000,
        max_frames: 1_000_000,
    };
    let mut mailboxes = Vec::new();
    let mut conn = 0;
    for delay in 1..=groups {
        for fan in 0..20 {
            let mailbox = Arc::new(Mailbox::new(roomy));
            conn += 1;
            hub.handle(Command::Connect {
                conn: ConnId(conn),
                mailbox: mailbox.clone(),
            });
            let subscription = if fan < 10 {
                topic(u64::from(delay))
            } else {
                "football/league-3".to_owned()
            };
            hub.handle(Command::Subscribe {
                conn: ConnId(conn),
                topics: vec![Topic::parse(&subscription).expect("a valid topic")],
                resume: Default::default(),
                delay_secs: Some(delay),
            });
            mailboxes.push(mailbox);
        }
    }
    (hub, mailboxes)
}

/// One housekeeping tick with `groups` delays in use (1 to `groups` s), over 1,000 matches with
/// 60 events each in the window: what the hub's thread pays every 250 ms beyond the sends that
/// are due (which cost what live fan-out costs). Each sample's tick comes 1 ms after the last, so
/// the window slides as in service, a few events coming due now and then.
#[divan::bench(args = [0, 1, 10, 100, 300])]
fn housekeeping_tick(bencher: divan::Bencher, groups: u32) {
    let (mut hub, mailboxes) = busy_hub(groups);
    let mut now = NOW_MS;
    hub.housekeeping(now);
    let mut drained = Vec::new();
    bencher.bench_local(|| {
        now += 1;
        let stored = hub.housekeeping(now);
        for mailbox in &mailboxes {
            mailbox.drain_into(&mut drained);
            drained.clear();
        }
        stored.len()
    });
}
