// The connection state machine, as the desktop viewer has it (viewer/src/connection.rs): when to
// connect, when to give up on a socket, when to retry (exponential backoff with jitter), when to
// ping. It owns no socket: it is driven by plain values (what happened, the time) and answers
// with actions the socket adapter in main.js carries out, so tests drive it without a network.

/** First retry delay after a failure, before jitter. */
export const BACKOFF_BASE_MS = 500;
/** Longest retry delay, before jitter: a fan is back within half a minute of the server. */
export const BACKOFF_MAX_MS = 30_000;
/** A connection that lasted this long was healthy; the next failure starts the backoff afresh. */
export const STABLE_CONNECTION_MS = 10_000;
/** A connect attempt not open after this long is abandoned (a dropped SYN would hang for minutes). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How often an application-level ping measures the round trip. */
export const PING_INTERVAL_MS = 5_000;
/** A ping unanswered this long means the connection is dead even if TCP has not noticed. */
export const PONG_TIMEOUT_MS = 15_000;

/**
 * The delay before retry number `attempt` (1 for the first), given a random `unit` in [0, 1):
 * "equal jitter", half fixed (a real countdown for the fan) and half random (so thousands of
 * fans who lost the same server do not all come back in the same millisecond).
 */
export function backoffDelayMs(attempt, unit, baseMs = BACKOFF_BASE_MS, maxMs = BACKOFF_MAX_MS) {
  const exponent = Math.min(Math.max(attempt - 1, 0), 20);
  const capped = Math.min(baseMs * 2 ** exponent, maxMs);
  const half = Math.floor(capped / 2);
  return half + Math.floor(half * Math.min(Math.max(unit, 0), 1));
}

/**
 * States: `{name: "offline"}` (the browser has no network, or the fan switched off),
 * `{name: "connecting", attempt, startedMs}`, `{name: "connected", sinceMs, attempt}`,
 * `{name: "waiting", attempt, retryAtMs, reason}`.
 * Actions: `{type: "connect"}`, `{type: "disconnect"}`, `{type: "ping", id}`.
 */
export class Link {
  constructor(random = Math.random) {
    this.random = random;
    this.state = { name: "offline", reason: null };
    /** Counts opened connections; data is fresh only if confirmed on the current one. */
    this.generation = 0;
    this.nextPingId = 1;
    this.outstandingPing = null;
    this.nextPingMs = 0;
    this.rttMs = null;
  }

  /** Whether the socket is open. */
  get connected() {
    return this.state.name === "connected";
  }

  /** Starts connecting now (skipping any backoff). */
  start(nowMs) {
    const attempt = this.state.name === "waiting" ? this.state.attempt : 1;
    this.state = { name: "connecting", attempt, startedMs: nowMs };
    return [{ type: "connect" }];
  }

  /** Stops: no socket and no retries until `start`; `reason` is shown to the fan. */
  stop(reason) {
    const wasUp = this.state.name === "connecting" || this.state.name === "connected";
    this.state = { name: "offline", reason };
    this.outstandingPing = null;
    return wasUp ? [{ type: "disconnect" }] : [];
  }

  /** The socket opened; returns the new connection's generation. */
  opened(nowMs) {
    const attempt = this.state.attempt ?? 1;
    this.generation += 1;
    this.state = { name: "connected", sinceMs: nowMs, attempt };
    this.outstandingPing = null;
    this.nextPingMs = nowMs;
    return this.generation;
  }

  /** The socket failed to open or closed; schedules the next try. */
  lost(nowMs, reason) {
    if (this.state.name === "offline" || this.state.name === "waiting") return [];
    let attempt = this.state.attempt ?? 1;
    if (this.state.name === "connected") {
      // A healthy connection starts the backoff afresh; a flapping one keeps growing it.
      attempt = nowMs - this.state.sinceMs >= STABLE_CONNECTION_MS ? 1 : attempt + 1;
    } else {
      attempt += 1;
    }
    const delay = backoffDelayMs(attempt - 1, this.random());
    this.state = { name: "waiting", attempt, retryAtMs: nowMs + delay, reason };
    this.outstandingPing = null;
    return [{ type: "disconnect" }];
  }

  /** A pong arrived. */
  pong(id, nowMs) {
    if (this.outstandingPing && this.outstandingPing.id === id) {
      this.rttMs = nowMs - this.outstandingPing.sentMs;
      this.outstandingPing = null;
    }
  }

  /** Moves time forward: retries, connect timeouts, pings and pong timeouts. */
  tick(nowMs) {
    const state = this.state;
    if (state.name === "waiting" && nowMs >= state.retryAtMs) return this.start(nowMs);
    if (state.name === "connecting" && nowMs - state.startedMs >= CONNECT_TIMEOUT_MS) {
      return this.lost(nowMs, "the server did not answer");
    }
    if (state.name === "connected") {
      if (this.outstandingPing && nowMs - this.outstandingPing.sentMs >= PONG_TIMEOUT_MS) {
        return this.lost(nowMs, "the server stopped answering");
      }
      if (!this.outstandingPing && nowMs >= this.nextPingMs) {
        const id = this.nextPingId++;
        this.outstandingPing = { id, sentMs: nowMs };
        this.nextPingMs = nowMs + PING_INTERVAL_MS;
        return [{ type: "ping", id }];
      }
    }
    return [];
  }

  /** Milliseconds until the next retry, while waiting. */
  retryInMs(nowMs) {
    return this.state.name === "waiting" ? Math.max(0, this.state.retryAtMs - nowMs) : null;
  }
}
