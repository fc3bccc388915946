// Drawing: the session's state into the page. Everything is built with DOM calls (never HTML
// strings), so a team name from a feed can never become markup. Rows are kept per match and
// only redrawn when what they show changed; focus is put back after a redraw, so a keyboard or
// screen-reader user is never thrown to the top of the page by a goal somewhere else.

import { competitionTopic } from "./follows.js";
import {
  ago,
  clockLabel,
  delayLabel,
  describeEntry,
  entryTime,
  gameCall,
  kickoffLabel,
  scorers,
  spokenSummary,
  statusLabel,
  statusLine,
  teamCode,
  teamHue,
} from "./format.js";
import { isInProgress } from "./reducer.js";
import { periodShortName } from "./sport.js";
import { delayChoices, parseDelaySecs } from "./spoiler.js";
import { competitionEditions, competitionName, sectionOf } from "./board.js";

/** How long a goal (or any score change) stays highlighted on its row. */
export const HIGHLIGHT_MS = 45_000;
/** Timeline entries shown for sports with many scoring plays (the rest are in the table). */
const RECENT_PLAYS = 12;

const SVG = "http://www.w3.org/2000/svg";

/** Creates an element: h("a", {href: "#", class: "row"}, child, "text", ...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "style") for (const [property, v] of Object.entries(value)) element.style.setProperty(property, v);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Replaces an element's children, skipping absent ones (replaceChildren would write "null"). */
function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Small icons drawn here, so nothing is fetched: each is a 24×24 path set. */
const ICONS = {
  football: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm0 4.2 3.3 2.4-1.3 3.9h-4l-1.3-3.9L12 6.2Z", "M12 6.2V2.6M15.3 8.6l3.5-1.2M14 12.5l2.2 3.1M10 12.5l-2.2 3.1M8.7 8.6 5.2 7.4M16.2 15.6l1.6 3.3M7.8 15.6l-1.6 3.3M16.2 15.6h-8.4"],
  basketball: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Z", "M2 12h20M12 2v20M5 4.9c2.4 2 3.8 4.6 3.8 7.1S7.4 17.1 5 19.1M19 4.9c-2.4 2-3.8 4.6-3.8 7.1s1.4 5.1 3.8 7.1"],
  tennis: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Z", "M4.9 4.9C8 8 8 16 4.9 19.1M19.1 4.9C16 8 16 16 19.1 19.1"],
  other: ["M12 3l2.6 5.6 6.1.7-4.5 4.2 1.2 6L12 16.6 6.6 19.5l1.2-6-4.5-4.2 6.1-.7L12 3Z"],
  star: ["M12 3.2l2.7 5.6 6.1.8-4.4 4.3 1 6.1L12 17.1l-5.4 2.9 1-6.1-4.4-4.3 6.1-.8L12 3.2Z"],
  goal: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm0 4.2 3.3 2.4-1.3 3.9h-4l-1.3-3.9L12 6.2Z"],
  "own-goal": ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm0 4.2 3.3 2.4-1.3 3.9h-4l-1.3-3.9L12 6.2Z"],
  "pen-scored": ["M4 12.5l5 5L20 6.5"],
  "pen-missed": ["M6 6l12 12M18 6 6 18"],
  points: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Z", "M2 12h20M12 2v20"],
  game: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Z", "M4.9 4.9C8 8 8 16 4.9 19.1M19.1 4.9C16 8 16 16 19.1 19.1"],
  yellow: [],
  red: [],
  sub: ["M7 4v13M3.5 13.5 7 17l3.5-3.5M17 20V7M13.5 10.5 17 7l3.5 3.5"],
  whistle: ["M3 11a5 5 0 1 0 10 0 5 5 0 0 0-10 0Z", "M8 6h13v4l-8 2"],
  info: ["M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Z", "M12 11v6M12 7.5v.5"],
  var: ["M3 5h18v12H3zM8 21h8M12 17v4"],
  back: ["M15 5l-7 7 7 7"],
  close: ["M6 6l12 12M18 6 6 18"],
  refresh: ["M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7"],
  wifi: ["M2 8.5a15 15 0 0 1 20 0M5 12a10 10 0 0 1 14 0M8.5 15.5a5 5 0 0 1 7 0M12 19h.01"],
  eye: ["M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12Z", "M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6Z"],
  delay: ["M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18Z", "M12 7v5l3 2"],
};

/** An inline SVG icon; decorative unless given a label. */
export function icon(name, label = null) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  if (name === "yellow" || name === "red") {
    const card = document.createElementNS(SVG, "rect");
    for (const [key, value] of Object.entries({ x: 7, y: 3.5, width: 10, height: 17, rx: 2 })) card.setAttribute(key, value);
    svg.append(card);
    return svg;
  }
  for (const d of ICONS[name] ?? ICONS.info) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const SPORT_NAMES = { football: "Football", soccer: "Football", basketball: "Basketball", tennis: "Tennis" };

/** A sport's display name from its topic slug. */
export function sportName(slug) {
  return SPORT_NAMES[slug] ?? slug.charAt(0).toUpperCase() + slug.slice(1);
}

function sportIcon(slug) {
  const known = { football: "football", soccer: "football", basketball: "basketball", tennis: "tennis" };
  return icon(known[slug] ?? "other");
}

/** A round crest with the team's initials in a colour of its own. */
function crest(team, size = "") {
  return h("span", { class: `crest ${size}`, style: { "--hue": String(teamHue(team)) }, "aria-hidden": "true" }, teamCode(team));
}

