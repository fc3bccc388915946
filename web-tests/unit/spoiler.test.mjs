// The spoiler delay ("Sync with my stream"): what the page sends when the fan changes it and
// when it (re)connects, how a reply at another delay replaces the board even with older
// snapshots, and how the choice is kept. Plain values in, actions out; no socket.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Session } from "../../service/web/js/session.js";
import {
  STORAGE_KEY,
  clampDelaySecs,
  delayChoices,
  loadDelaySecs,
  parseDelaySecs,
  saveDelaySecs,
} from "../../service/web/js/spoiler.js";

const TOPIC = "football/pl/ars-che";
const OTHER = "football/pl/liv-eve";
const ev = (seq, body, extra = {}) => ({ type: "event", match: TOPIC, epoch: 5, seq, ts_ms: 1_000 * seq, ...extra, ...body });
const snapshot = (seq, score = { home: 0, away: 0 }, extra = {}) => ({
  match: TOPIC, sport: "football", epoch: 5, seq, critical_seq: seq, home: { name: "Arsenal", code: "ARS" }, away: { name: "Chelsea", code: "CHE" },
  status: "live", period: 1, score, updated_ms: seq * 1_000, ...extra,
});
const sent = (session) => session.takeActions().filter((a) => a.type === "send").map((a) => a.message);
const subscribes = (session) => sent(session).filter((m) => m.type === "subscribe");
const frame = (session, message, now = 10) => session.receiveText(JSON.stringify(message), now);
const welcome = (maxDelaySecs) => ({
  type: "welcome", protocol: 1, server: "scoreline/0.1.0", heartbeat_secs: 15, idle_timeout_secs: 45,
  limits: { max_topics: 64, max_frame_bytes: 16384, max_requests_per_sec: 20, max_snapshots: 100, ...(maxDelaySecs === undefined ? {} : { max_delay_secs: maxDelaySecs }) },
});

/** A session connected to a server allowing `maxDelaySecs`, holding TOPIC at seq 8 (2-0), live. */
function connected(options = {}) {
  const maxDelaySecs = "maxDelaySecs" in options ? options.maxDelaySecs : 300;
  const delaySecs = options.delaySecs ?? 0;
  const session = new Session({ random: () => 0.5, sports: ["football"], delaySecs });
  session.start(0);
  session.opened(1);
  frame(session, welcome(maxDelaySecs));
  const reply = { type: "subscribed", topics: ["football"], snapshots: [snapshot(8, { home: 2, away: 0 })], omitted: 0 };
  if (session.effectiveDelaySecs() > 0) reply.delay_secs = session.effectiveDelaySecs();
  frame(session, reply);
  session.takeActions();
  session.takeNotices();
  return session;
}

/** Drops the connection and opens a new one (the backoff skipped). */
function reconnect(session, nowMs = 1_000) {
  session.lost(nowMs, "closed");
  session.start(nowMs + 1);
  session.opened(nowMs + 2);
}

test("choosing a delay sends one subscribe with every topic and delay_secs; the same choice sends nothing", () => {
  const session = connected();
  session.watch(TOPIC);
  sent(session);
  session.setDelay(40, 100);
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: ["football", TOPIC], delay_secs: 40 }]);
  session.setDelay(40, 110);
  assert.deepEqual(sent(session), [], "an unchanged delay asks nothing");
  // Back to live says delay_secs 0 out loud: without it the connection would keep 40.
  session.setDelay(0, 120);
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: ["football", TOPIC], delay_secs: 0 }]);
});

test("a delay above the server's limit is asked for at the limit; no delay at all from a server without one", () => {
  const capped = connected({ maxDelaySecs: 60 });
  capped.setDelay(90, 100);
  assert.deepEqual(subscribes(capped), [{ type: "subscribe", topics: ["football"], delay_secs: 60 }]);
  assert.equal(capped.delaySecs, 90, "the fan's choice is kept for a server that allows more");

  for (const max of [0, undefined]) {
    const none = connected({ maxDelaySecs: max });
    assert.equal(none.delayOffered, false);
    none.setDelay(40, 100);
    assert.deepEqual(subscribes(none), [], `max_delay_secs ${max}: nothing to ask`);
  }
});

