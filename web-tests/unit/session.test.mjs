// The page's session: what it sends after a (re)connect, how it repairs a gap, takes a resync,
// resumes, and ignores what it does not know. Plain values in, actions out; no socket.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Session } from "../../service/web/js/session.js";
import { backoffDelayMs, Link } from "../../service/web/js/link.js";
import { Follows, STORAGE_KEY } from "../../service/web/js/follows.js";

const TOPIC = "football/pl/ars-che";
const ev = (seq, body, extra = {}) => ({ type: "event", match: TOPIC, epoch: 5, seq, ts_ms: 1_000 * seq, ...extra, ...body });
const snapshot = (seq, score = { home: 0, away: 0 }, extra = {}) => ({
  match: TOPIC, sport: "football", epoch: 5, seq, critical_seq: seq, home: { name: "Arsenal", code: "ARS" }, away: { name: "Chelsea", code: "CHE" },
  status: "live", period: 1, score, updated_ms: seq * 1_000, ...extra,
});
const sent = (session) => session.takeActions().filter((a) => a.type === "send").map((a) => a.message);
const frame = (session, message, now = 10) => session.receiveText(JSON.stringify(message), now);

function connected() {
  const session = new Session({ random: () => 0.5, sports: ["football"] });
  session.start(0);
  session.opened(1);
  const messages = sent(session);
  assert.deepEqual(messages[0], { type: "subscribe", topics: ["football"] });
  assert.deepEqual(messages[1], { type: "list" });
  assert.equal(messages[2].type, "ping");
  frame(session, { type: "welcome", protocol: 1, server: "scoreline/0.1.0", heartbeat_secs: 15, idle_timeout_secs: 45, limits: { max_topics: 64, max_frame_bytes: 16384, max_requests_per_sec: 20, max_snapshots: 100 } });
  frame(session, { type: "subscribed", topics: ["football"], snapshots: [snapshot(3)], omitted: 0 });
  return session;
}

test("events apply in seq order; a duplicate is dropped; a goal is announced with its scorer", () => {
  const session = connected();
  frame(session, ev(4, { kind: "goal", side: "home", player: "Saka" }, { clock_secs: 1380 }));
  frame(session, ev(4, { kind: "goal", side: "home", player: "Saka" }));
  const tracked = session.board.matches.get(TOPIC);
  assert.deepEqual(tracked.snapshot.score, { home: 1, away: 0 });
  assert.equal(tracked.highlight.entry.player, "Saka");
  const notices = session.takeNotices();
  assert.equal(notices.length, 1);
  assert.equal(notices[0].kind, "goal");
  assert.ok(session.isFresh(tracked));
});

test("a gap asks for the match alone, and its snapshot ends the temporary subscription", () => {
  const session = connected();
  frame(session, ev(6, { kind: "goal", side: "away" }));
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: [TOPIC] }]);
  const tracked = session.board.matches.get(TOPIC);
  assert.equal(session.isFresh(tracked), false, "shown as possibly out of date while repairing");
  frame(session, { type: "subscribed", topics: [TOPIC], snapshots: [snapshot(6, { home: 0, away: 2 })], omitted: 0 });
  assert.deepEqual(sent(session), [{ type: "unsubscribe", topics: [TOPIC] }]);
  assert.deepEqual(tracked.snapshot.score, { home: 0, away: 2 });
  assert.ok(session.isFresh(tracked));
});

test("a skip proven harmless by prev_critical_seq needs no repair", () => {
  const session = connected();
  frame(session, ev(7, { kind: "goal", side: "home" }, { prev_critical_seq: 3 }));
  assert.deepEqual(sent(session), []);
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 7);
  frame(session, ev(9, { kind: "goal", side: "home" }, { prev_critical_seq: 8 }));
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: [TOPIC] }]);
});

test("a reconnect resumes held matches from their epoch and seq; the missed events follow", () => {
  const session = connected();
  session.lost(100, "closed");
  assert.equal(session.isFresh(session.board.matches.get(TOPIC)), false);
  assert.deepEqual(session.takeActions(), [{ type: "disconnect" }]);
  session.tick(100 + 60_000);
  assert.deepEqual(session.takeActions(), [{ type: "connect" }]);
  session.opened(60_200);
  assert.deepEqual(sent(session)[0], { type: "subscribe", topics: ["football"], resume: { [TOPIC]: { epoch: 5, seq: 3 } } });
  frame(session, { type: "subscribed", topics: ["football"], snapshots: [], omitted: 0, resumed: [TOPIC] });
  frame(session, ev(4, { kind: "goal", side: "away", player: "Palmer" }));
  const tracked = session.board.matches.get(TOPIC);
  assert.deepEqual(tracked.snapshot.score, { home: 0, away: 1 });
  assert.ok(session.isFresh(tracked));
  assert.equal(session.catchUp.resumed, 1);
});

test("a resync replaces the match whatever its reason, even one this page does not know", () => {
  const session = connected();
  frame(session, { type: "resync", reason: "history_rewritten", snapshot: snapshot(2, { home: 3, away: 3 }, { epoch: 9 }) });
  frame(session, { type: "resync", reason: "a_reason_from_the_future", snapshot: snapshot(3, { home: 4, away: 3 }, { epoch: 9 }) });
  const tracked = session.board.matches.get(TOPIC);
  assert.deepEqual([tracked.snapshot.epoch, tracked.snapshot.seq, tracked.snapshot.score.home], [9, 3, 4]);
  assert.ok(session.isFresh(tracked));
});

