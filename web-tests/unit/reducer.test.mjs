// The page's reducer against the recorded matches (each must end at its header's result, as the
// Rust reducer's validator checks) and against the rules the Rust tests pin.

import assert from "node:assert/strict";
import { test } from "node:test";

import { apply, ApplyError, newSnapshot, normalizeSnapshot } from "../../service/web/js/reducer.js";
import { fixtureFiles, readFixture } from "./fixtures.mjs";

function replay(events) {
  const snapshot = newSnapshot(events[0].match);
  for (const event of events) {
    const applied = apply(snapshot, event);
    assert.equal(applied.missed, null, `seq ${event.seq} left a gap`);
  }
  return snapshot;
}

for (const path of fixtureFiles()) {
  test(`every fixture ends at its recorded result: ${path.split("fixtures/")[1]}`, () => {
    const { header, events } = readFixture(path);
    const snapshot = replay(events);
    const result = header.result;
    assert.equal(snapshot.status, result.status);
    assert.deepEqual(snapshot.score, result.score);
    assert.equal(snapshot.winner, result.winner ?? null);
    if (result.shootout) assert.deepEqual(snapshot.shootout, result.shootout);
    if (result.periods) {
      assert.deepEqual(
        snapshot.periods.map(({ period, home, away, tiebreak }) => (tiebreak ? { period, home, away, tiebreak } : { period, home, away })),
        result.periods,
      );
    }
    if (result.cards) assert.deepEqual(snapshot.cards, result.cards);
    assert.equal(snapshot.seq, events.length);
  });
}

const TOPIC = "football/pl/ars-che";
const event = (seq, body, extra = {}) => ({ match: TOPIC, epoch: 7, seq, ts_ms: seq * 60_000, ...extra, ...body });

test("a goal ruled out by a correction comes off the score and stays in the timeline, voided", () => {
  const snapshot = replay([
    event(1, { kind: "match_started" }),
    event(2, { kind: "period_started", period: 1 }),
    event(3, { kind: "goal", side: "home", player: "Saka" }, { clock_secs: 600 }),
    event(4, { kind: "correction", corrects: 3 }),
    event(5, { kind: "goal", side: "away", player: "Palmer" }),
    event(6, { kind: "correction", corrects: 5, replacement: { kind: "goal", side: "away", player: "Jackson" } }),
    event(7, { kind: "match_ended" }),
  ]);
  assert.deepEqual(snapshot.score, { home: 0, away: 1 });
  assert.deepEqual(snapshot.periods, [{ period: 1, home: 0, away: 1 }]);
  const goals = snapshot.timeline.filter((entry) => entry.kind === "goal");
  assert.equal(goals[0].voided, true);
  assert.equal(goals[1].player, "Jackson");
  assert.equal(goals[1].amended, true);
  assert.equal(snapshot.winner, "away");
  assert.throws(() => apply(snapshot, event(8, { kind: "correction", corrects: 3 })), (error) => error.code === "already_voided");
});

test("a seq skip that prev_critical_seq proves harmless is skipped, not missed", () => {
  const snapshot = replay([event(1, { kind: "match_started" }), event(2, { kind: "period_started", period: 1 })]);
  const harmless = apply(snapshot, event(5, { kind: "goal", side: "home" }, { prev_critical_seq: 2 }));
  assert.deepEqual(harmless, { missed: null, skipped: [3, 5] });
  const lost = apply(snapshot, event(9, { kind: "goal", side: "home" }, { prev_critical_seq: 7 }));
  assert.deepEqual(lost, { missed: [6, 9], skipped: null });
  const unstamped = apply(snapshot, event(11, { kind: "clock", running: true }));
  assert.deepEqual(unstamped, { missed: [10, 11], skipped: null });
  assert.equal(snapshot.critical_seq, 9);
});

