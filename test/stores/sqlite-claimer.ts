/**
 * A claimer in its own process, for the cross-process claim test in sqlite.test.ts: claims from
 * the file `argv[2]` one record at a time (with a pause after each) from the epoch ms `argv[4]` on (so the processes start
 * together) until nothing is due, then prints the ids it won as JSON.
 */
import { connectSqliteFileStore } from "../../src/stores/sqlite-node.ts";

const [path, name, startAt] = process.argv.slice(2);
const store = await connectSqliteFileStore({ path });
await new Promise((resolve) => setTimeout(resolve, Number(startAt) - Date.now()));
const won: string[] = [];
for (let round = 0; ; round++) {
  const claimed = await store.claim({ lane: "topic:default", now: Date.parse("2026-03-01T12:00:00Z"), lockedUntil: Date.parse("2026-03-01T13:00:00Z"), limit: 1, token: `${name}-${round}` });
  if (claimed.length === 0) break;
  won.push(...claimed.map((r) => r.id));
  // A pause between claims: SQLite's busy handler polls, so a process that claims back to back
  // takes the write lock again before the others look, and they would never take part.
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await store.dispose();
process.stdout.write(JSON.stringify(won));
