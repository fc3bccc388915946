// The fans' page in a real browser: Debian's Chromium, headless, driven by playwright-core
// (never a downloaded browser). A private redis-server, the service and the replayer play every
// recorded match at 600x; the page must show each one with its recorded final score, and keep
// them right while the service is killed and started again mid-replay. Screenshots at desktop
// and phone width go to target/screenshots/, or to docs/ with UPDATE_SCREENSHOTS=1 (so a test
// run does not rewrite tracked files; the ones in docs/ were taken this way).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { fixtureFiles, readFixture } from "../unit/fixtures.mjs";
import { LOGS, ROOT, binary, freePort, launchBrowser, openPage as openIn, start, startRedis, startService, stop, stopAll, waitFor } from "./harness.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs") : join(ROOT, "target", "screenshots");

const SPEED = "600";
const WORLD_CUP = "football/world-cup/arg-fra-2022-12-18";

/** Every fixture's match and recorded result. */
const expected = fixtureFiles().map((path) => readFixture(path).header);

let browser;
before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopAll();
});

/** What a row shows, read from the page. */
async function rows(page) {
  return page.$$eval("a.row[data-match]", (elements) =>
    Object.fromEntries(elements.map((row) => [row.dataset.match, {
      status: row.dataset.status,
      home: Number(row.dataset.scoreHome),
      away: Number(row.dataset.scoreAway),
      shootout: row.dataset.shootout,
      periods: row.dataset.periods,
      winner: row.dataset.winner,
      fresh: row.dataset.fresh === "true",
      text: row.textContent,
    }])));
}

function periodsText(periods) {
  return (periods ?? []).map((p) => `${p.home}-${p.away}${p.tiebreak ? `(${p.tiebreak.home}-${p.tiebreak.away})` : ""}`).join(",");
}

