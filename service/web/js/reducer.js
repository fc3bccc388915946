// The match reducer, ported from protocol/src/reducer.rs: apply(snapshot, event) moves a
// snapshot forward by one event, exactly as the service does, so the page and the server agree
// on every score. It is all-or-nothing: every check runs before anything changes, and a failed
// check throws an ApplyError with the snapshot untouched. Snapshots are plain objects in their
// wire form (docs/protocol.md, "Match snapshots"). No DOM, no I/O: Node's test runner drives it.

import {
  DEFAULT_TENNIS,
  defaultPeriodSecs,
  leader,
  opponent,
  periodStartSecs,
  setsToWin,
  setWinner,
  sportOf,
  tiebreakAtGames,
  tiebreakPoints,
} from "./sport.js";

/** How many key events a snapshot keeps (TIMELINE_CAP). */
export const TIMELINE_CAP = 256;
/** How many distinct statistics a snapshot keeps (STATS_CAP). */
export const STATS_CAP = 32;
/** The highest period number accepted (MAX_PERIOD). */
export const MAX_PERIOD = 20;

/** The envelope fields of an event; everything else is its body (`kind` and its fields). */
const ENVELOPE = new Set(["type", "match", "epoch", "seq", "ts_ms", "clock_secs", "prev_critical_seq"]);

/** Kinds the reducer knows. A newer server may send others; the caller repairs from a snapshot. */
const KINDS = new Set([
  "match_scheduled", "match_started", "period_started", "period_ended", "goal", "shootout_kick",
  "points", "point", "card", "substitution", "status_changed", "clock", "stat", "match_ended",
  "correction",
]);

/** Why an event could not be applied; `code` names the case as ApplyError does in Rust. */
export class ApplyError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ApplyError";
    this.code = code;
  }
}

/** Whether an event must reach every subscriber in order (anything but `clock` and `stat`). */
export function isCritical(kind) {
  return kind !== "clock" && kind !== "stat";
}

/** Whether a status means nothing more will happen. */
export function isOver(status) {
  return status === "finished" || status === "abandoned" || status === "postponed";
}

/** Whether a match is under way: live, at a break or suspended. */
export function isInProgress(status) {
  return status === "live" || status === "break" || status === "suspended";
}

/** The state of a match nothing is known about yet. */
export function newSnapshot(topic) {
  return {
    match: topic,
    sport: sportOf(topic.split("/")[0]),
    epoch: 0,
    seq: 0,
    critical_seq: 0,
    home: { name: "" },
    away: { name: "" },
    kickoff_ms: null,
    competition: null,
    venue: null,
    period_secs: null,
    tennis: null,
    status: "scheduled",
    period: 0,
    clock: null,
    score: { home: 0, away: 0 },
    periods: [],
    game: null,
    shootout: null,
    cards: { home: { yellow: 0, red: 0 }, away: { yellow: 0, red: 0 } },
    stats: {},
    winner: null,
    timeline: [],
    updated_ms: 0,
    stale: false,
  };
}

/**
 * A snapshot as received, with every field the wire form may leave out filled in, so the rest
 * of the page never checks for absence. The input is not modified.
 */
export function normalizeSnapshot(wire) {
  const base = newSnapshot(wire.match);
  const snapshot = { ...base, ...structuredClone(wire) };
  for (const key of Object.keys(base)) {
    if (snapshot[key] === undefined) snapshot[key] = base[key];
  }
  snapshot.sport = wire.sport ?? base.sport;
  snapshot.cards = {
    home: { yellow: 0, red: 0, ...(wire.cards?.home ?? {}) },
    away: { yellow: 0, red: 0, ...(wire.cards?.away ?? {}) },
  };
  snapshot.game = wire.game ? { home: 0, away: 0, tiebreak: false, ...wire.game } : null;
  snapshot.timeline = (snapshot.timeline ?? []).map((entry) => ({
    voided: false,
    amended: false,
    ...entry,
  }));
  snapshot.stale = wire.stale === true;
  return snapshot;
}

/** The body of an event: its `kind` and the kind's own fields. */
export function eventBody(event) {
  const body = {};
  for (const [key, value] of Object.entries(event)) {
    if (!ENVELOPE.has(key)) body[key] = value;
  }
  return body;
}

