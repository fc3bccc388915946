// The spoiler delay in a real browser: two fans on one service, one live and one who chose
// "Sync with my stream: 4 s" with the page's own control. While the World Cup final is replayed,
// every score the live page shows must reach the delayed page about 4 s later (never sooner than
// 3 s), both must end at the recorded result, a longer delay chosen after the final whistle must
// take the board back to an older state, and the delayed fan's choice must survive a reload.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { readFixture } from "../unit/fixtures.mjs";
import { LOGS, ROOT, binary, freePort, launchBrowser, openPage, start, startRedis, startService, stop, stopAll, waitFor } from "./harness.mjs";

const FIXTURE = join(ROOT, "fixtures", "football", "world-cup-2022-final-arg-fra.jsonl");
const MATCH = "football/world-cup/arg-fra-2022-12-18";
const DELAY_SECS = 4;
/** Speed of the replay: the 120 minutes and the shoot-out in about 30 s, goals seconds apart. */
const SPEED = "300";
const SHOTS = join(ROOT, "target", "screenshots");

let browser;
before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopAll();
});

/**
 * Records, in the page, when each score of MATCH was first drawn (Date.now(), one clock for
 * every page of this browser), so the test compares the pages without polling them.
 */
function recordScores(page) {
  return page.evaluate((match) => {
    window.scoresSeen = {};
    const note = () => {
      const row = document.querySelector(`a.row[data-match="${match}"]`);
      if (!row || row.dataset.scoreHome === undefined) return;
      const key = `${row.dataset.scoreHome}-${row.dataset.scoreAway}`;
      window.scoresSeen[key] ??= Date.now();
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-score-home", "data-score-away"] });
    note();
  }, MATCH);
}

async function finalRow(page) {
  return page.$eval(`a.row[data-match="${MATCH}"]`, (row) => ({
    status: row.dataset.status, home: Number(row.dataset.scoreHome), away: Number(row.dataset.scoreAway),
    shootout: row.dataset.shootout, winner: row.dataset.winner, fresh: row.dataset.fresh === "true",
  })).catch(() => null);
}

test("a fan who delays the board by 4 s sees each goal about 4 s after a live fan, and the same result", { timeout: 180_000 }, async (t) => {
  const { header } = readFixture(FIXTURE);
  const redis = await startRedis(LOGS);
  const port = await freePort();
  const service = await startService(port, redis.url, LOGS);
  const url = `http://127.0.0.1:${port}/`;
  const errors = [];

  const live = await openPage(browser, { width: 1440, height: 900 }, "dark", url, errors);
  const delayed = await openPage(browser, { width: 390, height: 844 }, "light", url, errors);
  await waitFor("the welcome", () => delayed.evaluate(() => window.scoreline.session.maxDelaySecs !== null), 10_000, 50);
  const maxDelaySecs = await delayed.evaluate(() => window.scoreline.session.maxDelaySecs);
  if (maxDelaySecs === 0) {
    assert.equal(await delayed.$eval("#stream-sync", (el) => el.hidden), true, "no delay control on a server without one");
    // The only reason to skip: a server without spoiler delay says so in its welcome.
    t.skip("the service's welcome says max_delay_secs is 0: it has no spoiler delay");
    return;
  }
  assert.equal(await live.$eval("#stream-sync", (el) => el.hidden), false, "the control is offered");

  // The delayed fan uses the control as a fan would, on a phone: Custom…, 4, Set.
  await delayed.selectOption("#delay-select", "custom");
  await delayed.fill("#delay-custom", String(DELAY_SECS));
  await delayed.click(".delay-apply");
  await delayed.waitForSelector(`#connection .pill-delayed[data-delay-secs="${DELAY_SECS}"]`, { timeout: 10_000 });
  assert.match(await delayed.$eval("#connection", (el) => el.textContent), new RegExp(`Delayed ${DELAY_SECS} s`), "the badge says the board is delayed");
  assert.equal(await delayed.$eval("#connection", (el) => el.getAttribute("role")), "status", "and screen readers hear it");
  assert.equal(await live.$("#connection .pill-delayed"), null, "the live fan is not delayed");

  await recordScores(live);
  await recordScores(delayed);
  const replayer = start("replayer-delay", binary("feed-replayer"), ["replay", FIXTURE, "--speed", SPEED, "--redis-url", redis.url], LOGS);
  // A look at the delayed phone once its first goal is in (target/screenshots/, not docs/).
  await waitFor("the first goal on the delayed page", () => delayed.evaluate(() => Object.keys(window.scoresSeen).some((score) => score !== "0-0")), 30_000, 50);
  mkdirSync(SHOTS, { recursive: true });
  await delayed.screenshot({ path: join(SHOTS, "page-phone-delayed.png") });
  const { code } = await replayer.exited;
  assert.equal(code, 0, "the replayer published the match");

  const want = {
    status: header.result.status, home: header.result.score.home, away: header.result.score.away,
    shootout: `${header.result.shootout.home}-${header.result.shootout.away}`, winner: header.result.winner, fresh: true,
  };
  for (const [name, page] of [["live", live], ["delayed", delayed]]) {
    await waitFor(`the ${name} page to show the final result`, async () => JSON.stringify(await finalRow(page)) === JSON.stringify(want), 30_000, 100);
  }

  // Every score both pages drew (two goals a few frames apart may be drawn as one), the
  // delayed page drew about DELAY_SECS later.
  const liveSeen = await live.evaluate(() => window.scoresSeen);
  const delayedSeen = await delayed.evaluate(() => window.scoresSeen);
  const goals = Object.keys(liveSeen).filter((score) => score !== "0-0" && score in delayedSeen);
  assert.ok(goals.length >= 4, `most scores seen on both pages: live ${JSON.stringify(liveSeen)}, delayed ${JSON.stringify(delayedSeen)}`);
  assert.ok(goals.includes(`${want.home}-${want.away}`), "the final score on both");
  const lags = Object.fromEntries(goals.map((score) => [score, delayedSeen[score] - liveSeen[score]]));
  for (const [score, lagMs] of Object.entries(lags)) {
    assert.ok(lagMs >= (DELAY_SECS - 1) * 1_000, `${score} reached the delayed page only ${lagMs} ms after the live one: ${JSON.stringify(lags)}`);
    assert.ok(lagMs <= (DELAY_SECS + 3) * 1_000, `${score} reached the delayed page ${lagMs} ms after the live one: ${JSON.stringify(lags)}`);
  }
  t.diagnostic(`delayed page behind the live one, per score: ${JSON.stringify(lags)}`);

  // The live fan now chooses 10 s, just after the final whistle: the board must go back to the
  // match as it stood 10 s ago (an older state, a lower seq, not finished), then reach the
  // result again in its time.
  const seqOf = (page) => page.evaluate((match) => window.scoreline.session.board.matches.get(match)?.snapshot.seq ?? null, MATCH);
  const finalSeq = await seqOf(live);
  await live.selectOption("#delay-select", "10");
  await live.waitForSelector('#connection .pill-delayed[data-delay-secs="10"]', { timeout: 10_000 });
  const rewound = await finalRow(live);
  await live.screenshot({ path: join(SHOTS, "page-desktop-delayed.png") });
  const rewoundSeq = await seqOf(live);
  assert.ok(rewoundSeq !== null && rewoundSeq < finalSeq, `the board went back from seq ${finalSeq} to ${rewoundSeq}`);
  assert.notEqual(rewound?.status, "finished", `10 s before the end the match was still on: ${JSON.stringify(rewound)}`);
  t.diagnostic(`choosing 10 s after the final whistle took the board from seq ${finalSeq} back to seq ${rewoundSeq} (${rewound?.status} ${rewound?.home}-${rewound?.away})`);
  await waitFor("the live fan, now 10 s behind, to reach the result again", async () => JSON.stringify(await finalRow(live)) === JSON.stringify(want), 20_000, 100);

  // How far behind the stadium agrees with the choice: at least the delay.
  const behindMs = await delayed.evaluate(() => window.scoreline.session.delayMs());
  assert.ok(behindMs === null || behindMs >= (DELAY_SECS - 1) * 1_000, `the delayed page measures ${behindMs} ms behind the stadium`);

  // The choice is the fan's until changed: after a reload the page asks for it again.
  await delayed.reload();
  await delayed.waitForSelector(`#connection .pill-delayed[data-delay-secs="${DELAY_SECS}"]`, { timeout: 15_000 });
  assert.equal(await delayed.$eval("#delay-custom", (el) => el.value), String(DELAY_SECS));
  await waitFor("the reloaded page to show the final result", async () => JSON.stringify(await finalRow(delayed)) === JSON.stringify(want), 15_000, 100);

  // A delayed fan is counted among a match's watchers like any other (counts are not delayed).
  await delayed.click(`a.row[data-match="${MATCH}"]`);
  await delayed.waitForSelector('#detail .watching[data-fans="1"]', { timeout: 10_000 });
  assert.match(await delayed.$eval("#detail .detail-foot", (el) => el.textContent), new RegExp(`${DELAY_SECS} s by your choice`));
  await delayed.click("#detail .back");
  await waitFor("the phone to go back to the list", () => delayed.$eval("#detail", (el) => el.hidden), 5_000, 50);

  // Back to live from the menu: the badge goes.
  await delayed.selectOption("#delay-select", "0");
  await waitFor("the page to go back to live", () => delayed.$eval("#connection", (el) => !el.querySelector(".pill-delayed") && el.textContent.includes("Live")), 10_000, 50);
  assert.equal(await delayed.evaluate(() => localStorage.getItem("scoreline.delay.v1")), "0");

  assert.deepEqual(errors, [], "no script errors on the pages");
  await stop(service);
  await stop(redis);
});