/** The page's view. `actions` are callbacks into main.js (follow, open, retry...). */
export class View {
  constructor(elements, actions) {
    this.el = elements;
    this.actions = actions;
    this.rows = new Map();
    this.rowSignatures = new Map();
    this.structureKey = null;
    this.detailSignature = null;
    this.chromeSignature = null;
    this.syncSignature = null;
    /** Whether the fan picked "Custom…" and is typing a delay of their own. */
    this.customDelayOpen = false;
  }

  /** Draws everything that changed. `ui` is {filter, sport, open, wide}. */
  render(session, follows, ui, nowMs) {
    const focusKey = document.activeElement?.dataset?.focusKey ?? null;
    const serverNow = session.serverNowMs(nowMs);
    this.renderChrome(session, follows, ui, nowMs);
    this.renderStreamSync(session, nowMs);
    this.renderBoard(session, follows, ui, serverNow);
    this.renderDetail(session, follows, ui, serverNow);
    if (focusKey && document.activeElement?.dataset?.focusKey !== focusKey) {
      const again = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
      if (again && document.activeElement === document.body) again.focus({ preventScroll: true });
    }
  }

  /** The connection pill, the banner, the sport tabs, the toolbar and the sidebar. */
  renderChrome(session, follows, ui, nowMs) {
    const live = [...session.board.matches.values()].filter((t) => isInProgress(t.snapshot.status));
    const state = session.link.state;
    const retryIn = session.link.retryInMs(nowMs);
    const sports = [...new Set([...session.board.matches.keys()].map((topic) => topic.split("/")[0]))];
    const followed = [...session.board.matches.values()].filter((t) => follows.coversMatch(t.snapshot));
    const delay = session.delayStatus(nowMs);
    const signature = JSON.stringify([
      delay, state.name, session.loaded, session.delayMs() === null ? null : delayLabel(session.delayMs()), retryIn === null ? null : Math.ceil(retryIn / 1000), state.reason ?? null,
      sports, live.map((t) => t.snapshot.match.split("/")[0]), ui.filter, ui.sport, followed.length,
      [...follows.teams.keys()], [...follows.competitions.keys()], session.lastProblem,
      [...session.board.matches.values()].map((t) => [t.snapshot.match, t.snapshot.status, competitionName(t.snapshot)]),
    ]);
    if (signature === this.chromeSignature) return;
    this.chromeSignature = signature;

    // The connection pill: what a fan needs to trust the scores.
    let pill;
    if (state.name === "connected") {
      const behind = session.delayMs();
      const behindText = behind === null ? null : h("span", { class: "pill-delay" }, `${delayLabel(behind)} behind`);
      if (!session.loaded) {
        pill = h("span", { class: "pill" }, "Loading…");
      } else if (delay.pending !== null && !delay.ignored) {
        pill = h("span", { class: "pill pill-delayed" }, h("span", { class: "spinner", "aria-hidden": "true" }), delay.pending > 0 ? `Delaying ${delay.pending} s…` : "Going live…");
      } else if (delay.shown > 0) {
        // The spoiler delay the server confirmed: scores are late on purpose, and the fan must
        // never take them for live ones.
        pill = h("span", {
          class: "pill pill-delayed",
          "data-delay-secs": String(delay.shown),
          title: `Delayed on purpose to match your stream: scores reach you ${delay.shown} s after they happen${behind === null ? "" : ` (${delayLabel(behind)} measured)`}`,
        }, icon("delay"), `Delayed ${delay.shown} s`, behindText);
      } else {
        pill = h("span", { class: "pill pill-live", title: behind === null ? "Connected: scores arrive the moment they are published" : `Scores reach you about ${delayLabel(behind)} after they happen` },
          h("span", { class: "dot" }), "Live", behindText);
      }
    } else if (state.name === "connecting") {
      pill = h("span", { class: "pill pill-warn" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Connecting…");
    } else if (state.name === "waiting") {
      pill = h("span", { class: "pill pill-warn" }, `Reconnecting in ${Math.ceil(retryIn / 1000)} s`);
    } else {
      pill = h("span", { class: "pill pill-down" }, icon("wifi"), "Offline");
    }
    replace(this.el.connection, pill);
    this.el.connection.dataset.state = state.name === "connected" && !session.loaded ? "loading" : state.name;

    const banner = this.el.banner;
    if (state.name === "connected") {
      banner.hidden = true;
      replace(banner);
    } else if (session.board.matches.size > 0 || state.name !== "connecting") {
      banner.hidden = false;
      const why = state.name === "offline"
        ? "You are offline. Scores will update when your connection is back; those shown may be out of date."
        : state.name === "waiting"
          ? `Connection to live scores lost${state.reason ? ` (${state.reason})` : ""}. Reconnecting in ${Math.ceil(retryIn / 1000)} s; scores shown may be out of date.`
          : "Reconnecting to live scores… scores shown may be out of date.";
      banner.className = `banner ${state.name === "offline" ? "banner-down" : "banner-warn"}`;
      replace(banner, 
        h("p", {}, why),
        state.name === "waiting" ? h("button", { type: "button", class: "button", "data-focus-key": "retry", onclick: () => this.actions.retryNow() }, icon("refresh"), "Retry now") : null,
      );
    }

    // Sport tabs, each with its live count.
    const liveBySport = new Map();
    for (const tracked of live) {
      const slug = tracked.snapshot.match.split("/")[0];
      liveBySport.set(slug, (liveBySport.get(slug) ?? 0) + 1);
    }
    const order = ["football", "soccer", "basketball", "tennis"];
    sports.sort((a, b) => ((order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99)) || a.localeCompare(b));
    const tab = (slug, label, count, iconNode) =>
      h("button", {
        type: "button",
        class: "sport-tab",
        "aria-pressed": ui.sport === slug ? "true" : "false",
        "data-focus-key": `sport:${slug}`,
        onclick: () => this.actions.setSport(slug),
      }, iconNode, h("span", {}, label), count > 0 ? h("span", { class: "count", "aria-label": `${count} live` }, String(count)) : null);
    replace(this.el.sportTabs, 
      tab("all", "All", live.length, null),
      ...sports.map((slug) => tab(slug, sportName(slug), liveBySport.get(slug) ?? 0, sportIcon(slug))),
    );

    // The toolbar: all, live, following.
    const liveInSport = live.filter((t) => ui.sport === "all" || t.snapshot.match.startsWith(`${ui.sport}/`)).length;
    const filterButton = (value, label, count) =>
      h("button", {
        type: "button",
        class: `chip${value === "live" ? " chip-live" : ""}`,
        "aria-pressed": ui.filter === value ? "true" : "false",
        "data-focus-key": `filter:${value}`,
        onclick: () => this.actions.setFilter(value),
      }, value === "live" ? h("span", { class: "dot" }) : null, label, count !== null ? h("span", { class: "chip-count" }, String(count)) : null);
    const today = new Date(nowMs).toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long" });
    replace(this.el.toolbar, 
      h("div", { class: "chips", role: "group", "aria-label": "Show" },
        filterButton("all", "All matches", null),
        filterButton("live", "Live", liveInSport),
        filterButton("following", "Following", followed.length)),
      h("p", { class: "today" }, today),
    );

    // The sidebar: what the fan follows, and every competition with its live count.
    // One entry per competition topic (what a fan follows), named by what its seasons share.
    const competitions = competitionEditions(session.board.matches.values());
    const followList = [
      ...[...follows.teams.values()].map((team) =>
        h("li", {}, h("span", { class: "follow-name" }, crest(team, "crest-sm"), team.name),
          this.followButton(follows.isTeamFollowed(team.sport, team), `team:${team.key}`, team.name, () => this.actions.toggleTeam(team.sport, team)))),
      ...[...follows.competitions.values()].map((competition) =>
        h("li", {}, h("span", { class: "follow-name" }, sportIcon(competition.topic.split("/")[0]), competition.name),
          this.followButton(true, `competition:${competition.topic}`, competition.name, () => this.actions.toggleCompetition(competition.topic, competition.name)))),
    ];
    const sorted = [...competitions.values()].sort((a, b) => (b.live - a.live) || a.name.localeCompare(b.name));
    replace(this.el.sidebar, 
      h("section", { class: "side-card", "aria-labelledby": "following-heading" },
        h("h2", { id: "following-heading" }, "Following"),
        followList.length > 0
          ? h("ul", { class: "follow-list" }, followList)
          : h("p", { class: "muted" }, "Tap the star on a team or competition to follow it. Followed matches are kept on this device.")),
      h("section", { class: "side-card", "aria-labelledby": "competitions-heading" },
        h("h2", { id: "competitions-heading" }, "Competitions"),
        h("ul", { class: "competition-list" },
          sorted.map((competition) =>
            h("li", {},
              h("a", { href: `#competition-${competition.topic.replace("/", "--")}`, class: "competition-link" },
                sportIcon(competition.sport), h("span", { class: "competition-name" }, competition.name),
                competition.live > 0 ? h("span", { class: "count", "aria-label": `${competition.live} live` }, String(competition.live)) : h("span", { class: "muted small" }, String(competition.total))))))),
    );
    document.title = live.length > 0 ? `(${live.length} live) Scoreline · Live scores` : "Scoreline · Live scores";
  }

  /**
   * "Sync with my stream": the spoiler delay, offered only when the server has one. A menu of
   * common delays and a field for any other number of seconds up to the server's limit. Drawn
   * only when what it shows changes, so an open menu is never pulled from under the fan.
   */
  renderStreamSync(session, nowMs) {
    const element = this.el.streamSync;
    if (!element) return;
    const max = session.maxDelaySecs ?? 0;
    const status = session.delayStatus(nowMs);
    const chosen = Math.min(session.delaySecs, max);
    const choices = delayChoices(max);
    const custom = this.customDelayOpen || !choices.includes(chosen);
    const signature = JSON.stringify([session.delayOffered, max, chosen, custom, status]);
    if (signature === this.syncSignature) return;
    this.syncSignature = signature;
    if (!session.delayOffered) {
      element.hidden = true;
      replace(element);
      return;
    }
    element.hidden = false;
    const select = h("select", { id: "delay-select", class: "delay-select", "aria-describedby": "delay-hint", "data-focus-key": "delay-select" },
      choices.map((secs) => h("option", { value: String(secs), selected: !custom && secs === chosen }, secs === 0 ? "Off (live)" : `${secs} s`)),
      h("option", { value: "custom", selected: custom }, "Custom…"));
    select.addEventListener("change", () => {
      if (select.value === "custom") {
        this.customDelayOpen = true;
        this.syncSignature = null;
        this.renderStreamSync(session, nowMs);
        document.getElementById("delay-custom")?.focus();
        return;
      }
      this.customDelayOpen = false;
      this.actions.setDelay(Number(select.value));
    });
    let form = null;
    if (custom) {
      const input = h("input", {
        id: "delay-custom", type: "number", inputmode: "numeric", min: "0", max: String(max), step: "1",
        value: String(chosen), "aria-label": `Delay in seconds, 0 to ${max}`, "data-focus-key": "delay-custom",
      });
      form = h("form", { class: "delay-custom" }, input, h("span", { "aria-hidden": "true" }, "s"),
        h("button", { type: "submit", class: "button delay-apply", "data-focus-key": "delay-apply" }, "Set"));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const secs = parseDelaySecs(input.value);
        if (secs === null) {
          input.setCustomValidity("A whole number of seconds");
          input.reportValidity();
          return;
        }
        input.setCustomValidity("");
        this.actions.setDelay(Math.min(secs, max));
      });
    }
    const hint = status.ignored
      ? "This server is not delaying scores: they are live."
      : status.shown > 0
        ? `Scores arrive ${status.shown} s late, to match your stream.`
        : `Stream running behind? Delay scores (up to ${delayLabel(max * 1000)}) so none spoils a goal.`;
    replace(element,
      h("label", { for: "delay-select", class: "stream-sync-label" }, icon("delay"), "Sync with my stream"),
      select, form,
      h("p", { id: "delay-hint", class: `stream-sync-hint${status.ignored ? " is-warn" : ""}` }, hint));
    element.dataset.delaySecs = String(status.shown);
  }