/** The clock reading at `nowMs`: extrapolated while running, frozen otherwise. */
export function clockSecsAt(clock, nowMs) {
  if (!clock.running) return clock.secs;
  return clock.secs + Math.floor(Math.max(0, nowMs - clock.at_ms) / 1000);
}

/**
 * Applies one event to a snapshot (mutating it) and returns `{missed, skipped}`: the seq range
 * [from, to) skipped before this event that may have held critical events (`missed`, the caller
 * should repair), or that the event's `prev_critical_seq` proves held only clock/stat readings
 * (`skipped`, harmless). Throws ApplyError, leaving the snapshot untouched, when the event does
 * not belong: `wrong_match`, `not_newer`, `stale_epoch`, `epoch_changed`, `unknown_kind`,
 * `wrong_sport`, `invalid_period`, `invalid_points`, `match_over`, `unknown_correction_target`,
 * `not_correctable`, `already_voided`, `too_many_stats`.
 */
export function apply(snapshot, event) {
  checkEnvelope(snapshot, event);
  const body = eventBody(event);
  checkKind(snapshot, body);

  const gap = event.seq > snapshot.seq + 1 ? [snapshot.seq + 1, event.seq] : null;
  const previous = event.prev_critical_seq;
  const harmless = previous !== undefined && previous !== null && previous <= snapshot.seq && snapshot.seq > 0;

  if (snapshot.seq === 0) snapshot.epoch = event.epoch ?? 0;
  snapshot.seq = event.seq;
  if (isCritical(body.kind)) snapshot.critical_seq = event.seq;
  snapshot.updated_ms = Math.max(snapshot.updated_ms, event.ts_ms);
  if (event.clock_secs !== undefined && event.clock_secs !== null) {
    snapshot.clock = {
      secs: event.clock_secs,
      running: snapshot.clock?.running ?? false,
      at_ms: event.ts_ms,
    };
  }
  if (change(snapshot, event, body)) {
    if (snapshot.timeline.length === TIMELINE_CAP) snapshot.timeline.shift();
    const entry = { seq: event.seq, ts_ms: event.ts_ms, in_period: snapshot.period };
    if (event.clock_secs !== undefined && event.clock_secs !== null) entry.clock_secs = event.clock_secs;
    snapshot.timeline.push({ ...entry, ...structuredClone(body), voided: false, amended: false });
  }
  return harmless ? { missed: null, skipped: gap } : { missed: gap, skipped: null };
}

function checkEnvelope(snapshot, event) {
  if (event.match !== snapshot.match) {
    throw new ApplyError("wrong_match", `event for ${event.match} applied to ${snapshot.match}`);
  }
  const epoch = event.epoch ?? 0;
  if (snapshot.seq > 0) {
    if (epoch < snapshot.epoch) {
      throw new ApplyError("stale_epoch", `epoch ${epoch} is older than ${snapshot.epoch}`);
    }
    if (epoch > snapshot.epoch) {
      throw new ApplyError("epoch_changed", `epoch changed from ${snapshot.epoch} to ${epoch}`);
    }
  }
  if (!(event.seq > snapshot.seq)) {
    throw new ApplyError("not_newer", `seq ${event.seq} is not after ${snapshot.seq}`);
  }
}

function scoring(kind) {
  return kind === "goal" || kind === "shootout_kick" || kind === "points" || kind === "point";
}

function checkKind(snapshot, body) {
  checkValues(snapshot.sport, body);
  if (scoring(body.kind) && (isOver(snapshot.status) || tennisDecided(snapshot))) {
    throw new ApplyError("match_over", `the match is over; no more ${body.kind} events`);
  }
  if (body.kind === "stat") {
    const names = Object.keys(snapshot.stats);
    if (names.length >= STATS_CAP && !names.includes(body.name)) {
      throw new ApplyError("too_many_stats", `too many distinct statistics (at most ${STATS_CAP})`);
    }
  }
  if (body.kind === "correction") {
    const entry = snapshot.timeline.find((candidate) => candidate.seq === body.corrects);
    if (!entry) {
      throw new ApplyError("unknown_correction_target", `correction names seq ${body.corrects}, not in the timeline`);
    }
    if (entry.voided) throw new ApplyError("already_voided", `seq ${body.corrects} was already voided`);
    if (!isCorrectable(entry.kind)) throw new ApplyError("not_correctable", `a ${entry.kind} event cannot be corrected`);
    if (body.replacement) {
      if (!isCorrectable(body.replacement.kind)) {
        throw new ApplyError("not_correctable", `a ${body.replacement.kind} event cannot be corrected`);
      }
      checkValues(snapshot.sport, body.replacement);
    }
  }
}

