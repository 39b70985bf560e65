import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { SqliteStore } from "../../src/stores/sqlite.ts";
import { connectSqliteFileStore, sqliteFileStore } from "../../src/stores/sqlite-node.ts";
import type { StoredMessage } from "../../src/types.ts";
import { testStore } from "./contract.ts";
import { lane, record as storedRecord, T0 } from "./records.ts";

const dir = mkdtempSync(join(tmpdir(), "pitstop-sqlite-"));
let files = 0;
/** A path for a fresh database file in this run's temporary directory. */
const freshPath = () => join(dir, `test-${files++}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

testStore("sqlite (temporary file)", { make: async () => sqliteFileStore({ path: freshPath() }) });
testStore("sqlite (:memory:)", { make: async () => sqliteFileStore({ path: ":memory:" }) });

/** A record whose body is nested JSON, which the store keeps as text. */
const record = (id: string, extra: Partial<StoredMessage> = {}): StoredMessage => storedRecord(id, { message: { id, body: { nested: [1, "two"] } }, ...extra });

describe("sqlite store on a file", () => {
  it("keeps records, locks and policies across closing and reopening the file", async () => {
    const path = freshPath();
    const first = await connectSqliteFileStore({ path });
    await first.put(record("kept"));
    await first.put(record("locked", { seq: 1 }));
    await first.setPolicy("default", { maxAttempts: 3, backoff: { baseMs: 10 } });
    const [claimed] = await first.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 1, token: "tok", consumer: "c1" });
    await first.dispose();
    await first.dispose();

    const second = await connectSqliteFileStore({ path });
    expect(await second.get(claimed.id)).toEqual(claimed);
    expect(await second.get(claimed.id === "kept" ? "locked" : "kept")).toMatchObject({ message: { body: { nested: [1, "two"] } }, attempts: 0 });
    expect(await second.policies()).toEqual(new Map([["default", { maxAttempts: 3, backoff: { baseMs: 10 } }]]));
    expect(await second.settle([{ id: claimed.id, token: "tok", now: T0 + 1, action: { kind: "delete" } }])).toEqual(["ok"]);
    await second.dispose();
  });

  it("never hands a record to two stores claiming on the same file at once", async () => {
    const path = freshPath();
    const a = await connectSqliteFileStore({ path });
    const b = await connectSqliteFileStore({ path });
    const ids = Array.from({ length: 200 }, (_, i) => `m-${i}`);
    for (const id of ids) await a.put(record(id));
    const won = new Map<string, string[]>();
    const claimer = async (store: SqliteStore, name: string) => {
      const mine: string[] = [];
      for (let round = 0; ; round++) {
        const claimed = await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 3, token: `${name}-${round}` });
        if (claimed.length === 0) break;
        mine.push(...claimed.map((r) => r.id));
      }
      won.set(name, mine);
    };
    await Promise.all([claimer(a, "a"), claimer(b, "b"), claimer(a, "a2"), claimer(b, "b2")]);
    const all = [...won.values()].flat();
    expect(all.length).toBe(ids.length);
    expect(new Set(all).size).toBe(ids.length);
    expect(won.get("a")!.length + won.get("a2")!.length).toBeGreaterThan(0);
    expect(won.get("b")!.length + won.get("b2")!.length).toBeGreaterThan(0);
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it("never hands a record to two processes claiming on the same file at once", async () => {
    const path = freshPath();
    const store = await connectSqliteFileStore({ path });
    const ids = Array.from({ length: 600 }, (_, i) => `p-${i}`);
    for (const id of ids) await store.put(record(id));
    await store.dispose();
    const claimer = new URL("./sqlite-claimer.ts", import.meta.url).pathname;
    const startAt = String(Date.now() + 8000);
    const run = (name: string) => promisify(execFile)(process.execPath, ["--import", "tsx", claimer, path, name, startAt]).then(({ stdout }) => JSON.parse(stdout) as string[]);
    const won = await Promise.all(["a", "b", "c"].map(run));
    expect(won.filter((w) => w.length > 0).length).toBeGreaterThan(1);
    const all = won.flat();
    expect(all.length).toBe(ids.length);
    expect(new Set(all).size).toBe(ids.length);
    const check = await connectSqliteFileStore({ path });
    expect((await check.countLanes(T0)).get(lane)).toEqual({ total: ids.length, locked: ids.length });
    await check.dispose();
  }, 60_000);

  it("fails on a bad path with one clear store_unavailable line", async () => {
    const path = join(dir, "no-such-dir", "pitstop.db");
    const error = await connectSqliteFileStore({ path }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "store_unavailable" });
    expect((error as Error).message).toMatch(new RegExp(`^Cannot open the SQLite database ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: \\S.*$`));
    expect((error as Error).message).not.toContain("\n");
  });

  it("refuses every call once disposed", async () => {
    const store = sqliteFileStore({ path: ":memory:" });
    await store.put(record("x"));
    await store.dispose();
    await expect(store.get("x")).rejects.toMatchObject({ code: "store_unavailable" });
  });
});