  followButton(followed, key, name, onclick) {
    return h("button", {
      type: "button",
      class: `follow${followed ? " is-followed" : ""}`,
      "aria-pressed": followed ? "true" : "false",
      "aria-label": `${followed ? "Unfollow" : "Follow"} ${name}`,
      title: `${followed ? "Unfollow" : "Follow"} ${name}`,
      "data-focus-key": `follow:${key}`,
      onclick,
    }, icon("star"));
  }

  /** The match list: sections, competition groups, one row per match. */
  renderBoard(session, follows, ui, nowMs) {
    const board = this.el.board;
    const keep = (tracked) => {
      const slug = tracked.snapshot.match.split("/")[0];
      if (ui.sport !== "all" && slug !== ui.sport) return false;
      if (ui.filter === "live" && !isInProgress(tracked.snapshot.status)) return false;
      if (ui.filter === "following" && !follows.coversMatch(tracked.snapshot)) return false;
      return true;
    };
    const sections = session.board.sections(keep);
    const followed = (group) => group.topics.some((topic) => follows.isCompetitionFollowed(topic));
    for (const section of sections) {
      // Followed competitions first within each section.
      section.groups.sort((a, b) => Number(followed(b)) - Number(followed(a)));
    }
    const competitions = competitionEditions(session.board.matches.values());
    const visible = sections.filter((section) => section.count > 0);
    const key = JSON.stringify([
      ui.filter, ui.sport, session.loaded,
      visible.map((s) => [s.section, s.groups.map((g) => [g.key, followed(g), competitions.get(g.topic)?.name, g.matches.map((t) => t.snapshot.match)])]),
    ]);
    if (key !== this.structureKey) {
      this.structureKey = key;
      board.setAttribute("aria-busy", session.loaded ? "false" : "true");
      if (!session.loaded && session.board.matches.size === 0) {
        replace(board, this.skeleton());
      } else if (visible.length === 0) {
        replace(board, this.emptyState(ui));
      } else {
        const titles = { live: "Live now", upcoming: "Upcoming", finished: "Finished" };
        // The sidebar links to a competition's first group (ids must be unique).
        const anchors = new Set();
        replace(board, ...visible.map((section) =>
          h("section", { class: `section section-${section.section}`, "aria-labelledby": `section-${section.section}` },
            h("h2", { class: "section-title", id: `section-${section.section}` },
              section.section === "live" ? h("span", { class: "dot" }) : null, titles[section.section],
              h("span", { class: "section-count" }, String(section.count))),
            section.groups.map((group) => this.group(group, follows, section.section, anchors, competitions)))));
      }
    }
    const seen = new Set();
    for (const section of visible) {
      for (const group of section.groups) {
        for (const tracked of group.matches) {
          seen.add(tracked.snapshot.match);
          this.updateRow(tracked, session, follows, ui, nowMs);
        }
      }
    }
    for (const topic of [...this.rows.keys()]) {
      if (!seen.has(topic) && !session.board.matches.has(topic)) {
        this.rows.delete(topic);
        this.rowSignatures.delete(topic);
      }
    }
  }

