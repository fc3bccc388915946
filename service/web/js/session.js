// The session: the page's whole model without a socket or a screen, as the desktop viewer has it
// (viewer/src/session.rs). It joins the Board, the Link state machine and the server's catalogue,
// and decides what to send: the subscription after every (re)connect, with the point each held
// match can be resumed from; a fresh snapshot for a match with a gap; pings; catalogue refreshes;
// requests the server refused as rate-limited, once more a second later; the fan's spoiler
// delay (spoiler.js), named in every subscription and changed with one subscribe. Inputs are
// plain values (a frame's text, "the socket opened", the time); outputs are actions queued for
// main.js.

import { Board, covers } from "./board.js";
import { Link } from "./link.js";
import { clampDelaySecs } from "./spoiler.js";

/** The protocol version this page speaks (welcome.protocol). */
export const PROTOCOL_VERSION = 1;
/** Sports subscribed from the first connection on; others join as the catalogue shows them. */
export const DEFAULT_SPORTS = ["football", "basketball", "tennis"];
/** How often the catalogue is asked for again, so new sports appear without a reload. */
export const CATALOGUE_REFRESH_MS = 30_000;
/** At most this many matches are re-subscribed in one request, so a burst of gaps never floods. */
export const MAX_REPAIRS_PER_REQUEST = 16;
/** How long to hold back after a rate-limited refusal; the server allows bursts of twice its rate. */
export const RATE_LIMIT_RETRY_MS = 1_000;
/** The frame limit assumed before a welcome announced the server's own. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024;
/** Readings of how far behind the source events arrive, kept for a rolling median. */
export const DELAY_WINDOW = 31;
/** Events in the first seconds of a connection are mostly the catch-up of a resume (old by
 * design), not live ones, so they do not count as "behind the stadium". */
export const DELAY_SETTLE_MS = 3_000;
/** How long a requested delay may go unconfirmed before the page says the server ignored it. */
export const DELAY_CONFIRM_MS = 5_000;
/** A topic is one to three lowercase slugs joined by `/`. */
const TOPIC = /^[a-z0-9]+(?:-[a-z0-9]+)*(?:\/[a-z0-9]+(?:-[a-z0-9]+)*){0,2}$/;

export class Session {
  constructor({ random = Math.random, sports = DEFAULT_SPORTS, delaySecs = 0 } = {}) {
    this.link = new Link(random);
    this.board = new Board();
    /** Subscribed topics: whole sports, so the page shows everything that is on. */
    this.topics = [...sports];
    this.catalogue = { matches: [], omitted: 0, receivedMs: null };
    this.server = null;
    this.pendingRepairs = new Set();
    this.repairsInFlight = new Set();
    this.awaitingResync = new Set();
    this.retryRequests = [];
    this.retryRequestsAtMs = null;
    this.nextCatalogueMs = null;
    this.lastProblem = null;
    this.ignoredFrames = 0;
    this.catchUp = { resumePointsSent: 0, resumed: 0, resynced: 0, snapshots: 0 };
    /** Whether the first subscribed reply of this page's life has come (to end the loading state). */
    this.loaded = false;
    this.actions = [];
    this.notices = [];
    /** Bumped whenever something shown may have changed, so the view knows to redraw. */
    this.version = 0;
    /** Recent source-to-screen delays (ms) of live events, newest last. */
    this.delays = [];
    /** The match the fan has open: subscribed by its own topic, which makes the fan one of
     * its watchers (the `watching` count). */
    this.watching = null;
    /** Fans watching, per match, as the server last told. */
    this.fans = new Map();
    /** The spoiler delay the fan chose, in seconds (0: live). */
    this.delaySecs = delaySecs;
    /** The longest delay the last server's welcome allows (null before any welcome). */
    this.maxDelaySecs = null;
    /** The delay this connection was asked for (0 until a subscribe names one). */
    this.requestedDelaySecs = 0;
    /** The delay the server last confirmed in a `subscribed` reply: what the board shows. */
    this.confirmedDelaySecs = 0;
    /** When the delay was last asked for, to tell a slow reply from a server that ignores it. */
    this.delayRequestedMs = null;
    /** Set while the subscription waits for the welcome: a delay needs the server's limit. */
    this.subscribeOnWelcome = null;
  }

