//! Decoding server frames, tolerating one known defect of protocol version 1.
//!
//! A snapshot's timeline entry carries its own `period` and flattens its event beside it; for
//! `period_started` and `period_ended` the event has a `period` too, so the JSON object holds the
//! key twice and serde refuses it ("duplicate field `period`"). Every `subscribed` reply for a
//! match that has started would be dropped, and the fan would see nothing.
//!
//! Until the protocol renames one of the two fields, a frame the strict decoder refuses is read
//! again leniently: the timelines are taken out, the rest decoded as usual, and each timeline
//! entry rebuilt by hand. Both `period` values are equal for those two kinds (the reducer records
//! the period an event starts or ends in), so nothing is lost. Once the protocol is fixed the
//! strict path always succeeds and this fallback is never reached.

use scoreline_protocol::{EventKind, ServerMessage, TimelineEntry};
use serde_json::Value;

/// Parses one text frame into a server message, or explains why it cannot be read.
pub fn decode_server_message(text: &str) -> Result<ServerMessage, serde_json::Error> {
    match ServerMessage::from_json(text) {
        Ok(message) => Ok(message),
        Err(strict_error) => decode_leniently(text).ok_or(strict_error),
    }
}

fn decode_leniently(text: &str) -> Option<ServerMessage> {
    // `Value` keeps the last of duplicate keys instead of failing.
    let mut value: Value = serde_json::from_str(text).ok()?;
    if value.get("type")?.as_str()? != "subscribed" {
        return None;
    }
    let snapshots = value.get_mut("snapshots")?.as_array_mut()?;
    let timelines: Vec<Value> = snapshots
        .iter_mut()
        .map(|snapshot| {
            snapshot
                .as_object_mut()
                .and_then(|object| object.remove("timeline"))
                .unwrap_or(Value::Null)
        })
        .collect();
    let mut message: ServerMessage = serde_json::from_value(value).ok()?;
    if let ServerMessage::Subscribed { snapshots, .. } = &mut message {
        for (snapshot, timeline) in snapshots.iter_mut().zip(timelines) {
            snapshot.timeline = match timeline {
                Value::Array(entries) => entries
                    .into_iter()
                    .map(timeline_entry)
                    .collect::<Option<Vec<_>>>()?,
                _ => Vec::new(),
            };
        }
    }
    tracing::debug!("decoded a subscribed frame with duplicate timeline keys leniently");
    Some(message)
}

fn timeline_entry(entry: Value) -> Option<TimelineEntry> {
    let Value::Object(mut fields) = entry else {
        return None;
    };
    let mut take_u64 = |name: &str| fields.remove(name).and_then(|v| v.as_u64());
    let seq = take_u64("seq")?;
    let ts_ms = take_u64("ts_ms")?;
    let clock_secs = take_u64("clock_secs").and_then(|secs| u32::try_from(secs).ok());
    let voided = fields
        .remove("voided")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let amended = fields
        .remove("amended")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    // `period` stays in `fields` as well: the event kinds that need it read it from there.
    let period = fields
        .get("period")
        .and_then(Value::as_u64)
        .and_then(|period| u8::try_from(period).ok())?;
    let kind: EventKind = serde_json::from_value(Value::Object(fields)).ok()?;
    Some(TimelineEntry {
        seq,
        ts_ms,
        period,
        clock_secs,
        kind,
        voided,
        amended,
    })
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::{MatchSnapshot, MatchTopic, ScoreEvent, Side, Topic, apply};

    use super::*;

    fn started_match() -> MatchSnapshot {
        let topic = MatchTopic::parse("football/pl/a-b").unwrap();
        let mut snapshot = MatchSnapshot::new(topic.clone());
        let kinds = [
            EventKind::PeriodStarted { period: 1 },
            EventKind::Goal {
                side: Side::Home,
                player: Some("Saka".into()),
                own_goal: false,
                penalty: true,
            },
            EventKind::PeriodEnded { period: 1 },
        ];
        for (index, kind) in kinds.into_iter().enumerate() {
            let seq = index as u64 + 1;
            let event = ScoreEvent {
                match_topic: topic.clone(),
                epoch: 0,
                seq,
                ts_ms: seq * 1_000,
                clock_secs: Some(seq as u32 * 600),
                kind,
            };
            apply(&mut snapshot, &event).unwrap();
        }
        snapshot
    }

    #[test]
    fn a_subscribed_reply_with_period_events_in_its_timeline_is_read_whole() {
        let snapshot = started_match();
        let message = ServerMessage::Subscribed {
            topics: vec![Topic::parse("football").unwrap()],
            snapshots: vec![snapshot.clone()],
            omitted: 0,
        };
        // With protocol version 1 this text holds `"period":1` twice in two timeline entries,
        // which the strict decoder refuses; once the protocol is fixed it simply decodes.
        let text = message.to_json();
        assert_eq!(decode_server_message(&text).unwrap(), message);
    }

    #[test]
    fn frames_that_are_simply_wrong_still_fail() {
        assert!(decode_server_message("{").is_err());
        assert!(
            decode_server_message(r#"{"type":"subscribed","snapshots":[{"timeline":[]}]}"#)
                .is_err()
        );
        assert!(decode_server_message(r#"{"type":"teleport"}"#).is_err());
    }
}
