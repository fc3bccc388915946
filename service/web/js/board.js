// The board: the page's copy of every match it receives, kept exact by snapshots and seq, as
// the desktop viewer's Scoreboard does (viewer/src/scoreboard.rs). Board.apply folds one server
// message in and reports what the caller must do: matches with a hole in their history that need
// a fresh snapshot, and what a fan should be told (a goal, a disallowed goal, a final whistle).
// It never trusts an event it cannot place: a duplicate is dropped, a gap or an epoch change is
// reported; a gap that the event's prev_critical_seq proves held only clock/stat readings is
// harmless. No DOM: Node's test runner drives it with plain messages.

import { ApplyError, apply, isInProgress, normalizeSnapshot, newSnapshot } from "./reducer.js";

/** Whether topic prefix `prefix` covers `topic`, by whole segments. */
export function covers(prefix, topic) {
  return topic === prefix || topic.startsWith(`${prefix}/`);
}

/** The listing order fans expect (protocol/src/wire.rs listing_order): live first, then
 * upcoming by kickoff, then the most recently finished. */
export function listingOrder(a, b) {
  const rank = (status) => (isInProgress(status) ? 0 : status === "scheduled" ? 1 : 2);
  const ra = rank(a.status);
  const rb = rank(b.status);
  if (ra !== rb) return ra - rb;
  if (ra === 2) {
    if (a.updated_ms !== b.updated_ms) return b.updated_ms - a.updated_ms;
  } else {
    const ka = a.kickoff_ms ?? -1;
    const kb = b.kickoff_ms ?? -1;
    if (ka !== kb) return ka - kb;
  }
  return a.match < b.match ? -1 : a.match > b.match ? 1 : 0;
}

/** The section a status belongs in: `live`, `upcoming` or `finished`. */
export function sectionOf(status) {
  if (isInProgress(status)) return "live";
  if (status === "scheduled") return "upcoming";
  return "finished";
}

/** `premier-league` → `Premier League`, for feeds that send no display name. */
export function slugToTitle(slug) {
  return slug
    .split("-")
    .filter((word) => word.length > 0)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(" ");
}

/** The competition's display name, or a readable form of its slug. */
export function competitionName(snapshot) {
  return snapshot.competition ?? slugToTitle(snapshot.match.split("/")[1] ?? "");
}

/** The latest timeline entry that scored for `side` (a goal, points or a set-winning game). */
export function lastScoringEntry(snapshot, side) {
  for (let index = snapshot.timeline.length - 1; index >= 0; index -= 1) {
    const entry = snapshot.timeline[index];
    if (entry.voided || entry.side !== side) continue;
    if (entry.kind === "goal" || entry.kind === "points" || entry.kind === "point") return entry;
  }
  return null;
}

function scoreKey(snapshot) {
  const shootout = snapshot.shootout ?? { home: 0, away: 0 };
  return `${snapshot.score.home}:${snapshot.score.away}:${shootout.home}:${shootout.away}`;
}

/** Which side's headline score went up from `before` to `after`, if one did. */
function sideThatScored(before, after) {
  if (after.score.home > before.score.home) return "home";
  if (after.score.away > before.score.away) return "away";
  const was = before.shootout ?? { home: 0, away: 0 };
  const now = after.shootout ?? { home: 0, away: 0 };
  if (now.home > was.home) return "home";
  if (now.away > was.away) return "away";
  return null;
}

/** The followed matches and what the page knows about their freshness. */
export class Board {
  constructor() {
    /** topic → tracked match: {snapshot, confirmedGeneration, repairing, highlight,
     * resyncedGeneration, resumeSentGeneration, delaySecs}. `delaySecs` is the spoiler delay
     * the match's state was sent at: its snapshot and events belong to that timeline. */
    this.matches = new Map();
  }

