//! The replay driver: one task per match publishing its [`Plan`] on schedule, all matches at
//! once, until every match is done or the replay is cancelled.
//!
//! Timing comes from tokio's clock, measured from one start instant per round, so the schedule
//! never drifts and tests run it on a paused clock. Each task keeps the match's snapshot with the
//! protocol reducer, which is what the progress display shows.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use scoreline_protocol::{EventKind, MatchSnapshot, MatchStatus, ScoreEvent, Sport, apply};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::plan::{Pace, Plan};
use crate::publish::{History, PublishError, Publisher};

/// How a replay runs, beyond where it publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayOptions {
    /// Speed, and where to start in match time (`from_ms`: football's game clock, other sports'
    /// time since kickoff); each match converts it with [`Plan::recording_offset_ms`].
    pub pace: Pace,
    /// Start every match again when it ends, in a new epoch, until cancelled.
    pub looping: bool,
    /// Wall time between a match's end and its next round, so the final score can be seen.
    pub loop_pause: Duration,
    /// How long a match keeps retrying a broker that is down before the replay gives up.
    pub retry_for: Duration,
    /// Print every match's progress as plain lines on stderr this often, and once more at the
    /// end: for a log file or CI, where the progress bars (drawn only on a terminal) show
    /// nothing. `None` prints no lines.
    pub progress_lines_every: Option<Duration>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            pace: Pace::REAL_TIME,
            looping: false,
            loop_pause: Duration::from_secs(10),
            retry_for: Duration::from_secs(30),
            progress_lines_every: None,
        }
    }
}

/// Why a replay stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Publishing failed for good: the token or an event was rejected, or the broker stayed down
    /// longer than `retry_for`.
    #[error("{match_topic}: publishing seq {seq} failed")]
    Publish {
        /// The match being replayed.
        match_topic: String,
        /// The event that could not be published.
        seq: u64,
        /// Why.
        #[source]
        source: PublishError,
    },
    /// A match task panicked or was aborted; a bug, reported rather than hidden.
    #[error("a replay task failed: {0}")]
    Task(String),
}

/// What one match's replay did.
#[derive(Debug, Clone)]
pub struct MatchOutcome {
    /// The match as the reducer saw the last round.
    pub snapshot: MatchSnapshot,
    /// Events published over all rounds.
    pub published: u64,
    /// Rounds started (1 without `--loop`).
    pub rounds: u32,
    /// Whether it stopped because of cancellation rather than by reaching the end.
    pub cancelled: bool,
}

impl MatchOutcome {
    /// The outcome of a replay cancelled midway; its bar is left showing where the match stood.
    fn stopped(mut self, bar: &ProgressBar) -> MatchOutcome {
        self.cancelled = true;
        bar.abandon_with_message(format!("stopped · {}", describe(&self.snapshot)));
        self
    }
}