test("events that do not belong leave the snapshot untouched", () => {
  const snapshot = replay([event(1, { kind: "match_started" })]);
  const before = structuredClone(snapshot);
  const refusals = [
    [event(1, { kind: "goal", side: "home" }), "not_newer"],
    [{ ...event(2, { kind: "goal", side: "home" }), epoch: 8 }, "epoch_changed"],
    [{ ...event(2, { kind: "goal", side: "home" }), epoch: 6 }, "stale_epoch"],
    [event(2, { kind: "point", side: "home" }), "wrong_sport"],
    [event(2, { kind: "period_started", period: 21 }), "invalid_period"],
    [event(2, { kind: "correction", corrects: 99 }), "unknown_correction_target"],
    [event(2, { kind: "teleport" }), "unknown_kind"],
    [{ ...event(2, { kind: "goal", side: "home" }), match: "football/pl/other" }, "wrong_match"],
  ];
  for (const [bad, code] of refusals) {
    assert.throws(() => apply(snapshot, bad), (error) => error instanceof ApplyError && error.code === code, code);
    assert.deepEqual(snapshot, before, code);
  }
});

test("tennis: games, a tie-break and the match follow from points", () => {
  const topic = "tennis/open/a-b";
  let seq = 0;
  const next = (body) => ({ match: topic, epoch: 1, seq: ++seq, ts_ms: seq, ...body });
  const snapshot = newSnapshot(topic);
  apply(snapshot, next({ kind: "match_scheduled", home: { name: "A" }, away: { name: "B" }, kickoff_ms: 0, tennis: { best_of: 3, final_set: "tiebreak_to10" } }));
  const game = (side) => {
    for (let i = 0; i < 4; i += 1) apply(snapshot, next({ kind: "point", side }));
  };
  // Six games all, then a 7-5 tie-break to the away player.
  for (let i = 0; i < 6; i += 1) {
    game("home");
    game("away");
  }
  assert.deepEqual(snapshot.game, { home: 0, away: 0, tiebreak: true });
  for (let i = 0; i < 5; i += 1) {
    apply(snapshot, next({ kind: "point", side: "home" }));
    apply(snapshot, next({ kind: "point", side: "away" }));
  }
  apply(snapshot, next({ kind: "point", side: "away" }));
  assert.deepEqual(snapshot.game, { home: 5, away: 6, tiebreak: true });
  apply(snapshot, next({ kind: "point", side: "away" }));
  assert.deepEqual(snapshot.periods[0], { period: 1, home: 6, away: 7, tiebreak: { home: 5, away: 7 } });
  assert.deepEqual(snapshot.score, { home: 0, away: 1 });
  // Deuce and advantage in the next game.
  for (let i = 0; i < 3; i += 1) {
    apply(snapshot, next({ kind: "point", side: "home" }));
    apply(snapshot, next({ kind: "point", side: "away" }));
  }
  apply(snapshot, next({ kind: "point", side: "home" }));
  assert.deepEqual(snapshot.game, { home: 4, away: 3, tiebreak: false });
  apply(snapshot, next({ kind: "point", side: "home" }));
  assert.deepEqual(snapshot.periods[1], { period: 2, home: 1, away: 0 });
  assert.equal(snapshot.period, 2);
});

test("a snapshot from the wire gets every default the reducer relies on", () => {
  const wire = { match: TOPIC, sport: "football", epoch: 3, seq: 4, home: { name: "Arsenal" }, away: { name: "Chelsea" }, status: "live", period: 1, score: { home: 1, away: 0 }, updated_ms: 5, timeline: [{ seq: 3, ts_ms: 1, in_period: 1, kind: "goal", side: "home" }] };
  const snapshot = normalizeSnapshot(wire);
  assert.deepEqual(snapshot.cards, { home: { yellow: 0, red: 0 }, away: { yellow: 0, red: 0 } });
  assert.equal(snapshot.shootout, null);
  assert.equal(snapshot.stale, false);
  assert.equal(snapshot.timeline[0].voided, false);
  apply(snapshot, event(5, { kind: "card", side: "away", card: "second_yellow" }, { epoch: 3 }));
  assert.deepEqual(snapshot.cards.away, { yellow: 1, red: 1 });
  apply(snapshot, { ...event(6, { kind: "correction", corrects: 3 }), epoch: 3 });
  assert.deepEqual(snapshot.score, { home: 0, away: 0 });
  assert.equal(wire.timeline[0].voided, undefined, "the wire object is not modified");
});