/** The differences between what a page shows and the recorded results; empty when all agree. */
async function mismatches(page) {
  const shown = await rows(page);
  const problems = [];
  for (const header of expected) {
    const row = shown[header.match];
    const result = header.result;
    if (!row) {
      problems.push(`${header.match}: not shown`);
      continue;
    }
    const want = {
      status: result.status, home: result.score.home, away: result.score.away, winner: result.winner ?? "",
      shootout: result.shootout ? `${result.shootout.home}-${result.shootout.away}` : "", fresh: true,
    };
    const got = { status: row.status, home: row.home, away: row.away, winner: row.winner, shootout: row.shootout, fresh: row.fresh };
    if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${header.match}: want ${JSON.stringify(want)}, shows ${JSON.stringify(got)}`);
    if (result.periods && row.periods !== periodsText(result.periods)) problems.push(`${header.match}: periods want ${periodsText(result.periods)}, shows ${row.periods}`);
  }
  return problems;
}

function openPage(viewport, colorScheme, url, errors) {
  return openIn(browser, viewport, colorScheme, url, errors);
}

test("the page shows every replayed match with its recorded result, across a service restart", { timeout: 240_000 }, async () => {
  const redis = await startRedis(LOGS);
  const port = await freePort();
  let service = await startService(port, redis.url, LOGS);
  const url = `http://127.0.0.1:${port}/`;
  const errors = [];
  // Service restarts make the browser log failed WebSocket connects; those are expected.
  const unexpected = () => errors.filter((line) => !line.includes("WebSocket"));

  const desktop = await openPage({ width: 1440, height: 900 }, "dark", url, errors);
  const phone = await openPage({ width: 390, height: 844 }, "light", url, errors);
  const replayer = start("replayer", binary("feed-replayer"), ["replay", join(ROOT, "fixtures"), "--speed", SPEED, "--redis-url", redis.url], LOGS);

  // Mid-replay, just after Mbappé's 81st-minute equaliser, every sport is live: the screenshots.
  await waitFor("the World Cup final to reach 2-2 on the page", async () => {
    const row = (await rows(desktop))[WORLD_CUP];
    return row && row.home === 2 && row.away === 2;
  }, 60_000, 50);
  await desktop.click(`a.row[data-match="${WORLD_CUP}"]`);
  await desktop.waitForSelector(`#detail[data-match="${WORLD_CUP}"]`);
  // Opening the match makes this fan one of its watchers.
  await desktop.waitForSelector('#detail .watching[data-fans="1"]', { timeout: 10_000 });
  const goalRow = await desktop.$eval(`a.row[data-match="${WORLD_CUP}"]`, (row) => row.textContent);
  assert.match(goalRow, /Goal/i, "a goal badge on the row");
  assert.match(goalRow, /Mbappé/, "the scorer on the row");
  mkdirSync(SHOTS, { recursive: true });
  await desktop.screenshot({ path: join(SHOTS, "page-desktop.png") });
  await phone.screenshot({ path: join(SHOTS, "page-phone.png") });
  const announced = await desktop.$eval("#announcer", (region) => region.textContent);
  assert.match(announced, /Goal for France! Kylian Mbappé/, "screen readers hear the goal");

  // Kill the service (a crash, not a polite shutdown) while matches are live, then start it
  // again on the same port: the pages must notice, reconnect, resume and stay right.
  await stop(service, "SIGKILL");
  await waitFor("the page to notice the lost connection", () => desktop.$eval("#connection", (el) => el.dataset.state !== "connected"), 15_000, 50);
  assert.equal(await desktop.$eval("#banner", (el) => el.hidden), false, "the page says it is reconnecting");
  service = await startService(port, redis.url, LOGS);
  for (const page of [desktop, phone]) {
    await page.waitForSelector('#connection[data-state="connected"]', { timeout: 40_000 });
  }

  const { code } = await replayer.exited;
  assert.equal(code, 0, "the replayer published every match");
  for (const [name, page] of [["desktop", desktop], ["phone", phone]]) {
    let problems = [];
    await waitFor(`the ${name} page to show every recorded result`, async () => {
      problems = await mismatches(page);
      return problems.length === 0;
    }, 60_000, 250).catch((error) => {
      throw new Error(`${error.message}\n${problems.join("\n")}`);
    });
    const session = await page.evaluate(() => ({
      generation: window.scoreline.session.link.generation,
      catchUp: window.scoreline.session.catchUp,
    }));
    assert.ok(session.generation >= 2, `the ${name} page reconnected (${JSON.stringify(session)})`);
  }

  // The service agrees with the page (and so with the fixtures).
  for (const header of expected) {
    const snapshot = await (await fetch(`${url}api/matches/${header.match}`)).json();
    assert.deepEqual(snapshot.score, header.result.score, header.match);
  }

  // Each match is listed under its own competition and season, whatever topic it came under:
  // the 1999 and 2005 finals share football/champions-league but not a heading.
  const headings = await desktop.$$eval("section.group", (groups) =>
    Object.fromEntries(groups.flatMap((group) => [...group.querySelectorAll("a.row[data-match]")].map((row) => [row.dataset.match, group.querySelector(".group-title").firstChild.textContent]))));
  for (const header of expected) assert.equal(headings[header.match], header.competition, `${header.match} is listed under its competition`);

  // The detail of the final tells the whole story.
  const detail = await desktop.$eval("#detail", (el) => el.textContent);
  assert.match(detail, /Penalties 4 – 2/);
  assert.match(detail, /Argentina win 4–2 on penalties/);
  assert.match(detail, /Lionel Messi/);

  // The phone opens a match as a full-screen view (and the desktop fan sees a second fan
  // watching, its own watch kept across the restart), then goes back to the list.
  await phone.click(`a.row[data-match="${WORLD_CUP}"]`);
  await phone.waitForSelector(`#detail[data-match="${WORLD_CUP}"]:not([hidden])`);
  await desktop.waitForSelector('#detail .watching[data-fans="2"]', { timeout: 10_000 });
  await phone.click("#detail .back");
  await waitFor("the phone to go back to the list", () => phone.$eval("#detail", (el) => el.hidden), 5_000, 50);

  // Readable for screen readers and usable from the keyboard.
  for (const [name, page] of [["desktop", desktop], ["phone", phone]]) {
    const audit = await page.evaluate(() => {
      const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
      const named = (el) => (el.getAttribute("aria-label") || el.textContent || "").trim().length > 0;
      return {
        unnamed: [...document.querySelectorAll("button, a[href]")].filter((el) => visible(el) && !named(el)).map((el) => el.outerHTML.slice(0, 120)),
        landmarks: ["header[role=banner]", "nav", "main", "footer[role=contentinfo]"].filter((selector) => !document.querySelector(selector)),
        h1: document.querySelectorAll("h1").length,
        live: document.querySelector("#announcer")?.getAttribute("aria-live"),
        pressed: [...document.querySelectorAll(".follow, .chip, .sport-tab")].every((el) => ["true", "false"].includes(el.getAttribute("aria-pressed"))),
      };
    });
    assert.deepEqual(audit, { unnamed: [], landmarks: [], h1: 1, live: "polite", pressed: true }, `${name} accessibility`);
  }
  // From the keyboard: a row is a link, Enter opens the match, Escape closes it.
  await desktop.click("#detail .back");
  await desktop.focus(`a.row[data-match="${WORLD_CUP}"]`);
  await desktop.keyboard.press("Enter");
  await desktop.waitForSelector(`#detail[data-match="${WORLD_CUP}"] .back`);
  await desktop.keyboard.press("Escape");
  await waitFor("Escape to close the match", () => desktop.$eval("#detail", (el) => !el.querySelector(".back")), 5_000, 50);

  assert.deepEqual(unexpected(), [], "no script errors on the page");
  await stop(service);
  await stop(redis);
});