/// Replays every plan concurrently through `publisher`; returns when all are done, when
/// `cancel` fires, or at the first fatal error (which cancels the others).
pub async fn replay_all(
    plans: Vec<Plan>,
    publisher: Arc<Publisher>,
    options: ReplayOptions,
    cancel: CancellationToken,
    progress: &MultiProgress,
) -> Result<Vec<MatchOutcome>, ReplayError> {
    let mut tasks = JoinSet::new();
    let prefix_width = plans
        .iter()
        .map(|plan| plan.match_topic.as_str().chars().count())
        .max()
        .unwrap_or(0);
    let mut bars = Vec::with_capacity(plans.len());
    for (index, plan) in plans.into_iter().enumerate() {
        let bar = progress.add(match_bar(&plan, prefix_width));
        bars.push(bar.clone());
        let publisher = Arc::clone(&publisher);
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let outcome = replay_match(&plan, &publisher, options, &cancel, &bar).await;
            (index, outcome)
        });
    }
    let printer = options.progress_lines_every.map(|every| {
        let bars = bars.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                ticks.tick().await;
                for line in progress_lines(&bars) {
                    eprintln!("{line}");
                }
            }
        })
    });
    let mut outcomes = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, Ok(outcome))) => outcomes.push((index, outcome)),
            Ok((_, Err(error))) => {
                cancel.cancel();
                first_error.get_or_insert(error);
            }
            Err(join_error) => {
                cancel.cancel();
                first_error.get_or_insert(ReplayError::Task(join_error.to_string()));
            }
        }
    }
    if let Some(printer) = printer {
        printer.abort();
        // Where every match ended, so a log shows the final state too.
        for line in progress_lines(&bars) {
            eprintln!("{line}");
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
}

/// Replays one match: every event at its due time, round after round when looping.
///
/// Every round starts a new history: its first event goes out as [`History::StartNew`], so the
/// numbering script gives it a new, larger epoch and seq 1, and the rest follow as
/// [`History::Continue`]. The ways that keep the plan's numbering (plain `PUBLISH`, stdout, a
/// channel) get the replayer's own epoch instead: the wall clock in milliseconds when the round
/// starts, always above the previous round's. Either way the service resets the match instead of
/// rejecting seq 1 as a duplicate, and a second run of the replayer wins over the first.
///
/// A correction names the seq its target was published with, as the publisher answered it, so
/// it stays right even when a retry made the numbering differ from the plan's.
pub async fn replay_match(
    plan: &Plan,
    publisher: &Publisher,
    options: ReplayOptions,
    cancel: &CancellationToken,
    bar: &ProgressBar,
) -> Result<MatchOutcome, ReplayError> {
    let mut outcome = MatchOutcome {
        snapshot: MatchSnapshot::new(plan.match_topic.clone()),
        published: 0,
        rounds: 0,
        cancelled: false,
    };
    let pace = Pace {
        from_ms: plan.recording_offset_ms(options.pace.from_ms),
        ..options.pace
    };
    let mut epoch = 0;
    loop {
        outcome.rounds += 1;
        let start = Instant::now();
        let start_wall_ms = scoreline_feed::now_ms();
        epoch = start_wall_ms.max(epoch + 1);
        let kickoff_ms = start_wall_ms.saturating_sub(pace.kickoff_lead_ms());
        outcome.snapshot = MatchSnapshot::new(plan.match_topic.clone());
        bar.reset();
        // The plan's seq of each event published this round, and the seq it was published with.
        let mut published_as = std::collections::HashMap::with_capacity(plan.events.len());
        let mut confirmed: Option<(u64, u64)> = None;
        for (index, planned) in plan.events.iter().enumerate() {
            let due = start + Duration::from_millis(pace.due_ms(planned.offset_ms));
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(outcome.stopped(bar)),
                () = sleep_until(due) => {}
            }
            // Publishing time follows the same clock as the schedule, so `ts_ms` spacing is the
            // recording's spacing divided by the speed.
            let ts_ms = start_wall_ms + millis(Instant::now() - start);
            let mut event = plan.stamp(index, epoch, kickoff_ms, ts_ms);
            if let EventKind::Correction { corrects, .. } = &mut event.kind
                && let Some(seq) = published_as.get(corrects)
            {
                *corrects = *seq;
            }
            let history = if index == 0 {
                History::StartNew
            } else {
                History::Continue
            };
            let attempt = Attempt {
                event: &event,
                history,
                confirmed,
            };
            let Some(published) =
                publish_with_retry(publisher, attempt, options.retry_for, cancel, bar).await?
            else {
                return Ok(outcome.stopped(bar));
            };
            outcome.published += 1;
            published_as.insert(planned.seq, published.seq);
            confirmed = Some((published.epoch, published.seq));
            // Fixtures are validated before a replay, so the reducer accepts every event; a
            // rejection would only make the display stale, never the published stream wrong.
            let _ = apply(&mut outcome.snapshot, &published);
            bar.set_position(planned.offset_ms);
            bar.set_message(format!(
                "{} · seq {}",
                describe(&outcome.snapshot),
                published.seq
            ));
        }
        if !options.looping {
            bar.finish_with_message(describe(&outcome.snapshot));
            return Ok(outcome);
        }
        bar.set_message(format!(
            "{} · again in {}s",
            describe(&outcome.snapshot),
            options.loop_pause.as_secs()
        ));
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(outcome.stopped(bar)),
            () = sleep(options.loop_pause) => {}
        }
    }
}

/// One event to publish, and what the retry check needs to know about its round.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    /// The event as the plan numbers it.
    event: &'a ScoreEvent,
    /// Whether it starts the round's history.
    history: History,
    /// The `(epoch, seq)` of the round's last event known to be published.
    confirmed: Option<(u64, u64)>,
}