  /**
   * Folds one server message into the board. `topics` are the subscriptions (a snapshot or
   * event outside them, still in flight after an unsubscribe, is dropped); `generation` is the
   * current connection's, which a snapshot or a gap-free event confirms. `delaySecs` is the
   * connection's spoiler delay, which events and resyncs are sent at; a `subscribed` reply
   * names its own (`delay_secs`, absent when 0).
   * Returns {needsSnapshot, awaitingResync, updated, notices}.
   */
  apply(message, topics, generation, nowMs, delaySecs = 0) {
    const outcome = { needsSnapshot: [], awaitingResync: [], updated: [], notices: [] };
    const subscribed = (topic) => topics.some((prefix) => covers(prefix, topic));
    switch (message.type) {
      case "subscribed": {
        const snapshots = message.snapshots ?? [];
        const resumed = message.resumed ?? [];
        const replyDelaySecs = message.delay_secs ?? 0;
        for (const wire of snapshots) {
          if (subscribed(wire.match)) this.takeSnapshot(normalizeSnapshot(wire), generation, nowMs, outcome, replyDelaySecs);
        }
        for (const topic of resumed) this.confirmResumed(topic, generation, outcome);
        if ((message.omitted ?? 0) === 0) {
          // A complete reply lists every match the server has under these topics: one we hold
          // that it lacks is gone (evicted, a reset server), unless the server resynced it on
          // this connection, or a resync may still follow for a resume point we sent.
          const replyTopics = message.topics ?? [];
          for (const [topic, tracked] of this.matches) {
            const lacking =
              replyTopics.some((prefix) => covers(prefix, topic)) &&
              !snapshots.some((wire) => wire.match === topic) &&
              !resumed.includes(topic);
            if (!lacking || tracked.resyncedGeneration === generation) continue;
            if (tracked.resumeSentGeneration === generation) {
              tracked.resumeSentGeneration = null;
              outcome.awaitingResync.push(topic);
              continue;
            }
            this.matches.delete(topic);
            outcome.updated.push(topic);
          }
        }
        break;
      }
      case "event":
        if (subscribed(message.match)) this.applyEvent(message, generation, nowMs, outcome, delaySecs);
        break;
      case "resync":
        if (message.snapshot && subscribed(message.snapshot.match)) {
          this.takeSnapshot(normalizeSnapshot(message.snapshot), generation, nowMs, outcome, delaySecs);
          const tracked = this.matches.get(message.snapshot.match);
          if (tracked) tracked.resyncedGeneration = generation;
        }
        break;
      default:
        break;
    }
    return outcome;
  }

  confirmResumed(topic, generation, outcome) {
    const tracked = this.matches.get(topic);
    // A match awaiting a repair has no trustworthy resume point; the repair still decides.
    if (tracked && !tracked.repairing) {
      tracked.confirmedGeneration = generation;
      tracked.resumeSentGeneration = null;
      outcome.updated.push(topic);
    }
  }

  takeSnapshot(snapshot, generation, nowMs, outcome, delaySecs) {
    const topic = snapshot.match;
    const tracked = this.matches.get(topic);
    if (!tracked) {
      this.matches.set(topic, {
        snapshot,
        confirmedGeneration: generation,
        repairing: false,
        highlight: null,
        resyncedGeneration: null,
        resumeSentGeneration: null,
        delaySecs,
      });
      outcome.updated.push(topic);
      return;
    }
    tracked.resumeSentGeneration = null;
    const current = tracked.snapshot;
    // Epochs only grow, so (epoch, seq) orders histories: a newer epoch wins with a lower seq.
    const older = snapshot.epoch < current.epoch || (snapshot.epoch === current.epoch && snapshot.seq < current.seq);
    if (older && tracked.delaySecs === delaySecs) {
      // Older than ours (a lagging instance): keeping ours loses nothing; events move it on.
      tracked.repairing = false;
      return;
    }
    tracked.delaySecs = delaySecs;
    if (older) {
      // The match as of a longer spoiler delay: the fan asked to see it later, so it takes the
      // place of ours even though ours is further on, and whatever happened in between must not
      // stay on the screen (a goal badge would give the goal away).
      tracked.snapshot = snapshot;
      tracked.highlight = null;
      tracked.delayMs = undefined;
      tracked.confirmedGeneration = generation;
      tracked.repairing = false;
      outcome.updated.push(topic);
      return;
    }
    if (scoreKey(current) !== scoreKey(snapshot)) {
      // A score that changed while we were away deserves the same highlight as a live one.
      const side = sideThatScored(current, snapshot);
      if (side && snapshot.epoch === current.epoch) {
        const entry = lastScoringEntry(snapshot, side);
        tracked.highlight = { atMs: nowMs, side, kind: snapshot.sport === "football" ? "goal" : "score", entry };
        outcome.notices.push({ kind: "score", match: topic, snapshot, side, entry });
      }
    }
    tracked.snapshot = snapshot;
    tracked.confirmedGeneration = generation;
    tracked.repairing = false;
    outcome.updated.push(topic);
  }