/** Whether the event belongs in this sport and its numbers are in range, whatever the state. */
function checkValues(sport, body) {
  if (!KINDS.has(body.kind)) throw new ApplyError("unknown_kind", `unknown event kind ${body.kind}`);
  let allowed = true;
  if (body.kind === "goal" || body.kind === "shootout_kick" || body.kind === "card") {
    allowed = sport === "football" || sport === "other";
  } else if (body.kind === "points") {
    allowed = sport === "basketball" || sport === "other";
  } else if (body.kind === "point") {
    allowed = sport === "tennis";
  }
  if (!allowed) throw new ApplyError("wrong_sport", `a ${body.kind} event does not belong in ${sport}`);
  if ((body.kind === "period_started" || body.kind === "period_ended") && !(body.period >= 1 && body.period <= MAX_PERIOD)) {
    throw new ApplyError("invalid_period", `period ${body.period} is out of range 1..=${MAX_PERIOD}`);
  }
  if (body.kind === "points" && !(body.points >= 1 && body.points <= 3)) {
    throw new ApplyError("invalid_points", `a scoring play is worth 1, 2 or 3 points, not ${body.points}`);
  }
}

/** Events whose effect can be undone exactly, so a correction can amend them (not tennis points). */
function isCorrectable(kind) {
  return kind === "goal" || kind === "shootout_kick" || kind === "points" || kind === "card" || kind === "substitution";
}

function tennisFormat(snapshot) {
  return snapshot.tennis ?? DEFAULT_TENNIS;
}

function tennisDecided(snapshot) {
  if (snapshot.sport !== "tennis") return false;
  const needed = setsToWin(tennisFormat(snapshot));
  return snapshot.score.home >= needed || snapshot.score.away >= needed;
}

/** Applies the event's change; returns whether it belongs in the timeline. */
function change(snapshot, event, body) {
  switch (body.kind) {
    case "match_scheduled":
      snapshot.home = structuredClone(body.home);
      snapshot.away = structuredClone(body.away);
      snapshot.kickoff_ms = body.kickoff_ms;
      snapshot.competition = body.competition ?? null;
      snapshot.venue = body.venue ?? null;
      snapshot.period_secs = body.period_secs ?? null;
      snapshot.tennis = body.tennis ? { final_set: "tiebreak_to10", ...body.tennis } : null;
      return false;
    case "match_started":
      snapshot.status = "live";
      return true;
    case "period_started": {
      snapshot.status = "live";
      snapshot.period = body.period;
      periodScore(snapshot, body.period);
      if (defaultPeriodSecs(snapshot.sport) !== null) {
        const secs = event.clock_secs ?? periodStartSecs(snapshot.sport, body.period);
        snapshot.clock = { secs, running: true, at_ms: event.ts_ms };
      }
      return true;
    }
    case "period_ended":
      snapshot.status = "break";
      stopClock(snapshot, event.ts_ms);
      return true;
    case "point":
      return tennisPoint(snapshot, body.side);
    case "goal":
    case "shootout_kick":
    case "points":
    case "card":
    case "substitution":
      if (snapshot.status === "scheduled") snapshot.status = "live";
      credit(snapshot, body, snapshot.period, true);
      return true;
    case "status_changed":
      snapshot.status = body.status;
      if (body.status !== "live") stopClock(snapshot, event.ts_ms);
      if (body.status === "finished") snapshot.winner = derivedWinner(snapshot);
      return true;
    case "clock": {
      const secs = event.clock_secs ?? (snapshot.clock ? clockSecsAt(snapshot.clock, event.ts_ms) : 0);
      snapshot.clock = { secs, running: body.running, at_ms: event.ts_ms };
      return false;
    }
    case "stat":
      snapshot.stats[body.name] = { home: body.home, away: body.away };
      return false;
    case "match_ended":
      snapshot.status = "finished";
      stopClock(snapshot, event.ts_ms);
      snapshot.game = null;
      snapshot.winner = body.winner ?? derivedWinner(snapshot);
      return true;
    case "correction":
      correct(snapshot, body.corrects, body.replacement ?? null);
      return true;
    default:
      return false;
  }
}