test("a stale snapshot is shown as possibly out of date until a fresh one replaces it", () => {
  const session = connected();
  frame(session, { type: "resync", reason: "events_lost", snapshot: snapshot(8, { home: 1, away: 0 }, { stale: true }) });
  const tracked = session.board.matches.get(TOPIC);
  assert.equal(session.isFresh(tracked), false);
  frame(session, { type: "resync", reason: "events_lost", snapshot: snapshot(9, { home: 1, away: 0 }) });
  assert.equal(session.isFresh(tracked), true);
});

test("unknown message types and unreadable frames are ignored", () => {
  const session = connected();
  frame(session, { type: "fans_watching", match: TOPIC, count: 12 });
  session.receiveText("not json", 10);
  session.receiveText("[1,2]", 10);
  assert.equal(session.ignoredFrames, 2);
  assert.equal(session.board.matches.get(TOPIC).snapshot.seq, 3);
});

test("a rate-limited repair is sent again a second later", () => {
  const session = connected();
  frame(session, ev(9, { kind: "goal", side: "home" }));
  const repair = sent(session)[0];
  frame(session, { type: "error", code: "rate_limited", message: "slow down", request: JSON.stringify(repair) }, 20);
  session.tick(500);
  assert.deepEqual(sent(session).filter((m) => m.type !== "ping"), []);
  session.tick(1_100);
  assert.deepEqual(sent(session).filter((m) => m.type !== "ping"), [repair]);
});

test("the catalogue adds the sports it shows to the subscription", () => {
  const session = connected();
  frame(session, { type: "catalogue", matches: [{ match: "curling/worlds/swe-can" }, { match: TOPIC }, { match: "BAD TOPIC/x/y" }], omitted: 0 });
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: ["curling"] }]);
  assert.deepEqual(session.topics, ["football", "curling"]);
});

test("backoff doubles to a cap with jitter in the upper half, and a dead connection is noticed", () => {
  assert.equal(backoffDelayMs(1, 0), 250);
  assert.equal(backoffDelayMs(3, 0.999), 1999);
  assert.equal(backoffDelayMs(30, 0), 15_000);
  const link = new Link(() => 0);
  link.start(0);
  link.opened(10);
  assert.deepEqual(link.tick(10), [{ type: "ping", id: 1 }]);
  assert.deepEqual(link.tick(10 + 15_000), [{ type: "disconnect" }]);
  assert.equal(link.state.name, "waiting");
});

test("follows survive a reload through storage and cover their matches", () => {
  const store = new Map();
  const storage = { getItem: (key) => store.get(key) ?? null, setItem: (key, value) => store.set(key, value) };
  const follows = new Follows(storage);
  follows.toggleTeam("football", { name: "Arsenal", code: "ARS" });
  follows.toggleCompetition("basketball/nba", "NBA");
  assert.ok(store.has(STORAGE_KEY));
  const reloaded = new Follows(storage);
  assert.ok(reloaded.coversMatch(snapshot(1)));
  assert.ok(reloaded.isCompetitionFollowed("basketball/nba"));
  reloaded.toggleTeam("football", { name: "Arsenal" });
  assert.equal(new Follows(storage).coversMatch(snapshot(1)), false);
  assert.ok(new Follows({ getItem: () => "{broken", setItem: () => { throw new Error("full"); } }).isEmpty);
});

test("how far behind the source live events arrive: a median, not counting a resume's catch-up", () => {
  const session = connected();
  // Right after connecting, events are the catch-up of a resume: not counted.
  frame(session, ev(4, { kind: "clock", running: true }, { ts_ms: 0 }), 2_000);
  assert.equal(session.delayMs(), null);
  session.serverOffsetMs = 0;
  for (const [seq, behind] of [[5, 300], [6, 400], [7, 90_000]]) {
    frame(session, ev(seq, { kind: "clock", running: true }, { ts_ms: 10_000 - behind }), 10_000);
  }
  assert.equal(session.delayMs(), 400);
  assert.equal(session.board.matches.get(TOPIC).delayMs, 90_000);
});

test("opening a match subscribes to it (to be counted watching), closing unsubscribes, and a reconnect keeps it", () => {
  const session = connected();
  session.watch(TOPIC);
  assert.deepEqual(sent(session), [{ type: "subscribe", topics: [TOPIC] }]);
  frame(session, { type: "subscribed", topics: [TOPIC], snapshots: [snapshot(3)], omitted: 0 });
  assert.deepEqual(sent(session), [], "the watch is not dropped like a repair's subscription");
  frame(session, { type: "watching", match: TOPIC, fans: 1204 });
  assert.equal(session.fans.get(TOPIC), 1204);
  session.lost(100, "closed");
  session.takeActions();
  session.start(200);
  session.takeActions();
  session.opened(300);
  assert.deepEqual(sent(session)[0].topics, ["football", TOPIC]);
  session.watch(null);
  assert.deepEqual(sent(session), [{ type: "unsubscribe", topics: [TOPIC] }]);
  assert.equal(session.fans.has(TOPIC), false);
});
