// The spoiler delay a fan chooses ("Sync with my stream"): a fan watching a stream that runs
// 40 s behind the stadium asks the server to send every event 40 s late, so the board never
// shows a goal before the picture does. This module holds the choices offered and the fan's
// choice, kept in localStorage so it survives a reload; the protocol side (what is sent, what a
// reply with another delay means) is in session.js. The store is injected, as in follows.js.

/** The localStorage key; the suffix is the format's version. */
export const STORAGE_KEY = "scoreline.delay.v1";
/** The delays offered in the menu, in seconds (0 is live); any other number can be typed. */
export const DELAY_CHOICES_SECS = [0, 10, 20, 30, 45, 60, 90, 120];

/**
 * A delay from what a fan typed or a store held: a whole number of seconds, at least 0, or null
 * when it is not one (an empty field, a word, a negative number).
 */
export function parseDelaySecs(value) {
  const text = typeof value === "number" ? String(value) : String(value ?? "").trim();
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  return Math.round(Number(text));
}

/** The delay to ask a server for: the fan's choice, capped by the server's limit (null: unknown). */
export function clampDelaySecs(chosenSecs, maxDelaySecs) {
  if (maxDelaySecs === null || maxDelaySecs === undefined) return chosenSecs;
  return Math.min(chosenSecs, Math.max(0, maxDelaySecs));
}

/** The menu's delays a server allowing `maxDelaySecs` accepts. */
export function delayChoices(maxDelaySecs) {
  return DELAY_CHOICES_SECS.filter((secs) => secs <= maxDelaySecs);
}

/** The fan's chosen delay, as stored (0 when none or unreadable). */
export function loadDelaySecs(storage) {
  try {
    return parseDelaySecs(storage?.getItem(STORAGE_KEY)) ?? 0;
  } catch {
    // Storage refused (a private window with storage off): live until the fan chooses.
    return 0;
  }
}

/** Keeps the fan's choice for the next visit. */
export function saveDelaySecs(storage, secs) {
  try {
    storage?.setItem(STORAGE_KEY, String(secs));
  } catch {
    // Storage full or refused: the choice still holds for this visit.
  }
}