test("a reply at a longer delay replaces the board with its older snapshots, and the goal badge goes", () => {
  const session = connected();
  frame(session, ev(9, { kind: "goal", side: "home", player: "Saka" }));
  const tracked = session.board.matches.get(TOPIC);
  assert.ok(tracked.highlight, "the live goal is highlighted");
  assert.equal(session.takeNotices()[0].kind, "goal");
  session.setDelay(40, 100);
  sent(session);
  // Events already on their way at the old delay still apply until the reply comes.
  frame(session, ev(10, { kind: "clock", running: true }));
  assert.equal(tracked.snapshot.seq, 10);
  frame(session, { type: "subscribed", topics: ["football"], delay_secs: 40, snapshots: [snapshot(6, { home: 1, away: 0 })], omitted: 0 });
  assert.equal(session.board.matches.get(TOPIC), tracked, "the same match, its state replaced");
  assert.deepEqual([tracked.snapshot.seq, tracked.snapshot.score], [6, { home: 1, away: 0 }]);
  assert.equal(tracked.highlight, null, "no badge for a goal the fan has not seen yet");
  assert.deepEqual(session.takeNotices(), [], "nothing announced when going back in time");
  assert.ok(session.isFresh(tracked));
  assert.deepEqual(session.delayStatus(200), { shown: 40, pending: null, ignored: false });
  // The delayed stream carries on from there, and the goals come again in their time.
  frame(session, ev(7, { kind: "clock", running: true }));
  frame(session, ev(8, { kind: "goal", side: "home", player: "Saka" }));
  assert.deepEqual([tracked.snapshot.seq, tracked.snapshot.score], [8, { home: 2, away: 0 }]);
  assert.equal(session.takeNotices()[0].kind, "goal");
  assert.deepEqual(subscribes(session), [], "no repair asked");
});

test("at the same delay an older snapshot (a lagging instance) still does not move the board back", () => {
  const session = connected({ delaySecs: 40 });
  frame(session, { type: "subscribed", topics: [TOPIC], delay_secs: 40, snapshots: [snapshot(5)], omitted: 0 });
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 8);
  frame(session, { type: "resync", reason: "events_lost", snapshot: snapshot(7) });
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 8, "a resync at the board's own delay obeys the same rule");
});

test("a capped reply at a new delay has the matches it left out fetched again, older or not", () => {
  const session = connected();
  frame(session, { type: "subscribed", topics: [OTHER], snapshots: [{ ...snapshot(12), match: OTHER }], omitted: 0 });
  session.setDelay(30, 100);
  sent(session);
  frame(session, { type: "subscribed", topics: ["football"], delay_secs: 30, snapshots: [snapshot(4)], omitted: 1 });
  assert.deepEqual(subscribes(session), [{ type: "subscribe", topics: [OTHER] }], "the left-out match is repaired, not kept at the live delay");
  assert.equal(session.isFresh(session.board.matches.get(OTHER)), false);
  frame(session, { type: "subscribed", topics: [OTHER], delay_secs: 30, snapshots: [{ ...snapshot(9), match: OTHER }], omitted: 0 });
  assert.equal(session.board.matches.get(OTHER).snapshot.seq, 9);
  assert.ok(session.isFresh(session.board.matches.get(OTHER)));
});

test("a reconnect with a delay waits for the welcome, then subscribes with delay_secs and resume points", () => {
  const session = connected({ delaySecs: 40 });
  reconnect(session);
  const early = sent(session);
  assert.equal(early.some((m) => m.type === "subscribe"), false, "nothing live is asked for before the server's limit is known");
  frame(session, welcome(300));
  assert.deepEqual(subscribes(session), [{ type: "subscribe", topics: ["football"], delay_secs: 40, resume: { [TOPIC]: { epoch: 5, seq: 8 } } }]);
  frame(session, { type: "subscribed", topics: ["football"], delay_secs: 40, snapshots: [], resumed: [TOPIC], omitted: 0 });
  frame(session, ev(9, { kind: "goal", side: "away" }));
  const tracked = session.board.matches.get(TOPIC);
  assert.deepEqual([tracked.snapshot.seq, tracked.snapshot.score], [9, { home: 2, away: 1 }]);
  assert.ok(session.isFresh(tracked));
});

