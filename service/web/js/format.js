// Words and numbers as fans read them: status labels, clock readings, timeline lines, team
// initials and colours. Pure functions of a snapshot and the time; no DOM.

import { clockSecsAt } from "./reducer.js";
import { formatClock, periodName, tennisCall } from "./sport.js";

/** The game clock as a fan reads it at `nowMs` (`67'`, `04:12`), or null without a clock. */
export function clockLabel(snapshot, nowMs) {
  if (!snapshot.clock) return null;
  return formatClock(snapshot.sport, snapshot.period, clockSecsAt(snapshot.clock, nowMs), snapshot.period_secs);
}

/**
 * The short status a row shows on its left: the minute or quarter clock while live, `HT` at
 * half-time, `FT`/`AET`/`Pen.` at the end, the kickoff time before.
 * Returns {text, live, long} where `long` is the same for screen readers.
 */
export function statusLabel(snapshot, nowMs) {
  const { sport, status, period } = snapshot;
  switch (status) {
    case "live": {
      if (sport === "tennis") return { text: `Set ${Math.max(period, 1)}`, live: true, long: `live, set ${Math.max(period, 1)}` };
      if (sport === "football" && period === 5) return { text: "Pens", live: true, long: "live, penalty shoot-out" };
      const clock = clockLabel(snapshot, nowMs);
      if (sport === "basketball") {
        const name = periodName(sport, Math.max(period, 1));
        return { text: clock ? `${name} ${clock}` : name, live: true, long: `live, ${name}${clock ? `, ${clock} left` : ""}` };
      }
      if (clock) return { text: clock, live: true, long: `live, minute ${clock.replace("'", "")}` };
      return { text: "Live", live: true, long: "live" };
    }
    case "break": {
      if (sport === "football") {
        const breaks = {
          1: ["HT", "half-time"],
          2: ["90'", "end of normal time"],
          3: ["ET HT", "extra-time half-time"],
          4: ["120'", "end of extra time"],
        };
        const [text, long] = breaks[period] ?? ["Break", "break"];
        return { text, live: true, long };
      }
      if (sport === "basketball") {
        const text = period === 2 ? "Half" : `End ${periodName(sport, period)}`;
        return { text, live: true, long: period === 2 ? "half-time" : `end of ${periodName(sport, period)}` };
      }
      return { text: "Break", live: true, long: "break" };
    }
    case "suspended":
      return { text: "Susp.", live: true, long: "suspended" };
    case "finished": {
      if (sport === "football") {
        if (snapshot.shootout) return { text: "Pen.", live: false, long: "finished after penalties" };
        if (snapshot.periods.some((p) => p.period >= 3)) return { text: "AET", live: false, long: "finished after extra time" };
        return { text: "FT", live: false, long: "full time" };
      }
      return { text: "Final", live: false, long: "final" };
    }
    case "abandoned":
      return { text: "Aband.", live: false, long: "abandoned" };
    case "postponed":
      return { text: "Postp.", live: false, long: "postponed" };
    default: {
      const kickoff = snapshot.kickoff_ms ? kickoffLabel(snapshot.kickoff_ms, nowMs) : "TBC";
      return { text: kickoff, live: false, long: `starts ${kickoff}` };
    }
  }
}