/// Publishes, retrying transient failures with backoff for up to `retry_for`, and returns the
/// event as published; `Ok(None)` when cancelled while waiting.
///
/// A failure may come after the broker took the event (Redis ran the script, then the
/// connection dropped before the answer). Before each retry the publisher therefore looks for
/// the event in the match's history ([`Publisher::find_published`]) and does not publish it
/// again when it is there. Where it cannot look (HTTP, plain `PUBLISH`, or a history lost with a
/// Redis that kept no data), delivery is at-least-once: the retry may publish the event a second
/// time, under the next seq.
async fn publish_with_retry(
    publisher: &Publisher,
    attempt: Attempt<'_>,
    retry_for: Duration,
    cancel: &CancellationToken,
    bar: &ProgressBar,
) -> Result<Option<ScoreEvent>, ReplayError> {
    let event = attempt.event;
    let mut backoff = Duration::from_millis(250);
    let give_up_at = Instant::now() + retry_for;
    let mut retrying = false;
    loop {
        // A stuck broker must not hold up a shutdown: the publish itself races the signal.
        let published = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            published = async {
                if retrying
                    && let Some(found) = publisher.find_published(event, attempt.confirmed).await
                {
                    return Ok(found);
                }
                publisher.publish(event, attempt.history).await
            } => published,
        };
        let error = match published {
            Ok(published) => return Ok(Some(published)),
            Err(error) => error,
        };
        retrying = true;
        if !error.is_transient() || Instant::now() + backoff > give_up_at {
            return Err(ReplayError::Publish {
                match_topic: event.match_topic.to_string(),
                seq: event.seq,
                source: error,
            });
        }
        bar.set_message(format!(
            "retrying in {}ms: {}",
            backoff.as_millis(),
            with_causes(&error)
        ));
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            () = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A progress bar for one match: its topic, how far through the recording, and the score. The
/// topic is padded to `prefix_width` characters so the bars line up, and never cut: topics that
/// differ only at the end (the date of a final) must stay apart.
pub fn match_bar(plan: &Plan, prefix_width: usize) -> ProgressBar {
    let bar = ProgressBar::new(plan.duration_ms().max(1));
    let style =
        ProgressStyle::with_template(&format!("{{prefix:{prefix_width}}} [{{bar:20}}] {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(plan.match_topic.to_string());
    bar
}

/// Every bar's state as one plain line each, topics padded to the longest: what a log file or CI
/// gets instead of the bars, e.g.
/// `football/world-cup/arg-fra-2022-12-18   64%  ARG 2-0 FRA · 2nd half 79' · seq 97`.
pub fn progress_lines(bars: &[ProgressBar]) -> Vec<String> {
    let width = bars
        .iter()
        .map(|bar| bar.prefix().chars().count())
        .max()
        .unwrap_or(0);
    bars.iter()
        .map(|bar| {
            let percent = bar
                .length()
                .filter(|length| *length > 0)
                .map_or(0, |length| bar.position().min(length) * 100 / length);
            let line = format!("{:width$}  {percent:>3}%  {}", bar.prefix(), bar.message());
            line.trim_end().to_owned()
        })
        .collect()
}

/// `1 match`, `2 matches`: a count with its noun in the right number.
pub fn counted(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// One line for a fan: teams, score, period and clock, e.g.
/// `ARG 3-3 FRA (4-2 pens) · Penalties · finished` or `DJO 2-1 NAD · Set 4 3-2 · 30-15`.
pub fn describe(snapshot: &MatchSnapshot) -> String {
    let home = snapshot.home.short();
    let away = snapshot.away.short();
    let mut text = format!(
        "{home} {}-{} {away}",
        snapshot.score.home, snapshot.score.away
    );
    if let Some(shootout) = snapshot.shootout {
        text.push_str(&format!(" ({}-{} pens)", shootout.home, shootout.away));
    }
    if snapshot.period > 0 {
        text.push_str(" · ");
        text.push_str(&snapshot.sport.period_name(snapshot.period));
    }
    match snapshot.sport {
        Sport::Tennis => {
            if let Some(set) = snapshot.periods.last() {
                text.push_str(&format!(" {}-{}", set.home, set.away));
            }
            if let Some(game) = snapshot.game {
                let (home, away) = (
                    game.call(scoreline_protocol::Side::Home),
                    game.call(scoreline_protocol::Side::Away),
                );
                text.push_str(&format!(" · {home}-{away}"));
            }
        }
        _ => {
            // A shoot-out has no clock; the last reading is from the end of extra time.
            let shootout = snapshot.sport == Sport::Football && snapshot.period >= 5;
            if let Some(clock) = snapshot.clock
                && snapshot.period > 0
                && !shootout
            {
                text.push(' ');
                text.push_str(&snapshot.sport.format_clock(
                    snapshot.period,
                    clock.secs,
                    snapshot.period_secs,
                ));
            }
        }
    }
    match snapshot.status {
        MatchStatus::Live => {}
        status => text.push_str(&format!(" · {status:?}").to_lowercase()),
    }
    text
}

/// An error and its causes on one line, as `anyhow` prints them with `{:#}`.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_keep_whole_topics_aligned_with_percent_and_state() {
        let long = ProgressBar::hidden();
        long.set_length(200);
        long.set_position(50);
        long.set_prefix("football/champions-league/mun-bay-1999-05-26");
        long.set_message("MUN 0-1 BAY · 2nd half 60' · seq 40");
        let short = ProgressBar::hidden();
        short.set_length(10);
        short.set_position(10);
        short.set_prefix("tennis/x/a-b");
        short.set_message("");
        assert_eq!(
            progress_lines(&[long, short]),
            vec![
                "football/champions-league/mun-bay-1999-05-26   25%  MUN 0-1 BAY · 2nd half 60' · seq 40",
                "tennis/x/a-b                                  100%",
            ]
        );
    }

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(counted(1, "match", "matches"), "1 match");
        assert_eq!(counted(0, "match", "matches"), "0 matches");
        assert_eq!(counted(2, "fixture", "fixtures"), "2 fixtures");
    }
}