  skeleton() {
    return h("div", { class: "skeleton", "aria-label": "Loading live scores" },
      [0, 1, 2].map(() => h("div", { class: "group skeleton-group" }, h("div", { class: "skeleton-line wide" }), h("div", { class: "skeleton-line" }), h("div", { class: "skeleton-line" }))));
  }

  emptyState(ui) {
    const text = ui.filter === "following"
      ? ["Nothing followed is on", "Follow a team or a competition with the star and its matches gather here."]
      : ui.filter === "live"
        ? ["No live matches right now", "Matches appear here the moment they kick off."]
        : ["No matches yet", "As soon as a feed announces a match, it appears here."];
    return h("div", { class: "empty" }, icon("whistle"), h("h2", {}, text[0]), h("p", {}, text[1]));
  }

  group(group, follows, section, anchors, competitions) {
    // The sidebar links to a competition topic's first group; a group of two topics (one name
    // under both) takes the first of them that has no anchor yet.
    const anchor = group.topics.map((topic) => `competition-${topic.replace("/", "--")}`).find((candidate) => !anchors.has(candidate)) ?? null;
    if (anchor) anchors.add(anchor);
    const id = anchor;
    const list = h("ul", { class: "rows", role: "list" });
    for (const tracked of group.matches) list.append(h("li", {}, this.rowElement(tracked.snapshot.match)));
    return h("section", { class: "group", id, "aria-label": `${group.competition}, ${sportName(group.sportSlug)}` },
      h("div", { class: "group-head" },
        h("span", { class: "group-sport" }, sportIcon(group.sportSlug)),
        h("h3", { class: "group-title" }, group.competition, h("span", { class: "group-subtitle" }, sportName(group.sportSlug))),
        // A fan follows a topic (every season of it), so the button says the topic's name.
        group.topic
          ? this.followButton(follows.isCompetitionFollowed(group.topic), `competition:${group.key}:${section}`, competitions.get(group.topic)?.name ?? group.competition,
            () => this.actions.toggleCompetition(group.topic, competitions.get(group.topic)?.name ?? group.competition))
          : null),
      list);
  }

