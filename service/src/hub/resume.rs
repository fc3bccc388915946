//! Clients that reconnect with resume points get exactly the events they missed: from the
//! match's recent frames in memory, else from its Redis history (their live frames of that match
//! wait meanwhile, bounded), else an explicit `resync` saying why.

use std::time::Instant;

use scoreline_protocol::{MatchSnapshot, ResumePoint, ResyncReason, ScoreEvent};

use super::recovery::{BackfillError, BackfillRequest, last_of_run};
use super::{Hub, event_frame};
use crate::history::RecentEvents;
use crate::mailbox::Outbound;
use crate::routing::ConnId;
use crate::websocket::TextFrame;

/// A client catching up on one match from the Redis history.
#[derive(Debug)]
pub(super) struct Resuming {
    /// Live frames of the match that arrived meanwhile.
    pub(super) waiting: Vec<Outbound>,
    pub(super) since: Instant,
}

/// What a client resuming a match from `point` gets.
#[derive(Debug, PartialEq)]
pub(super) enum Resume {
    /// It has every event already.
    UpToDate,
    /// Exactly these frames, in order.
    Replay(Vec<TextFrame>),
    /// A fresh snapshot, because continuity cannot be proven.
    Resync(ResyncReason),
}

pub(super) fn resume_from(
    point: ResumePoint,
    snapshot: &MatchSnapshot,
    recent: &RecentEvents,
) -> Resume {
    if point.epoch != snapshot.epoch {
        return Resume::Resync(ResyncReason::EpochChanged);
    }
    if point.seq == snapshot.seq {
        return Resume::UpToDate;
    }
    if point.seq > snapshot.seq {
        return Resume::Resync(ResyncReason::UnknownPosition);
    }
    match recent.after(point.seq) {
        Some(frames) => Resume::Replay(frames.cloned().collect()),
        None => Resume::Resync(ResyncReason::HistoryTrimmed),
    }
}

impl Hub {
    /// Sends a resuming client the events read for it, then the live ones that waited; or, when
    /// the history no longer has them all, a resync.
    pub(super) fn resumed_from_history(
        &mut self,
        conn: ConnId,
        request: &BackfillRequest,
        until_seq: u64,
        events: Result<Vec<ScoreEvent>, BackfillError>,
    ) {
        let Some(catching_up) = self
            .resuming
            .get_mut(&conn)
            .and_then(|matches| matches.remove(&request.topic))
        else {
            return;
        };
        let wanted: Vec<ScoreEvent> = events
            .unwrap_or_default()
            .into_iter()
            .filter(|event| event.epoch == request.epoch && event.seq <= until_seq)
            .collect();
        let seqs = wanted.iter().map(|event| event.seq);
        let complete = last_of_run(seqs, request.after_seq + 1) == Some(until_seq);
        if complete {
            for event in &wanted {
                self.push_to(conn, Outbound::critical(event_frame(event)));
            }
            for frame in catching_up.waiting {
                self.push_to(conn, frame);
            }
        } else {
            self.resync_one(conn, &request.topic, ResyncReason::HistoryTrimmed);
        }
    }
}