/** A kickoff as local time, with the day when it is not today. */
export function kickoffLabel(kickoffMs, nowMs) {
  const date = new Date(kickoffMs);
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (new Date(nowMs).toDateString() === date.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" })} ${time}`;
}

/** A long status line for the detail view, e.g. `Full time · Argentina win 4–2 on penalties`. */
export function statusLine(snapshot, nowMs) {
  const label = statusLabel(snapshot, nowMs);
  const parts = [];
  if (snapshot.status === "finished") {
    parts.push(label.long[0].toUpperCase() + label.long.slice(1));
    if (snapshot.shootout && snapshot.winner) {
      const winner = snapshot[snapshot.winner];
      const shootout = snapshot.shootout;
      parts.push(`${winner.name} win ${Math.max(shootout.home, shootout.away)}–${Math.min(shootout.home, shootout.away)} on penalties`);
    } else if (snapshot.winner && snapshot.sport !== "football") {
      parts.push(`${snapshot[snapshot.winner].name} won`);
    }
  } else if (snapshot.status === "live" && snapshot.sport === "football") {
    parts.push(periodName("football", snapshot.period));
  } else {
    parts.push(label.long[0].toUpperCase() + label.long.slice(1));
  }
  return parts.join(" · ");
}

/** The minute (or quarter clock, or set) a timeline entry happened at. */
export function entryTime(snapshot, entry) {
  const sport = snapshot.sport;
  if (sport === "tennis") return `S${Math.max(entry.in_period, 1)}`;
  if (entry.clock_secs === undefined || entry.clock_secs === null) return "";
  const clock = formatClock(sport, entry.in_period, entry.clock_secs, snapshot.period_secs);
  if (sport === "basketball") return `${periodName(sport, Math.max(entry.in_period, 1))} ${clock}`;
  return clock;
}

/** What a timeline entry says: {icon, title, detail}. `icon` names an icon in view.js. */
export function describeEntry(snapshot, entry) {
  const team = (side) => snapshot[side]?.name || side;
  const sport = snapshot.sport;
  switch (entry.kind) {
    case "goal": {
      const how = [entry.penalty ? "penalty" : null, entry.own_goal ? "own goal" : null].filter(Boolean).join(", ");
      return { icon: entry.own_goal ? "own-goal" : "goal", title: entry.player ?? `Goal for ${team(entry.side)}`, detail: how ? `Goal (${how})` : "Goal" };
    }
    case "shootout_kick":
      return { icon: entry.scored ? "pen-scored" : "pen-missed", title: entry.player ?? team(entry.side), detail: entry.scored ? "Penalty scored" : "Penalty missed" };
    case "points":
      return { icon: "points", title: entry.player ?? team(entry.side), detail: `${entry.points} point${entry.points === 1 ? "" : "s"}` };
    case "point":
      return { icon: "game", title: team(entry.side), detail: "Won the game" };
    case "card": {
      const names = { yellow: "Yellow card", second_yellow: "Second yellow, sent off", red: "Red card" };
      return { icon: entry.card === "yellow" ? "yellow" : "red", title: entry.player ?? team(entry.side), detail: names[entry.card] ?? "Card" };
    }
    case "substitution":
      return { icon: "sub", title: entry.player_on ?? "Substitution", detail: entry.player_off ? `for ${entry.player_off}` : "Substitution" };
    case "period_started":
      return { icon: "whistle", title: periodStartTitle(sport, entry.period), detail: "", marker: true };
    case "period_ended":
      return { icon: "whistle", title: periodEndTitle(sport, entry.period), detail: periodScoreText(snapshot, entry.period), marker: true };
    case "match_started":
      return { icon: "whistle", title: sport === "football" ? "Kick-off" : "Match started", detail: "", marker: true };
    case "match_ended":
      return { icon: "whistle", title: sport === "football" ? "Full time" : "Final", detail: `${snapshot.score.home}–${snapshot.score.away}`, marker: true };
    case "status_changed": {
      const names = { suspended: "Suspended", live: "Resumed", abandoned: "Abandoned", postponed: "Postponed", finished: "Finished", break: "Break", scheduled: "Rescheduled" };
      return { icon: "info", title: names[entry.status] ?? entry.status, detail: entry.reason ?? "", marker: true };
    }
    case "correction":
      return { icon: "var", title: entry.replacement ? "Correction" : "Decision overturned", detail: `Event ${entry.corrects} ${entry.replacement ? "amended" : "voided"}`, marker: true };
    default:
      return { icon: "info", title: entry.kind, detail: "", marker: true };
  }
}

function periodStartTitle(sport, period) {
  if (sport === "football") return ["Kick-off", "Second half", "Extra time", "Extra time, 2nd half", "Penalty shoot-out"][period - 1] ?? "Restart";
  return `${periodName(sport, period)} started`;
}

function periodEndTitle(sport, period) {
  if (sport === "football") return ["Half-time", "End of normal time", "Extra time half-time", "End of extra time", "End of shoot-out"][period - 1] ?? "Break";
  return `End of ${periodName(sport, period)}`;
}

function periodScoreText(snapshot, period) {
  if (snapshot.sport !== "football") {
    const entry = snapshot.periods.find((p) => p.period === period);
    return entry ? `${entry.home}–${entry.away}` : "";
  }
  // Football: the running score at the end of the period.
  let home = 0;
  let away = 0;
  for (const entry of snapshot.periods) {
    if (entry.period > period) break;
    home += entry.home;
    away += entry.away;
  }
  return `${home}–${away}`;
}

/** A team's short code, or initials of its name. */
export function teamCode(team) {
  if (team.code) return team.code.slice(0, 3).toUpperCase();
  const words = (team.name || "?").split(/\s+/).filter(Boolean);
  if (words.length === 1) return words[0].slice(0, 3).toUpperCase();
  return words.map((word) => word[0]).join("").slice(0, 3).toUpperCase();
}

/** A stable hue for a team's crest, from its name. */
export function teamHue(team) {
  let hash = 2166136261;
  for (const char of team.name || team.code || "?") {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return hash % 360;
}

/** The current tennis game as the umpire calls it, e.g. `40–AD`, or null between games. */
export function gameCall(snapshot) {
  if (!snapshot.game) return null;
  return { home: tennisCall(snapshot.game, "home"), away: tennisCall(snapshot.game, "away"), tiebreak: snapshot.game.tiebreak };
}

/** Goal scorers per side for a football summary: `Messi 23' (P), 108'`. */
export function scorers(snapshot, side) {
  const byPlayer = new Map();
  for (const entry of snapshot.timeline) {
    if (entry.kind !== "goal" || entry.voided || entry.side !== side) continue;
    const name = entry.player ?? "Goal";
    const minute = `${entryTime(snapshot, entry)}${entry.penalty ? " (P)" : ""}${entry.own_goal ? " (OG)" : ""}`;
    if (!byPlayer.has(name)) byPlayer.set(name, []);
    byPlayer.get(name).push(minute);
  }
  return [...byPlayer].map(([name, minutes]) => `${name} ${minutes.join(", ")}`);
}

/** A spoken summary of a match for screen readers, e.g. `Argentina 3, France 3, full time`. */
export function spokenSummary(snapshot, nowMs) {
  const label = statusLabel(snapshot, nowMs);
  let text = `${snapshot.home.name} ${snapshot.score.home}, ${snapshot.away.name} ${snapshot.score.away}`;
  if (snapshot.sport === "tennis") text = `${snapshot.home.name} ${snapshot.score.home} sets, ${snapshot.away.name} ${snapshot.score.away} sets`;
  if (snapshot.shootout) text += `, penalties ${snapshot.shootout.home}–${snapshot.shootout.away}`;
  return `${text}, ${label.long}`;
}

/** How long ago `ms` was, for a fan: `just now`, `2 min ago`. */
export function ago(ms, nowMs) {
  const secs = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (secs < 10) return "just now";
  if (secs < 60) return `${secs} s ago`;
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min ago`;
  return `${Math.round(mins / 60)} h ago`;
}

/** A delay as a fan reads it: `0.3 s`, `12 s`, `2 min`. */
export function delayLabel(ms) {
  if (ms < 1_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
