// What the fan follows: teams (or players) and competitions, remembered in the browser's
// localStorage so they survive a reload. Followed matches are listed first. The store is
// injected, so tests pass a plain object and a browser that refuses storage (a private window
// with storage off) still works for the visit.

/** The localStorage key; the suffix is the format's version, so a later format can migrate. */
export const STORAGE_KEY = "scoreline.follows.v1";
/** Most follows kept of each kind, so a stored list stays small. */
export const MAX_FOLLOWS = 200;

/** The key a team is followed under: its sport and its name (names repeat across sports). */
export function teamKey(sportSlug, team) {
  return `${sportSlug}:${team.name}`;
}

/** The competition topic of a match topic: `football/world-cup/arg-fra` → `football/world-cup`. */
export function competitionTopic(matchTopic) {
  return matchTopic.split("/").slice(0, 2).join("/");
}

export class Follows {
  constructor(storage = null) {
    this.storage = storage;
    this.teams = new Map();
    this.competitions = new Map();
    this.load();
  }

  load() {
    let saved = null;
    try {
      const text = this.storage?.getItem(STORAGE_KEY);
      saved = text ? JSON.parse(text) : null;
    } catch {
      saved = null;
    }
    for (const team of Array.isArray(saved?.teams) ? saved.teams : []) {
      if (typeof team?.key === "string" && typeof team?.name === "string") this.teams.set(team.key, team);
    }
    for (const competition of Array.isArray(saved?.competitions) ? saved.competitions : []) {
      if (typeof competition?.topic === "string" && typeof competition?.name === "string") {
        this.competitions.set(competition.topic, competition);
      }
    }
  }

  save() {
    try {
      this.storage?.setItem(
        STORAGE_KEY,
        JSON.stringify({ teams: [...this.teams.values()], competitions: [...this.competitions.values()] }),
      );
    } catch {
      // Storage full or refused: the follows still hold for this visit.
    }
  }

  isTeamFollowed(sportSlug, team) {
    return this.teams.has(teamKey(sportSlug, team));
  }

  isCompetitionFollowed(topic) {
    return this.competitions.has(topic);
  }

  /** Follows or unfollows a team; returns whether it is followed now. */
  toggleTeam(sportSlug, team) {
    const key = teamKey(sportSlug, team);
    if (this.teams.has(key)) this.teams.delete(key);
    else if (this.teams.size < MAX_FOLLOWS) this.teams.set(key, { key, sport: sportSlug, name: team.name, code: team.code ?? null });
    this.save();
    return this.teams.has(key);
  }

  /** Follows or unfollows a competition; returns whether it is followed now. */
  toggleCompetition(topic, name) {
    if (this.competitions.has(topic)) this.competitions.delete(topic);
    else if (this.competitions.size < MAX_FOLLOWS) this.competitions.set(topic, { topic, name });
    this.save();
    return this.competitions.has(topic);
  }

  /** Whether a match involves something followed. */
  coversMatch(snapshot) {
    const sportSlug = snapshot.match.split("/")[0];
    return (
      this.competitions.has(competitionTopic(snapshot.match)) ||
      this.isTeamFollowed(sportSlug, snapshot.home) ||
      this.isTeamFollowed(sportSlug, snapshot.away)
    );
  }

  get isEmpty() {
    return this.teams.size === 0 && this.competitions.size === 0;
  }
}