  applyEvent(event, generation, nowMs, outcome, delaySecs) {
    const topic = event.match;
    let tracked = this.matches.get(topic);
    if (!tracked) {
      // A match we hold no snapshot of (scheduled after we subscribed): build it from its
      // events; if its first event is not seq 1 the gap asks for a snapshot.
      tracked = {
        snapshot: newSnapshot(topic),
        confirmedGeneration: generation,
        repairing: false,
        highlight: null,
        resyncedGeneration: null,
        resumeSentGeneration: null,
        delaySecs,
      };
      this.matches.set(topic, tracked);
    }
    const before = { score: { ...tracked.snapshot.score }, shootout: tracked.snapshot.shootout ? { ...tracked.snapshot.shootout } : null };
    let applied;
    try {
      applied = apply(tracked.snapshot, event);
    } catch (error) {
      if (!(error instanceof ApplyError)) throw error;
      // A duplicate is expected (a repair or resume overlapping live events). Anything else
      // means our copy differs from the server's: a fresh snapshot puts it right.
      if (error.code !== "not_newer") this.requestRepair(tracked, topic, outcome);
      return;
    }
    if (applied.missed) {
      this.requestRepair(tracked, topic, outcome);
    } else if (!tracked.repairing) {
      tracked.confirmedGeneration = generation;
    }
    const snapshot = tracked.snapshot;
    const side = sideThatScored(before, snapshot);
    if (event.kind === "goal") {
      const entry = snapshot.timeline.at(-1);
      tracked.highlight = { atMs: nowMs, side: event.side, kind: "goal", entry };
      outcome.notices.push({ kind: "goal", match: topic, snapshot, side: event.side, entry });
    } else if (event.kind === "correction" && !event.replacement) {
      const entry = snapshot.timeline.find((candidate) => candidate.seq === event.corrects);
      if (entry && entry.kind === "goal") {
        tracked.highlight = { atMs: nowMs, side: entry.side, kind: "disallowed", entry };
        outcome.notices.push({ kind: "disallowed", match: topic, snapshot, side: entry.side, entry });
      }
    } else if (event.kind === "match_ended") {
      outcome.notices.push({ kind: "final", match: topic, snapshot });
    } else if (side) {
      const entry = event.kind === "shootout_kick" ? snapshot.timeline.at(-1) : lastScoringEntry(snapshot, side);
      tracked.highlight = { atMs: nowMs, side, kind: event.kind === "shootout_kick" ? "shootout" : "score", entry };
      if (snapshot.sport === "tennis") outcome.notices.push({ kind: "set", match: topic, snapshot, side });
      if (event.kind === "shootout_kick") outcome.notices.push({ kind: "shootout", match: topic, snapshot, side, entry });
    }
    outcome.updated.push(topic);
  }

  requestRepair(tracked, topic, outcome) {
    if (!tracked.repairing) {
      tracked.repairing = true;
      outcome.needsSnapshot.push(topic);
    }
  }

  /** Marks `topic` as awaiting a fresh snapshot. */
  markRepairing(topic) {
    const tracked = this.matches.get(topic);
    if (tracked) tracked.repairing = true;
  }

  /** Records that a resume point for `topic` was sent on connection `generation`. */
  markResumeSent(topic, generation) {
    const tracked = this.matches.get(topic);
    if (tracked) tracked.resumeSentGeneration = generation;
  }

  /**
   * Where each held match can be resumed from after a reconnect at spoiler delay `delaySecs`:
   * [topic, {epoch, seq}], live matches first. A match awaiting a repair (its seq may be past a
   * gap), without any event, or held at another delay (its seq is on another timeline: resuming
   * a match held live at a 40 s delay would show 40 s of events twice) is left out: a fresh
   * snapshot is what those need.
   */
  resumePoints(delaySecs = 0) {
    const points = [];
    for (const [topic, tracked] of this.matches) {
      if (tracked.repairing || tracked.snapshot.seq === 0 || tracked.delaySecs !== delaySecs) continue;
      points.push([topic, { epoch: tracked.snapshot.epoch, seq: tracked.snapshot.seq }, isInProgress(tracked.snapshot.status)]);
    }
    points.sort((a, b) => (a[2] === b[2] ? (a[0] < b[0] ? -1 : 1) : a[2] ? -1 : 1));
    return points.map(([topic, point]) => [topic, point]);
  }