  rowElement(topic) {
    let row = this.rows.get(topic);
    if (!row) {
      row = h("a", { class: "row", href: `#/match/${topic}`, "data-match": topic, "data-focus-key": `row:${topic}` });
      this.rows.set(topic, row);
    }
    return row;
  }

  updateRow(tracked, session, follows, ui, nowMs) {
    const snapshot = tracked.snapshot;
    const row = this.rowElement(snapshot.match);
    const status = statusLabel(snapshot, nowMs);
    const highlight = tracked.highlight && nowMs - tracked.highlight.atMs < HIGHLIGHT_MS ? tracked.highlight : null;
    const fresh = session.isFresh(tracked);
    const model = {
      status, score: snapshot.score, shootout: snapshot.shootout, winner: snapshot.winner, home: snapshot.home, away: snapshot.away,
      cards: snapshot.cards, periods: snapshot.sport === "tennis" ? snapshot.periods : null, game: gameCall(snapshot),
      highlight: highlight && { side: highlight.side, kind: highlight.kind, seq: highlight.entry?.seq, at: highlight.atMs },
      fresh, stale: snapshot.stale, open: ui.open === snapshot.match, followed: follows.coversMatch(snapshot), matchStatus: snapshot.status,
    };
    const signature = JSON.stringify(model);
    if (this.rowSignatures.get(snapshot.match) === signature) return;
    const previous = this.rowSignatures.get(snapshot.match);
    this.rowSignatures.set(snapshot.match, signature);
    const scoreChanged = previous !== undefined && JSON.parse(previous).score && JSON.stringify(JSON.parse(previous).score) !== JSON.stringify(snapshot.score);

    row.className = [
      "row", `row-${sectionOf(snapshot.status)}`, `sport-${snapshot.sport}`,
      ui.open === snapshot.match ? "is-open" : "", fresh ? "" : "is-stale",
      highlight?.kind === "goal" ? "has-goal" : "", scoreChanged ? "flash" : "",
    ].filter(Boolean).join(" ");
    if (ui.open === snapshot.match) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
    row.dataset.status = snapshot.status;
    row.dataset.scoreHome = String(snapshot.score.home);
    row.dataset.scoreAway = String(snapshot.score.away);
    // The same facts as data, for tests and tools reading the page.
    row.dataset.shootout = snapshot.shootout ? `${snapshot.shootout.home}-${snapshot.shootout.away}` : "";
    row.dataset.periods = snapshot.periods.map((p) => `${p.home}-${p.away}${p.tiebreak ? `(${p.tiebreak.home}-${p.tiebreak.away})` : ""}`).join(",");
    row.dataset.winner = snapshot.winner ?? "";
    row.dataset.fresh = String(fresh);
    row.setAttribute("aria-label", `${spokenSummary(snapshot, nowMs)}${fresh ? "" : ", may be out of date"}. Open details.`);

    const teamLine = (side) => {
      const team = snapshot[side];
      const lost = snapshot.winner && snapshot.winner !== side;
      const reds = snapshot.cards[side].red;
      return h("span", { class: `team${snapshot.winner === side ? " is-winner" : ""}${lost ? " is-loser" : ""}` },
        crest(team),
        h("span", { class: "team-name" }, team.name || "TBC"),
        reds > 0 ? h("span", { class: "red-cards", title: `${reds} sent off` }, icon("red"), reds > 1 ? String(reds) : null) : null,
        // The badge pops in once: a redraw a second later (the clock) must not replay it.
        highlight && highlight.side === side && highlight.kind === "goal" ? h("span", { class: `badge badge-goal${nowMs - highlight.atMs < 1_000 ? " is-new" : ""}` }, "Goal") : null,
        highlight && highlight.side === side && highlight.kind === "disallowed" ? h("span", { class: "badge badge-var" }, "No goal") : null);
    };

    const scoreColumn = () => {
      if (snapshot.sport === "tennis") {
        const sets = snapshot.periods;
        const call = gameCall(snapshot);
        // Games per set (muted, the current one boxed), the game in progress, then sets won in
        // the score column every row shares.
        const line = (side) => h("span", { class: "tennis-line" },
          sets.map((set, index) => {
            const current = index === sets.length - 1 && isInProgress(snapshot.status) && !snapshot.winner;
            const won = set[side] > set[side === "home" ? "away" : "home"];
            return h("span", { class: `set${current ? " is-current" : ""}${won && !current ? " is-won" : ""}` }, String(set[side]), set.tiebreak ? h("sup", {}, String(set.tiebreak[side])) : null);
          }),
          call ? h("span", { class: "game-call" }, call[side]) : null,
          h("span", { class: `sets-won${snapshot.winner === side ? " is-winner" : ""}${highlight?.side === side ? " is-fresh" : ""}` }, String(snapshot.score[side])));
        return h("span", { class: "score score-tennis" }, line("home"), line("away"));
      }
      const cell = (side) => h("span", { class: `score-cell${snapshot.winner === side ? " is-winner" : ""}${highlight?.side === side ? " is-fresh" : ""}` },
        String(snapshot.score[side]),
        snapshot.shootout ? h("span", { class: "shootout" }, `(${snapshot.shootout[side]})`) : null);
      if (snapshot.status === "scheduled") return h("span", { class: "score score-empty" }, h("span", { class: "score-cell" }, "–"), h("span", { class: "score-cell" }, "–"));
      return h("span", { class: "score" }, cell("home"), cell("away"));
    };

    let note = null;
    if (highlight && highlight.entry && (highlight.kind === "goal" || highlight.kind === "disallowed")) {
      const entry = highlight.entry;
      const text = `${entry.player ?? snapshot[highlight.side].name}${entryTime(snapshot, entry) ? ` ${entryTime(snapshot, entry)}` : ""}${entry.penalty ? " (pen)" : ""}${entry.own_goal ? " (og)" : ""}`;
      note = h("span", { class: `row-note${highlight.kind === "disallowed" ? " is-var" : ""}` }, icon(highlight.kind === "goal" ? "goal" : "var"), highlight.kind === "disallowed" ? `Goal ruled out · ${text}` : text);
    }

    replace(row,
      h("span", { class: `row-status${status.live ? " is-live" : ""}` }, h("span", { class: "status-text" }, status.text)),
      h("span", { class: "row-teams" }, teamLine("home"), teamLine("away")),
      scoreColumn(),
      note,
      !fresh ? h("span", { class: "stale-mark", title: snapshot.stale ? "The server could not confirm this is the latest score" : "Not yet confirmed since the connection came back" }, icon("refresh"), h("span", { class: "visually-hidden" }, "May be out of date")) : null,
    );
    if (scoreChanged) {
      // Restart the flash animation for a second goal within the same highlight.
      row.getAnimations?.().forEach((animation) => animation.cancel());
    }
  }

