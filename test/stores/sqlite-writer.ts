/**
 * A writer in its own process, for the crash test in sqlite-group-commit.test.ts: stores messages
 * into the file `argv[2]` 50 at a time, without end, and prints each id once its put has resolved
 * (so once it is acknowledged), one per line, until it is killed.
 */
import { connectSqliteFileStore } from "../../src/stores/sqlite-node.ts";

const store = await connectSqliteFileStore({ path: process.argv[2] });
const T0 = Date.parse("2026-03-01T12:00:00Z");
for (let wave = 0; ; wave++) {
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const id = `w-${wave}-${i}`;
      await store.put({ id, message: { id, body: { wave } }, lane: "topic:default", topic: "default", at: T0, dueAt: T0, attempts: 0 });
      process.stdout.write(`${id}\n`);
    }),
  );
}