function stopClock(snapshot, atMs) {
  const clock = snapshot.clock;
  if (clock && clock.running) {
    snapshot.clock = { secs: clockSecsAt(clock, atMs), running: false, at_ms: atMs };
  }
}

/** The score entry for `period`, created if missing; period 0 counts in period 1. */
function periodScore(snapshot, period) {
  const number = Math.max(period, 1);
  let entry = snapshot.periods.find((candidate) => candidate.period === number);
  if (!entry) {
    entry = { period: number, home: 0, away: 0 };
    snapshot.periods.push(entry);
    snapshot.periods.sort((a, b) => a.period - b.period);
  }
  return entry;
}

function add(counts, side, amount, adding) {
  counts[side] = adding ? counts[side] + amount : Math.max(0, counts[side] - amount);
}

/** Adds (or, for a correction, removes) the effect of a correctable event scored in `period`. */
function credit(snapshot, body, period, adding) {
  switch (body.kind) {
    case "goal":
      add(snapshot.score, body.side, 1, adding);
      add(periodScore(snapshot, period), body.side, 1, adding);
      break;
    case "points":
      add(snapshot.score, body.side, body.points, adding);
      add(periodScore(snapshot, period), body.side, body.points, adding);
      break;
    case "shootout_kick":
      snapshot.shootout ??= { home: 0, away: 0 };
      add(snapshot.shootout, body.side, body.scored ? 1 : 0, adding);
      break;
    case "card": {
      const cards = snapshot.cards[body.side];
      if (body.card === "yellow") add(cards, "yellow", 1, adding);
      else if (body.card === "second_yellow") {
        add(cards, "yellow", 1, adding);
        add(cards, "red", 1, adding);
      } else if (body.card === "red") add(cards, "red", 1, adding);
      break;
    }
    default:
      break;
  }
}

/** Undoes the corrected event's effect and applies its replacement in the same period. */
function correct(snapshot, corrects, replacement) {
  const entry = snapshot.timeline.find((candidate) => candidate.seq === corrects);
  if (!entry) return;
  credit(snapshot, entry, entry.in_period, false);
  if (replacement) {
    credit(snapshot, replacement, entry.in_period, true);
    for (const key of Object.keys(entry)) {
      if (!["seq", "ts_ms", "in_period", "clock_secs", "voided", "amended"].includes(key)) delete entry[key];
    }
    Object.assign(entry, structuredClone(replacement));
    entry.amended = true;
  } else {
    entry.voided = true;
  }
  if (snapshot.status === "finished") snapshot.winner = derivedWinner(snapshot);
}

/** The winner as the score tells it: goals then shoot-out, points, or sets. */
function derivedWinner(snapshot) {
  return leader(snapshot.score) ?? (snapshot.shootout ? leader(snapshot.shootout) : null);
}

/** Scores one tennis point: the game, then the set, then the match. True when it won a game. */
function tennisPoint(snapshot, side) {
  snapshot.status = "live";
  const format = tennisFormat(snapshot);
  const setOver = (set) => set.tiebreak != null || setWinner(format, set.period, set) !== null;
  const last = snapshot.periods.at(-1);
  if (!last || setOver(last)) {
    const number = last ? Math.min(last.period + 1, 255) : 1;
    snapshot.periods.push({ period: number, home: 0, away: 0 });
    snapshot.period = number;
  }
  const set = snapshot.periods.at(-1);
  const setNumber = set.period;
  const game = snapshot.game ? { ...snapshot.game } : { home: 0, away: 0, tiebreak: false };
  game[side] += 1;
  const mine = game[side];
  const theirs = game[opponent(side)];
  const target = game.tiebreak ? tiebreakPoints(format, setNumber) : 4;
  if (mine < target || mine < theirs + 2) {
    snapshot.game = game;
    return false;
  }
  snapshot.game = null;
  set[side] += 1;
  if (game.tiebreak) set.tiebreak = { home: game.home, away: game.away };
  const at = tiebreakAtGames(format, setNumber);
  if (setWinner(format, setNumber, set) === side) {
    snapshot.score[side] += 1;
  } else if (at !== null && set.home === at && set.away === at) {
    snapshot.game = { home: 0, away: 0, tiebreak: true };
  }
  return true;
}