  /** Matches under `topics` that connection `generation` has not confirmed at `delaySecs`. */
  unconfirmedUnder(topics, generation, delaySecs = 0) {
    const found = [];
    for (const [topic, tracked] of this.matches) {
      const unconfirmed = tracked.confirmedGeneration !== generation || tracked.delaySecs !== delaySecs;
      if (unconfirmed && topics.some((prefix) => covers(prefix, topic))) found.push(topic);
    }
    return found;
  }

  /** Forgets matches no subscription covers any more. */
  retainCovered(topics) {
    for (const topic of [...this.matches.keys()]) {
      if (!topics.some((prefix) => covers(prefix, topic))) this.matches.delete(topic);
    }
  }

  /**
   * The board as drawn: matches passing `keep`, in sections (live, upcoming, finished), each
   * grouped by sport and the competition name the snapshots give (with its season), as the
   * desktop viewer groups them: one topic can hold several seasons (`football/champions-league`
   * has the 1999 and the 2005 finals), and each gets its own heading. Groups by sport then name,
   * matches in listing order. A group knows the competition topics its matches are under, which
   * is what a fan follows; `topic` is set when there is exactly one.
   */
  sections(keep = () => true) {
    const sections = new Map([["live", new Map()], ["upcoming", new Map()], ["finished", new Map()]]);
    for (const tracked of this.matches.values()) {
      const snapshot = tracked.snapshot;
      if (snapshot.seq === 0 || !keep(tracked)) continue;
      const [sport, competition] = snapshot.match.split("/");
      const groups = sections.get(sectionOf(snapshot.status));
      const name = competitionName(snapshot);
      const key = `${sport}/${name}`;
      if (!groups.has(key)) groups.set(key, { key, sport: snapshot.sport, sportSlug: sport, competition: name, topics: [], topic: null, matches: [] });
      const group = groups.get(key);
      const topic = `${sport}/${competition}`;
      if (!group.topics.includes(topic)) group.topics.push(topic);
      group.matches.push(tracked);
    }
    const result = [];
    for (const [section, groups] of sections) {
      const list = [...groups.values()];
      for (const group of list) {
        group.matches.sort((a, b) => listingOrder(a.snapshot, b.snapshot));
        group.topics.sort();
        group.topic = group.topics.length === 1 ? group.topics[0] : null;
      }
      list.sort((a, b) => (a.sportSlug === b.sportSlug ? a.competition.localeCompare(b.competition) : sportRank(a.sportSlug) - sportRank(b.sportSlug) || a.sportSlug.localeCompare(b.sportSlug)));
      result.push({ section, groups: list, count: list.reduce((sum, group) => sum + group.matches.length, 0) });
    }
    return result;
  }
}

/**
 * The competitions (topics such as `football/champions-league`) of `tracked` matches, as a Map
 * topic → {topic, sport, name, editions, live, total}: `editions` are the distinct names the
 * snapshots give (`UEFA Champions League 1998-99`, `... 2004-05`) and `name` is what they all
 * begin with (`UEFA Champions League`), as the viewer's catalogue names a competition. A topic
 * is what a fan follows, so the sidebar and the follow buttons use this name, not a season's.
 */
export function competitionEditions(tracked) {
  const topics = new Map();
  for (const { snapshot } of tracked) {
    const [sport, competition] = snapshot.match.split("/");
    const topic = `${sport}/${competition}`;
    const entry = topics.get(topic) ?? { topic, sport, name: "", editions: [], live: 0, total: 0 };
    const name = competitionName(snapshot);
    if (!entry.editions.includes(name)) entry.editions.push(name);
    entry.total += 1;
    if (isInProgress(snapshot.status)) entry.live += 1;
    topics.set(topic, entry);
  }
  for (const entry of topics.values()) {
    entry.editions.sort();
    entry.name = commonName(entry.editions);
  }
  return topics;
}

/** The words every name begins with, or the first name when they share none. */
export function commonName(names) {
  if (names.length === 0) return "";
  let common = names[0].split(/\s+/);
  for (const name of names.slice(1)) {
    const words = name.split(/\s+/);
    let shared = 0;
    while (shared < common.length && common[shared] === words[shared]) shared += 1;
    common = common.slice(0, shared);
  }
  return common.length === 0 ? names[0] : common.join(" ").replace(/[,\-·]+$/, "");
}

/** Sports in the order a general scoreboard lists them; others after, by name. */
export const SPORT_ORDER = ["football", "soccer", "basketball", "tennis"];

function sportRank(slug) {
  const index = SPORT_ORDER.indexOf(slug);
  return index === -1 ? SPORT_ORDER.length : index;
}