  /** The detail panel of the open match (or, on a wide screen, the top live match). */
  renderDetail(session, follows, ui, nowMs) {
    const detail = this.el.detail;
    let topic = ui.open;
    let featured = false;
    if (!topic && ui.wide) {
      const sections = session.board.sections();
      const first = sections.find((s) => s.count > 0)?.groups[0]?.matches[0];
      const followedLive = [...session.board.matches.values()].find((t) => isInProgress(t.snapshot.status) && follows.coversMatch(t.snapshot));
      topic = (followedLive ?? first)?.snapshot.match ?? null;
      featured = topic !== null;
    }
    const tracked = topic ? session.board.matches.get(topic) : null;
    if (!tracked) {
      const signature = JSON.stringify([ui.open, ui.wide, session.loaded]);
      if (signature === this.detailSignature) return;
      this.detailSignature = signature;
      if (ui.open) {
        detail.hidden = false;
        replace(detail, this.detailHeader(ui, false), h("div", { class: "empty" }, h("h2", {}, "Match not found"), h("p", {}, session.loaded ? "This match is not on the scoreboard any more." : "Loading…")));
      } else {
        detail.hidden = !ui.wide;
        replace(detail, ui.wide ? h("div", { class: "empty" }, icon("whistle"), h("h2", {}, "Pick a match"), h("p", {}, "Its timeline, periods and cards show here.")) : "");
      }
      return;
    }
    const snapshot = tracked.snapshot;
    const highlight = tracked.highlight && nowMs - tracked.highlight.atMs < HIGHLIGHT_MS ? tracked.highlight : null;
    const fresh = session.isFresh(tracked);
    const status = statusLabel(snapshot, nowMs);
    const sportSlug = snapshot.match.split("/")[0];
    const signature = JSON.stringify([
      snapshot.match, snapshot.epoch, snapshot.seq, snapshot.stale, fresh, status.text, featured, ui.open, ui.wide,
      follows.isTeamFollowed(sportSlug, snapshot.home), follows.isTeamFollowed(sportSlug, snapshot.away),
      follows.isCompetitionFollowed(competitionTopic(snapshot.match)), highlight?.atMs ?? null, Math.floor(nowMs / 60_000),
      tracked.delayMs === undefined ? null : delayLabel(tracked.delayMs), session.fans.get(snapshot.match) ?? null, session.confirmedDelaySecs,
    ]);
    if (signature === this.detailSignature) return;
    this.detailSignature = signature;
    detail.hidden = false;

    const side = (which) => {
      const team = snapshot[which];
      return h("div", { class: `side side-${which}${snapshot.winner === which ? " is-winner" : ""}` },
        crest(team, "crest-lg"),
        h("span", { class: "side-name" }, team.name || "TBC"),
        this.followButton(follows.isTeamFollowed(sportSlug, team), `team:${sportSlug}:${team.name}`, team.name, () => this.actions.toggleTeam(sportSlug, team)));
    };
    const scoreText = snapshot.status === "scheduled" ? "vs" : `${snapshot.score.home} – ${snapshot.score.away}`;
    const scoreboard = h("div", { class: `scoreboard${highlight ? " has-highlight" : ""}` },
      side("home"),
      h("div", { class: "centre" },
        h("p", { class: `big-status${status.live ? " is-live" : ""}` }, status.live ? h("span", { class: "dot" }) : null, status.text),
        h("p", { class: "big-score", "aria-live": "polite", "aria-atomic": "true", "data-detail-score": `${snapshot.score.home}-${snapshot.score.away}` },
          h("span", { class: "visually-hidden" }, `${snapshot.home.name} `), scoreText, h("span", { class: "visually-hidden" }, ` ${snapshot.away.name}`)),
        snapshot.shootout ? h("p", { class: "big-shootout" }, `Penalties ${snapshot.shootout.home} – ${snapshot.shootout.away}`) : null,
        snapshot.sport === "tennis" && gameCall(snapshot) ? h("p", { class: "big-shootout" }, `${gameCall(snapshot).tiebreak ? "Tie-break" : "Game"} ${gameCall(snapshot).home} – ${gameCall(snapshot).away}`) : null,
        h("p", { class: "status-line" }, statusLine(snapshot, nowMs))),
      side("away"));

    const sections = [];
    if (snapshot.sport === "football" && snapshot.timeline.some((e) => e.kind === "goal" && !e.voided)) {
      sections.push(h("div", { class: "scorers" },
        h("ul", { class: "scorers-home", "aria-label": `${snapshot.home.name} scorers` }, scorers(snapshot, "home").map((s) => h("li", {}, s))),
        icon("goal"),
        h("ul", { class: "scorers-away", "aria-label": `${snapshot.away.name} scorers` }, scorers(snapshot, "away").map((s) => h("li", {}, s)))));
    }
    if (!fresh) {
      sections.push(h("p", { class: "notice notice-warn" }, icon("refresh"),
        snapshot.stale ? "The server could not confirm it has the latest events of this match: the score may be out of date." : "Reconnecting: this score may be out of date until the connection is back."));
    }
    const periodTable = this.periodTable(snapshot);
    if (periodTable) sections.push(h("section", { class: "panel", "aria-labelledby": "periods-heading" }, h("h3", { id: "periods-heading" }, snapshot.sport === "tennis" ? "Sets" : snapshot.sport === "basketball" ? "Quarters" : "Score by period"), periodTable));
    const stats = Object.entries(snapshot.stats);
    if (stats.length > 0) {
      sections.push(h("section", { class: "panel", "aria-labelledby": "stats-heading" }, h("h3", { id: "stats-heading" }, "Stats"),
        h("ul", { class: "stats" }, stats.map(([name, value]) => {
          const total = Math.max(value.home + value.away, 1);
          return h("li", {}, h("span", { class: "stat-value" }, String(value.home)), h("span", { class: "stat-name" }, name.replace(/_pct$/, " %").replace(/_/g, " ")), h("span", { class: "stat-value" }, String(value.away)),
            h("span", { class: "stat-bar", "aria-hidden": "true" }, h("span", { class: "stat-home", style: { width: `${(100 * value.home) / total}%` } }), h("span", { class: "stat-away", style: { width: `${(100 * value.away) / total}%` } })));
        }))));
    }
    if (snapshot.sport === "football") {
      const cards = snapshot.cards;
      sections.push(h("section", { class: "panel", "aria-labelledby": "cards-heading" }, h("h3", { id: "cards-heading" }, "Discipline"),
        h("div", { class: "cards-row" },
          h("span", {}, icon("yellow", "yellow cards"), String(cards.home.yellow), icon("red", "red cards"), String(cards.home.red)),
          h("span", { class: "muted" }, "Cards"),
          h("span", {}, icon("yellow", "yellow cards"), String(cards.away.yellow), icon("red", "red cards"), String(cards.away.red)))));
    }
    sections.push(this.timeline(snapshot));
    const meta = [snapshot.venue, snapshot.kickoff_ms ? kickoffLabel(snapshot.kickoff_ms, nowMs) : null].filter(Boolean).join(" · ");
    const fans = session.fans.get(snapshot.match);
    const competition = competitionTopic(snapshot.match);
    const competitionLabel = competitionEditions(session.board.matches.values()).get(competition)?.name ?? competitionName(snapshot);
    replace(detail, 
      this.detailHeader(ui, featured),
      h("div", { class: "detail-body" },
        h("div", { class: "detail-competition" },
          sportIcon(sportSlug),
          h("h2", { id: "detail-heading", tabindex: "-1" }, competitionName(snapshot), h("span", { class: "visually-hidden" }, `: ${snapshot.home.name} against ${snapshot.away.name}`)),
          this.followButton(follows.isCompetitionFollowed(competition), `competition:${competition}:detail`, competitionLabel, () => this.actions.toggleCompetition(competition, competitionLabel))),
        meta ? h("p", { class: "detail-meta" }, meta) : null,
        scoreboard,
        fans ? h("p", { class: "watching", "data-fans": String(fans) }, icon("eye"), `${fans.toLocaleString()} ${fans === 1 ? "fan" : "fans"} watching`) : null,
        sections,
        h("p", { class: "detail-foot muted small" },
          [`Updated ${ago(snapshot.updated_ms, nowMs)}`, this.behindText(tracked, session), `event ${snapshot.seq}`].filter(Boolean).join(" · "))));
    detail.dataset.match = snapshot.match;
  }