  /** Starts connecting (or connects now, skipping the rest of a backoff). */
  start(nowMs) {
    this.pushLink(this.link.start(nowMs));
    this.version += 1;
  }

  /** Stops until `start`: the browser went offline. */
  stop(reason) {
    this.pushLink(this.link.stop(reason));
    this.nextCatalogueMs = null;
    this.version += 1;
  }

  /** The socket opened: subscribe with resume points, ask for the catalogue, start pinging. */
  opened(nowMs) {
    const generation = this.link.opened(nowMs);
    const maxFrameBytes = this.server?.limits?.max_frame_bytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.server = null;
    this.pendingRepairs.clear();
    this.repairsInFlight.clear();
    this.awaitingResync.clear();
    this.retryRequests = [];
    this.retryRequestsAtMs = null;
    this.catchUp = { resumePointsSent: 0, resumed: 0, resynced: 0, snapshots: 0 };
    this.requestedDelaySecs = 0;
    if (this.delaySecs > 0) {
      // The welcome (the server's first frame) says how long a delay it allows; asking for more
      // would have the whole subscription refused, and subscribing live first would show the
      // fan the very scores the delay is for. So a delayed subscription waits for it.
      this.subscribeOnWelcome = { maxFrameBytes, generation, nowMs };
    } else {
      this.subscribeOnWelcome = null;
      this.send(this.resubscribeRequest(maxFrameBytes, generation, nowMs));
    }
    this.requestCatalogue(nowMs);
    this.tick(nowMs);
    this.version += 1;
  }

  /**
   * The subscribe sent on every connection: every topic, the fan's delay (when not live), with a
   * resume point for each held match that has one at that delay, as many as fit in the server's
   * frame limit (live matches first). A match left out simply gets a snapshot.
   */
  resubscribeRequest(maxFrameBytes, generation, nowMs) {
    const message = { type: "subscribe", topics: this.allTopics() };
    const delaySecs = this.effectiveDelaySecs();
    if (delaySecs > 0) {
      message.delay_secs = delaySecs;
      this.delayRequestedMs = nowMs;
    }
    this.requestedDelaySecs = delaySecs;
    let size = JSON.stringify(message).length + ',"resume":{}'.length;
    const resume = {};
    for (const [topic, point] of this.board.resumePoints(delaySecs)) {
      const entry = `"${topic}":{"epoch":${point.epoch},"seq":${point.seq}},`.length;
      if (size + entry > maxFrameBytes) continue;
      size += entry;
      resume[topic] = point;
      this.board.markResumeSent(topic, generation);
    }
    this.catchUp.resumePointsSent = Object.keys(resume).length;
    if (this.catchUp.resumePointsSent > 0) message.resume = resume;
    return message;
  }

  /** Every topic of a full subscription: the sports and the match the fan has open. */
  allTopics() {
    return [...this.topics, ...(this.watching ? [this.watching] : [])];
  }

  /** The delay to ask the server for: the fan's, capped by the server's limit. */
  effectiveDelaySecs() {
    return clampDelaySecs(this.delaySecs, this.maxDelaySecs);
  }

  /** Whether the server offers a spoiler delay at all (unknown before its first welcome). */
  get delayOffered() {
    return (this.maxDelaySecs ?? 0) > 0;
  }

  /**
   * The fan chose a spoiler delay (0: live). One subscribe naming every topic moves the whole
   * connection to it; its reply brings every match as of the new delay. Returns the delay kept.
   */
  setDelay(secs, nowMs) {
    const chosen = Math.max(0, Math.round(secs));
    if (chosen === this.delaySecs) return chosen;
    this.delaySecs = chosen;
    this.syncDelay(nowMs);
    this.version += 1;
    return chosen;
  }

