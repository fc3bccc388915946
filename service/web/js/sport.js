// Sports and their rules, as protocol/src/sport.rs defines them: which sport a topic names,
// period lengths and names, how a clock reads, and the tennis set rules. Pure functions, no DOM.

/** The sport a topic's first segment names: `football`, `basketball`, `tennis` or `other`. */
export function sportOf(slug) {
  switch (slug) {
    case "football":
    case "soccer":
      return "football";
    case "basketball":
      return "basketball";
    case "tennis":
      return "tennis";
    default:
      return "other";
  }
}

/** Regular length of one period in seconds, for sports with a game clock; null otherwise. */
export function defaultPeriodSecs(sport) {
  if (sport === "football") return 45 * 60;
  if (sport === "basketball") return 12 * 60;
  return null;
}

/** The clock reading at which `period` starts: football runs on from kickoff, basketball restarts. */
export function periodStartSecs(sport, period) {
  if (sport !== "football") return 0;
  if (period <= 1) return 0;
  if (period === 2) return 45 * 60;
  if (period === 3) return 90 * 60;
  return 105 * 60;
}

/** A short name for period `period`, e.g. `1st half`, `Q3`, `OT1`, `Set 2`. */
export function periodName(sport, period) {
  if (period === 0) return "Pre-match";
  switch (sport) {
    case "football":
      return ["1st half", "2nd half", "Extra time 1", "Extra time 2"][period - 1] ?? "Penalties";
    case "basketball":
      return period <= 4 ? `Q${period}` : `OT${period - 4}`;
    case "tennis":
      return `Set ${period}`;
    default:
      return `Period ${period}`;
  }
}

/** A column heading for a period in a score table: `1H`, `Q1`, `OT`, `S1`. */
export function periodShortName(sport, period) {
  switch (sport) {
    case "football":
      return ["1H", "2H", "ET1", "ET2"][period - 1] ?? "PEN";
    case "basketball":
      return period <= 4 ? `Q${period}` : `OT${period - 4}`;
    case "tennis":
      return `S${period}`;
    default:
      return `P${period}`;
  }
}

/** How a fan reads the clock: football `67'` or `45+2'`, basketball the time left in the period. */
export function formatClock(sport, period, clockSecs, periodSecs) {
  if (sport === "football") {
    const minute = Math.floor(clockSecs / 60) + 1;
    const periodEndMinute = { 1: 45, 2: 90, 3: 105 }[period] ?? 120;
    return minute > periodEndMinute
      ? `${periodEndMinute}+${minute - periodEndMinute}'`
      : `${minute}'`;
  }
  if (sport === "basketball") {
    const length = period > 4 ? 5 * 60 : (periodSecs ?? 12 * 60);
    const left = Math.max(0, length - clockSecs);
    return `${pad2(Math.floor(left / 60))}:${pad2(left % 60)}`;
  }
  return `${Math.floor(clockSecs / 60)}:${pad2(clockSecs % 60)}`;
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** The tennis format the reducer assumes when a match announced none. */
export const DEFAULT_TENNIS = Object.freeze({ best_of: 3, final_set: "tiebreak_to10" });

/** Sets a player needs to win the match. */
export function setsToWin(format) {
  return Math.floor(format.best_of / 2) + 1;
}

function isDecidingSet(format, set) {
  return set === format.best_of;
}

/** The games-all score at which set `set` goes to a tie-break; null when played out by two games. */
export function tiebreakAtGames(format, set) {
  if (!isDecidingSet(format, set)) return 6;
  switch (format.final_set) {
    case "advantage":
      return null;
    case "tiebreak_at_12_all":
      return 12;
    default:
      return 6;
  }
}

/** Points that win the tie-break of set `set` (with a two-point lead). */
export function tiebreakPoints(format, set) {
  return isDecidingSet(format, set) && (format.final_set ?? "tiebreak_to10") === "tiebreak_to10"
    ? 10
    : 7;
}

/** The side ahead in a `{home, away}` pair, or null when level. */
export function leader(score) {
  if (score.home > score.away) return "home";
  if (score.away > score.home) return "away";
  return null;
}

/** The other side. */
export function opponent(side) {
  return side === "home" ? "away" : "home";
}

/** Who has won set `set` with these games: six or more by two, or one more than the tie-break score. */
export function setWinner(format, set, games) {
  const side = leader(games);
  if (side === null) return null;
  const mine = games[side];
  const theirs = games[opponent(side)];
  const byTwo = mine >= 6 && mine >= theirs + 2;
  const at = tiebreakAtGames(format, set);
  const byTiebreak = at !== null && mine === at + 1 && theirs === at;
  return byTwo || byTiebreak ? side : null;
}

/** How the umpire calls `side`'s points in a game: `0`, `15`, `30`, `40`, `AD`, or a tie-break number. */
export function tennisCall(game, side) {
  const mine = game[side];
  const theirs = game[opponent(side)];
  if (game.tiebreak) return String(mine);
  if (mine === 0) return "0";
  if (mine === 1) return "15";
  if (mine === 2) return "30";
  if (mine > theirs && theirs >= 3) return "AD";
  return "40";
}