test("a live page reconnects as before: subscribe at once, no delay_secs", () => {
  const session = connected();
  reconnect(session);
  assert.deepEqual(subscribes(session), [{ type: "subscribe", topics: ["football"], resume: { [TOPIC]: { epoch: 5, seq: 8 } } }]);
});

test("a delay chosen while offline: the reconnect names it and sends no resume point from the old timeline", () => {
  const session = connected();
  session.lost(1_000, "closed");
  session.setDelay(20, 1_001);
  assert.deepEqual(subscribes(session), [], "nothing is sent while offline");
  session.start(1_002);
  session.opened(1_003);
  frame(session, welcome(300));
  assert.deepEqual(subscribes(session), [{ type: "subscribe", topics: ["football"], delay_secs: 20 }]);
  frame(session, { type: "subscribed", topics: ["football"], delay_secs: 20, snapshots: [snapshot(7)], omitted: 0 });
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 7);
});

test("a server too old to delay: the page says so instead of pretending", () => {
  const session = connected();
  session.setDelay(40, 100);
  sent(session);
  // The server answers without delay_secs: it stays live.
  frame(session, { type: "subscribed", topics: ["football"], snapshots: [snapshot(9)], omitted: 0 }, 150);
  assert.deepEqual(session.delayStatus(200), { shown: 0, pending: 40, ignored: false });
  assert.deepEqual(session.delayStatus(6_000), { shown: 0, pending: 40, ignored: true });
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 9);
});

test("a rate-limited delay change is sent again with the fan's latest choice", () => {
  const session = connected();
  session.setDelay(30, 100);
  const [first] = subscribes(session);
  session.setDelay(45, 105);
  const [second] = subscribes(session);
  frame(session, { type: "error", code: "rate_limited", message: "slow down", request: JSON.stringify(first) }, 110);
  frame(session, { type: "error", code: "rate_limited", message: "slow down", request: JSON.stringify(second) }, 110);
  session.tick(1_200);
  assert.deepEqual(subscribes(session), [
    { type: "subscribe", topics: ["football"], delay_secs: 45 },
    { type: "subscribe", topics: ["football"], delay_secs: 45 },
  ]);
});

test("how far behind the stadium is measured afresh at a new delay", () => {
  const session = connected();
  session.serverOffsetMs = 0;
  frame(session, ev(9, { kind: "clock", running: true }, { ts_ms: 9_700 }), 10_000);
  assert.equal(session.delayMs(), 300);
  session.setDelay(40, 10_100);
  frame(session, { type: "subscribed", topics: ["football"], delay_secs: 40, snapshots: [snapshot(6)], omitted: 0 }, 10_200);
  assert.equal(session.delayMs(), null);
  assert.equal(session.board.matches.get(TOPIC).delayMs, undefined);
  frame(session, ev(7, { kind: "clock", running: true }, { ts_ms: 10_000 }), 50_300);
  assert.equal(session.delayMs(), 40_300, "the chosen 40 s and the 0.3 s on the way");
});

test("the choice is parsed, capped and kept in storage", () => {
  assert.deepEqual(["40", " 12 ", "7.6", "", "-5", "abc", null, 30].map(parseDelaySecs), [40, 12, 8, null, null, null, null, 30]);
  assert.equal(clampDelaySecs(90, 60), 60);
  assert.equal(clampDelaySecs(90, null), 90);
  assert.deepEqual(delayChoices(45), [0, 10, 20, 30, 45]);
  const store = new Map();
  const storage = { getItem: (key) => store.get(key) ?? null, setItem: (key, value) => store.set(key, value) };
  assert.equal(loadDelaySecs(storage), 0);
  saveDelaySecs(storage, 45);
  assert.equal(store.get(STORAGE_KEY), "45");
  assert.equal(loadDelaySecs(storage), 45);
  assert.equal(loadDelaySecs({ getItem: () => { throw new Error("denied"); } }), 0);
  saveDelaySecs({ setItem: () => { throw new Error("full"); } }, 10);
});
