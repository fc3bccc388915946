// Reads the recorded matches in fixtures/ the way a replay publishes them (fixtures/README.md):
// the header as match_scheduled with seq 1, then each line with seq 2, 3, ..., correction
// targets renumbered to match.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;

/** Every fixture file below fixtures/, sorted. */
export function fixtureFiles(root = FIXTURES) {
  const files = [];
  for (const name of readdirSync(root).sort()) {
    const path = join(root, name);
    if (statSync(path).isDirectory()) files.push(...fixtureFiles(path));
    else if (name.endsWith(".jsonl")) files.push(path);
  }
  return files;
}

/** A fixture as {header, events}: events numbered as a replay in epoch `epoch` publishes them. */
export function readFixture(path, { epoch = 1, startMs = 1_700_000_000_000 } = {}) {
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#"));
  const header = JSON.parse(lines[0]);
  const events = [
    {
      match: header.match,
      epoch,
      seq: 1,
      ts_ms: startMs,
      kind: "match_scheduled",
      home: header.home,
      away: header.away,
      kickoff_ms: startMs,
      ...(header.competition ? { competition: header.competition } : {}),
      ...(header.venue ? { venue: header.venue } : {}),
      ...(header.period_secs ? { period_secs: header.period_secs } : {}),
      ...(header.tennis ? { tennis: header.tennis } : {}),
    },
  ];
  const renumbered = new Map();
  for (const line of lines.slice(1)) {
    const { offset_ms: offsetMs, seq: fileSeq, ...body } = JSON.parse(line);
    const seq = events.length + 1;
    renumbered.set(fileSeq, seq);
    if (body.kind === "correction") body.corrects = renumbered.get(body.corrects) ?? body.corrects;
    events.push({ match: header.match, epoch, seq, ts_ms: startMs + offsetMs, ...body });
  }
  return { header, events };
}