  /** Asks this connection for the fan's delay if it runs at another one. */
  syncDelay(nowMs) {
    if (!this.link.connected || this.server === null || this.subscribeOnWelcome !== null) return;
    const delaySecs = this.effectiveDelaySecs();
    if (delaySecs === this.requestedDelaySecs) return;
    // delay_secs 0 is said out loud: a subscribe without it keeps the connection's delay.
    this.send({ type: "subscribe", topics: this.allTopics(), delay_secs: delaySecs });
    this.requestedDelaySecs = delaySecs;
    this.delayRequestedMs = nowMs;
  }

  /**
   * How the delay stands, for the view: `shown` is what the board is at (the server confirmed
   * it), `pending` a requested delay not confirmed yet, `ignored` true when the server answered
   * without applying it (a server that has no spoiler delay but does not say so).
   */
  delayStatus(nowMs) {
    const pending = this.requestedDelaySecs !== this.confirmedDelaySecs;
    return {
      shown: this.confirmedDelaySecs,
      pending: pending ? this.requestedDelaySecs : null,
      ignored: pending && this.link.connected && this.delayRequestedMs !== null && nowMs - this.delayRequestedMs > DELAY_CONFIRM_MS,
    };
  }

  /** The socket failed or closed: everything shown may be stale until the next connection. */
  lost(nowMs, reason) {
    this.pushLink(this.link.lost(nowMs, reason));
    this.nextCatalogueMs = null;
    this.version += 1;
  }