  /** How far behind the stadium a match is shown, the fan's own delay named as such. */
  behindText(tracked, session) {
    const chosen = session.confirmedDelaySecs;
    if (tracked.delayMs === undefined) return chosen > 0 ? `Delayed ${chosen} s by your choice` : null;
    return `${delayLabel(tracked.delayMs)} behind the stadium${chosen > 0 ? ` (${chosen} s by your choice)` : ""}`;
  }

  detailHeader(ui, featured) {
    return h("div", { class: "detail-head" },
      ui.open
        ? h("button", { type: "button", class: "icon-button back", "data-focus-key": "detail-close", onclick: () => this.actions.closeMatch() }, icon(ui.wide ? "close" : "back"), h("span", {}, ui.wide ? "Close" : "All matches"))
        : h("span", { class: "featured-label" }, featured ? "Featured match" : ""));
  }

  periodTable(snapshot) {
    if (snapshot.periods.length === 0) return null;
    const periods = snapshot.periods.filter((p) => !(snapshot.sport === "football" && p.period === 5));
    const head = h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Team")), periods.map((p) => h("th", { scope: "col" }, periodShortName(snapshot.sport, p.period))),
      h("th", { scope: "col" }, snapshot.sport === "tennis" ? "Sets" : "Total"));
    const line = (side) => h("tr", { class: snapshot.winner === side ? "is-winner" : "" },
      h("th", { scope: "row" }, teamCode(snapshot[side])),
      periods.map((p) => h("td", {}, String(p[side]), p.tiebreak ? h("sup", {}, String(p.tiebreak[side])) : null)),
      h("td", { class: "total" }, String(snapshot.score[side])));
    return h("table", { class: "periods" }, h("thead", {}, head), h("tbody", {}, line("home"), line("away")));
  }

  timeline(snapshot) {
    let entries = [...snapshot.timeline].reverse();
    let caption = "Timeline";
    if (snapshot.sport === "tennis" || snapshot.sport === "basketball") {
      const plays = entries.filter((e) => e.kind === "points" || e.kind === "point");
      const markers = entries.filter((e) => e.kind !== "points" && e.kind !== "point");
      const recent = new Set(plays.slice(0, RECENT_PLAYS));
      entries = entries.filter((e) => recent.has(e) || markers.includes(e));
      caption = snapshot.sport === "tennis" ? "Latest games" : "Latest plays";
    }
    const items = entries.map((entry) => {
      const text = describeEntry(snapshot, entry);
      const sideClass = entry.side && !text.marker ? `tl-${entry.side}` : "tl-marker";
      return h("li", { class: `tl ${sideClass}${entry.voided ? " is-voided" : ""}` },
        h("span", { class: "tl-time" }, entryTime(snapshot, entry)),
        h("span", { class: `tl-icon tl-icon-${text.icon}` }, icon(text.icon)),
        h("span", { class: "tl-text" },
          h("span", { class: "tl-title" }, text.title),
          text.detail ? h("span", { class: "tl-detail" }, text.detail) : null,
          entry.voided ? h("span", { class: "tag tag-var" }, "Ruled out") : null,
          entry.amended ? h("span", { class: "tag" }, "Corrected") : null));
    });
    return h("section", { class: "panel", "aria-labelledby": "timeline-heading" }, h("h3", { id: "timeline-heading" }, caption),
      items.length > 0 ? h("ol", { class: "timeline", reversed: true }, items) : h("p", { class: "muted" }, "Nothing has happened yet."));
  }

  /** Tells screen-reader users about goals and results, politely, without repeating the page. */
  announce(notices, nowMs) {
    for (const notice of notices) {
      const s = notice.snapshot;
      const score = `${s.home.name} ${s.score.home}, ${s.away.name} ${s.score.away}`;
      let text = null;
      if (notice.kind === "goal") {
        const who = notice.entry?.player ? ` ${notice.entry.player}${notice.entry ? `, ${entryTime(s, notice.entry)}` : ""}.` : "";
        text = `Goal for ${s[notice.side].name}!${who} ${score}.`;
      } else if (notice.kind === "disallowed") text = `Goal ruled out for ${s[notice.side].name}. ${score}.`;
      else if (notice.kind === "final") text = `Final: ${score}${s.shootout ? `, ${s.shootout.home}–${s.shootout.away} on penalties` : ""}.`;
      else if (notice.kind === "set") text = `Set to ${s[notice.side].name}. ${s.home.name} ${s.score.home} sets, ${s.away.name} ${s.score.away}.`;
      else if (notice.kind === "score" && s.sport === "football") text = `Score update: ${score}.`;
      if (!text) continue;
      this.el.announcer.append(h("p", { "data-at": String(nowMs) }, text));
    }
    while (this.el.announcer.childElementCount > 8) this.el.announcer.firstElementChild.remove();
  }

  /** The running clocks' text changes every second (and a pending delay's wording after a few);
   * everything else waits for a message. */
  static needsTicking(session) {
    for (const tracked of session.board.matches.values()) {
      if (isInProgress(tracked.snapshot.status) && tracked.snapshot.clock?.running) return true;
      if (tracked.highlight) return true;
    }
    // A delay not confirmed yet: the badge says so, then that the server ignored it.
    if (session.requestedDelaySecs !== session.confirmedDelaySecs) return true;
    return session.link.state.name === "waiting";
  }
}

export { clockLabel };
