// The board's listing: how matches are grouped under competition headings, the way the desktop
// viewer groups them (viewer/src/scoreboard.rs, Scoreboard::groups): by the snapshot's own
// competition name, not by the topic it was published under.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Board, competitionEditions } from "../../service/web/js/board.js";

const snapshot = (match, competition, extra = {}) => ({
  match, sport: match.split("/")[0], epoch: 1, seq: 5, critical_seq: 5,
  home: { name: "Home" }, away: { name: "Away" }, status: "finished", score: { home: 1, away: 0 },
  updated_ms: 1_000, ...(competition === undefined ? {} : { competition }), ...extra,
});

function boardOf(...snapshots) {
  const board = new Board();
  const topics = [...new Set(snapshots.map((s) => s.match.split("/")[0]))];
  board.apply({ type: "subscribed", topics, snapshots, omitted: 0 }, topics, 1, 0);
  return board;
}

/** Section → [heading, [matches]] as drawn. */
function headings(board) {
  return Object.fromEntries(board.sections().map((section) => [section.section, section.groups.map((group) => [group.competition, group.matches.map((t) => t.snapshot.match)])]));
}

test("two seasons under one competition topic get a heading each, from the snapshots' own names", () => {
  const board = boardOf(
    snapshot("football/champions-league/mil-liv-2005-05-25", "UEFA Champions League 2004-05"),
    snapshot("football/champions-league/mun-bay-1999-05-26", "UEFA Champions League 1998-99"),
    snapshot("football/world-cup/arg-fra-2022-12-18", "FIFA World Cup 2022"),
  );
  assert.deepEqual(headings(board).finished, [
    ["FIFA World Cup 2022", ["football/world-cup/arg-fra-2022-12-18"]],
    ["UEFA Champions League 1998-99", ["football/champions-league/mun-bay-1999-05-26"]],
    ["UEFA Champions League 2004-05", ["football/champions-league/mil-liv-2005-05-25"]],
  ]);
  // Both groups still follow (and link to) the one competition topic a fan can subscribe to.
  const groups = board.sections().find((s) => s.section === "finished").groups;
  assert.deepEqual(groups.map((g) => g.topic), ["football/world-cup", "football/champions-league", "football/champions-league"]);
});

test("a match without a competition name falls back to its topic's competition slug, made readable", () => {
  const board = boardOf(
    snapshot("football/premier-league/ars-che", undefined),
    snapshot("football/premier-league/liv-eve", undefined),
    snapshot("basketball/premier-league/a-b", undefined),
  );
  assert.deepEqual(headings(board).finished, [
    ["Premier League", ["football/premier-league/ars-che", "football/premier-league/liv-eve"]],
    ["Premier League", ["basketball/premier-league/a-b"]],
  ], "one group per sport, even with the same name");
});

test("the same name under two topics of one sport is one heading, as in the viewer", () => {
  const board = boardOf(
    snapshot("football/ucl/a-b", "UEFA Champions League 2004-05"),
    snapshot("football/champions-league/c-d", "UEFA Champions League 2004-05"),
  );
  assert.deepEqual(headings(board).finished, [["UEFA Champions League 2004-05", ["football/champions-league/c-d", "football/ucl/a-b"]]]);
  const [group] = board.sections().find((s) => s.section === "finished").groups;
  assert.deepEqual([group.topics, group.topic], [["football/champions-league", "football/ucl"], null], "no single topic to follow");
});

test("live matches come first, each section grouped by its own competition names", () => {
  const board = boardOf(
    snapshot("football/champions-league/mun-bay-1999-05-26", "UEFA Champions League 1998-99", { status: "live" }),
    snapshot("football/champions-league/mil-liv-2005-05-25", "UEFA Champions League 2004-05"),
  );
  assert.deepEqual(headings(board), {
    live: [["UEFA Champions League 1998-99", ["football/champions-league/mun-bay-1999-05-26"]]],
    upcoming: [],
    finished: [["UEFA Champions League 2004-05", ["football/champions-league/mil-liv-2005-05-25"]]],
  });
});

test("a competition topic is named by what its editions' names share, for the sidebar and follows", () => {
  const board = boardOf(
    snapshot("football/champions-league/mil-liv-2005-05-25", "UEFA Champions League 2004-05"),
    snapshot("football/champions-league/mun-bay-1999-05-26", "UEFA Champions League 1998-99"),
    snapshot("football/world-cup/arg-fra-2022-12-18", "FIFA World Cup 2022"),
    snapshot("tennis/atp/x-y", undefined),
    snapshot("tennis/mixed/x-y", "Alpha Cup"),
    snapshot("tennis/mixed/z-w", "Beta Open"),
  );
  const names = Object.fromEntries([...competitionEditions(board.matches.values())].map(([topic, entry]) => [topic, entry.name]));
  assert.deepEqual(names, {
    "football/champions-league": "UEFA Champions League",
    "football/world-cup": "FIFA World Cup 2022",
    "tennis/atp": "Atp",
    "tennis/mixed": "Alpha Cup",
  });
});