  /** A text frame. Anything unreadable is counted and ignored: a newer server must not break us. */
  receiveText(text, nowMs) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      this.ignoredFrames += 1;
      this.lastProblem = `ignored a frame it could not read: ${error.message}`;
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.type !== "string") {
      this.ignoredFrames += 1;
      return;
    }
    this.receive(message, nowMs);
  }

  /** One parsed server message; unknown types are ignored (the protocol may add some). */
  receive(message, nowMs) {
    switch (message.type) {
      case "welcome": {
        if (message.protocol !== PROTOCOL_VERSION) {
          this.lastProblem = `the server speaks protocol ${message.protocol}, this page ${PROTOCOL_VERSION}`;
        }
        this.server = message;
        const max = message.limits?.max_delay_secs;
        this.maxDelaySecs = typeof max === "number" && max > 0 ? max : 0;
        const waiting = this.subscribeOnWelcome;
        if (waiting && waiting.generation === this.link.generation) {
          this.subscribeOnWelcome = null;
          this.send(this.resubscribeRequest(message.limits?.max_frame_bytes ?? waiting.maxFrameBytes, waiting.generation, nowMs));
        } else {
          // Subscribed live before the welcome (the fan chose a delay meanwhile): ask for it now.
          this.syncDelay(nowMs);
        }
        break;
      }
      case "pong":
        this.link.pong(message.id, nowMs);
        if (typeof message.server_ms === "number") this.serverOffsetMs = message.server_ms - nowMs;
        return;
      case "watching":
        if (typeof message.match === "string" && typeof message.fans === "number") this.fans.set(message.match, message.fans);
        break;
      case "catalogue":
        this.catalogue = { matches: message.matches ?? [], omitted: message.omitted ?? 0, receivedMs: nowMs };
        this.addSportsFrom(message.matches ?? []);
        break;
      case "error":
        this.lastProblem = `server: ${message.message}`;
        if (message.code === "rate_limited") this.retryLater(message.request, nowMs);
        else this.delayRefused(message.request);
        break;
      case "subscribed": {
        const replyDelaySecs = message.delay_secs ?? 0;
        if (replyDelaySecs !== this.confirmedDelaySecs) {
          // The board moves to another timeline: how far behind it runs is measured afresh.
          this.confirmedDelaySecs = replyDelaySecs;
          this.delays = [];
          for (const tracked of this.board.matches.values()) tracked.delayMs = undefined;
        }
        const resumed = message.resumed ?? [];
        this.catchUp.snapshots += (message.snapshots ?? []).filter((s) => this.board.matches.has(s.match)).length;
        this.catchUp.resumed += resumed.filter((topic) => this.board.matches.has(topic)).length;
        this.finishRepairs(message.topics ?? []);
        this.loaded = true;
        break;
      }
      case "resync":
        if (message.snapshot) {
          this.catchUp.resynced += 1;
          this.pendingRepairs.delete(message.snapshot.match);
          this.awaitingResync.delete(message.snapshot.match);
        }
        break;
      default:
        break;
    }
    const outcome = this.board.apply(message, this.subscribedTopics(), this.link.generation, nowMs, this.confirmedDelaySecs);
    if (message.type === "event" && outcome.updated.length > 0) this.observeDelay(message, nowMs);
    for (const topic of outcome.needsSnapshot) this.pendingRepairs.add(topic);
    for (const topic of outcome.awaitingResync) this.awaitingResync.add(topic);
    this.notices.push(...outcome.notices);
    if (message.type === "subscribed" && (message.omitted ?? 0) > 0) {
      // A capped reply: held matches without a snapshot in it may have moved on; ask one by one.
      for (const topic of this.board.unconfirmedUnder(message.topics ?? [], this.link.generation, this.confirmedDelaySecs)) {
        this.pendingRepairs.add(topic);
      }
    }
    if (outcome.updated.length > 0 || message.type !== "event") this.version += 1;
    this.flushRepairs();
  }

  /**
   * How far behind the source (the feed's `ts_ms`, on the server's clock as the last pong told
   * it) a live event reached this page: what "behind the stadium" means to a fan.
   */
  observeDelay(event, nowMs) {
    const state = this.link.state;
    if (state.name !== "connected" || nowMs - state.sinceMs < DELAY_SETTLE_MS || typeof event.ts_ms !== "number") return;
    const delayMs = Math.max(0, this.serverNowMs(nowMs) - event.ts_ms);
    const tracked = this.board.matches.get(event.match);
    if (tracked) tracked.delayMs = delayMs;
    this.delays.push(delayMs);
    if (this.delays.length > DELAY_WINDOW) this.delays.shift();
  }

  /** The median delay of recent live events, or null before any. */
  delayMs() {
    if (this.delays.length === 0) return null;
    const sorted = [...this.delays].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  /**
   * The fan opened `topic` (or closed it, with null): subscribe to the match itself, so the
   * server counts the fan among its watchers, and drop the previous one.
   */
  watch(topic) {
    if (topic === this.watching) return;
    const previous = this.watching;
    this.watching = topic;
    if (previous) this.fans.delete(previous);
    if (!this.link.connected) return;
    if (previous && !this.repairsInFlight.has(previous)) this.send({ type: "unsubscribe", topics: [previous] });
    if (topic) this.send({ type: "subscribe", topics: [topic] });
    this.version += 1;
  }

  /** Every topic the board keeps matches of: the sports, and matches being repaired. */
  subscribedTopics() {
    return [...this.topics, ...this.repairsInFlight];
  }

  addSportsFrom(summaries) {
    const added = [];
    for (const summary of summaries) {
      const sport = String(summary.match ?? "").split("/")[0];
      if (TOPIC.test(sport) && !this.topics.includes(sport) && !added.includes(sport)) added.push(sport);
    }
    if (added.length === 0) return;
    this.topics.push(...added);
    if (this.link.connected) this.send({ type: "subscribe", topics: added });
  }

  /** A request refused as rate-limited is sent again shortly; pings are not (another comes). */
  retryLater(request, nowMs) {
    let parsed = null;
    try {
      parsed = typeof request === "string" ? JSON.parse(request) : null;
    } catch {
      parsed = null;
    }
    if (parsed && parsed.type === "ping") return;
    if (parsed && typeof parsed.type === "string") {
      this.retryRequests.push(parsed);
    } else {
      // The echo was cut (long requests are): re-ask for the repairs that were in flight.
      for (const topic of this.repairsInFlight) this.pendingRepairs.add(topic);
      this.repairsInFlight.clear();
    }
    this.retryRequestsAtMs = nowMs + RATE_LIMIT_RETRY_MS;
  }

  /** A subscribe naming a delay was refused (not rate-limited): the connection keeps its own. */
  delayRefused(request) {
    let parsed = null;
    try {
      parsed = typeof request === "string" ? JSON.parse(request) : null;
    } catch {
      parsed = null;
    }
    if (parsed?.type === "subscribe" && typeof parsed.delay_secs === "number") this.requestedDelaySecs = this.confirmedDelaySecs;
  }

  /** Drops the temporary subscriptions of repairs that `subscribed` just answered. */
  finishRepairs(topics) {
    const drop = topics.filter((topic) => this.repairsInFlight.delete(topic) && !this.topics.includes(topic) && topic !== this.watching);
    if (drop.length > 0) this.send({ type: "unsubscribe", topics: drop });
  }

  /**
   * Asks for a fresh snapshot of every match with a pending repair: a resume point cannot help
   * (the match's seq already moved past the gap), so the match is subscribed on its own and
   * unsubscribed once its snapshot came, while the sport subscription keeps delivering.
   * Duplicate events in the overlap are dropped by seq.
   */
  flushRepairs() {
    if (!this.link.connected || this.pendingRepairs.size === 0 || this.retryRequestsAtMs !== null) return;
    const batch = [];
    for (const topic of [...this.pendingRepairs]) {
      if (batch.length >= MAX_REPAIRS_PER_REQUEST) break;
      this.pendingRepairs.delete(topic);
      if (this.repairsInFlight.has(topic) || !this.topics.some((prefix) => covers(prefix, topic))) continue;
      this.board.markRepairing(topic);
      batch.push(topic);
    }
    if (batch.length === 0) return;
    this.send({ type: "subscribe", topics: batch });
    for (const topic of batch) this.repairsInFlight.add(topic);
  }

  requestCatalogue(nowMs) {
    if (!this.link.connected) return;
    this.send({ type: "list" });
    this.nextCatalogueMs = nowMs + CATALOGUE_REFRESH_MS;
  }

  /**
   * Moves time forward: reconnects, pings, timeouts, catalogue refreshes, leftover repairs. The
   * adapter ticks after handing over the frames that arrived, so a match still awaiting its
   * resync here got none with the reply: a repair asks for its snapshot.
   */
  tick(nowMs) {
    if (this.awaitingResync.size > 0) {
      for (const topic of this.awaitingResync) this.pendingRepairs.add(topic);
      this.awaitingResync.clear();
    }
    const linkActions = this.link.tick(nowMs);
    if (linkActions.some((action) => action.type !== "ping")) this.version += 1;
    this.pushLink(linkActions);
    if (this.nextCatalogueMs !== null && nowMs >= this.nextCatalogueMs) this.requestCatalogue(nowMs);
    if (this.retryRequestsAtMs !== null && nowMs >= this.retryRequestsAtMs && this.link.connected) {
      this.retryRequestsAtMs = null;
      const requests = this.retryRequests;
      this.retryRequests = [];
      for (const message of requests) {
        // A delay the fan has changed since is not asked for again: the latest choice is.
        this.send("delay_secs" in message ? { ...message, delay_secs: this.requestedDelaySecs } : message);
      }
    }
    this.flushRepairs();
  }

  send(message) {
    this.actions.push({ type: "send", message });
  }

  pushLink(actions) {
    for (const action of actions) {
      if (action.type === "ping") this.send({ type: "ping", id: action.id });
      else this.actions.push(action);
    }
  }

  /** Takes the queued actions, oldest first. */
  takeActions() {
    const actions = this.actions;
    this.actions = [];
    return actions;
  }

  /** Takes what the fan should be told (goals, finals...), oldest first. */
  takeNotices() {
    const notices = this.notices;
    this.notices = [];
    return notices;
  }

  /**
   * Whether a match's state is confirmed by the current connection and by the server: anything
   * else is shown as possibly out of date (reconnecting, being repaired, or a snapshot the
   * server itself marked `stale`).
   */
  isFresh(tracked) {
    return (
      this.link.connected &&
      tracked.confirmedGeneration === this.link.generation &&
      !tracked.repairing &&
      !tracked.snapshot.stale
    );
  }

  /** The server's clock now, as the last pong told it (the local clock until one came). */
  serverNowMs(nowMs) {
    return nowMs + (this.serverOffsetMs ?? 0);
  }
}
