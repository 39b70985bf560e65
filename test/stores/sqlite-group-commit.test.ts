import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { groupCommit, type SqliteConnection } from "../../src/stores/sqlite-batch.ts";
import { betterSqliteConnection, connectSqliteFileStore } from "../../src/stores/sqlite-node.ts";
import { connectSqliteStore, type SqliteAdapter } from "../../src/stores/sqlite.ts";
import { record, T0 } from "./records.ts";

const dir = mkdtempSync(join(tmpdir(), "pitstop-group-commit-"));
let files = 0;
const freshPath = () => join(dir, `test-${files++}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** A better-sqlite3 connection that counts its COMMITs and log syncs, and the store over it. */
async function countedStore(path = freshPath()) {
  const connection: SqliteConnection = await betterSqliteConnection(path);
  const counts = { commits: 0, syncsDone: 0 };
  const { exec, sync } = connection;
  connection.exec = (sql) => {
    exec(sql);
    if (sql === "COMMIT") counts.commits++;
  };
  connection.sync = async () => {
    await sync!();
    counts.syncsDone++;
  };
  const adapter: SqliteAdapter = groupCommit(connection, { defer: setImmediate });
  const store = await connectSqliteStore({ adapter: async () => adapter });
  return { store, adapter, counts, path };
}

describe("group commit of the SQLite store on Node", () => {
  it("stores 200 concurrent messages in a few COMMITs, answering each only after a sync of the log", async () => {
    const { store, counts, path } = await countedStore();
    counts.commits = 0;
    counts.syncsDone = 0;
    const syncedWhenAnswered: number[] = [];
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.put(record(`m-${i}`)).then(() => syncedWhenAnswered.push(counts.syncsDone))));
    expect(counts.commits).toBeLessThanOrEqual(3);
    expect(Math.min(...syncedWhenAnswered)).toBeGreaterThanOrEqual(1);
    const other = await connectSqliteFileStore({ path });
    expect((await other.countLanes(T0)).get("topic:default")).toEqual({ total: 200, locked: 0 });
    await Promise.all([store.dispose(), other.dispose()]);
  });

  it("answers a claim at its COMMIT, before the log's sync, and a store only after the sync", async () => {
    const connection: SqliteConnection = await betterSqliteConnection(freshPath());
    const realSync = connection.sync!;
    let gate: Promise<void> = Promise.resolve();
    let syncing = () => {};
    connection.sync = async () => {
      syncing();
      await gate;
      await realSync();
    };
    const store = await connectSqliteStore({ adapter: async () => groupCommit(connection, { defer: setImmediate }) });
    await store.put(record("due"));
    // From here every sync waits until `open()`.
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const held = new Promise<void>((resolve) => (syncing = resolve));
    let putAnswered = false;
    const put = store.put(record("later")).then(() => (putAnswered = true));
    const claimed = await store.claim({ lane: "topic:default", now: T0, limit: 1, token: "t", lockedUntil: T0 + 60_000 });
    expect(claimed.map((c) => c.id)).toEqual(["due"]);
    // The put's batch has reached its sync, which is held: the put must still be waiting.
    await held;
    await new Promise(setImmediate);
    expect(putAnswered).toBe(false);
    open();
    await put;
    expect(putAnswered).toBe(true);
    await store.dispose();
  });

  it("undoes a failing transaction alone: the others of its batch are kept and answered", async () => {
    const { store, adapter } = await countedStore();
    const failing = adapter.write!((sql) => {
      sql.run("INSERT INTO topics (topic, policy) VALUES ('half-done', '{}')");
      throw new Error("the body failed after a write");
    });
    const [first, broken, second] = await Promise.allSettled([store.put(record("a")), failing, store.put(record("b"))]);
    expect(first).toEqual({ status: "fulfilled", value: "created" });
    expect(second).toEqual({ status: "fulfilled", value: "created" });
    expect(broken).toMatchObject({ status: "rejected", reason: { message: "the body failed after a write" } });
    expect(await store.get("a")).toEqual(record("a"));
    expect(await store.get("b")).toEqual(record("b"));
    expect(await store.policies()).toEqual(new Map());
    await store.dispose();
  });

  it("rejects every writer of a batch whose COMMIT fails, keeps none of them, and goes on", async () => {
    const { store, adapter } = await countedStore();
    await adapter.write!((sql) => {
      sql.run("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
      sql.run("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)");
    });
    // A deferred foreign key is checked at COMMIT: this transaction passes, the batch's COMMIT fails.
    const orphan = adapter.write!((sql) => sql.run("INSERT INTO child (id, parent) VALUES (1, 999)"));
    const results = await Promise.allSettled([store.put(record("a")), orphan, store.put(record("b")), store.setPolicy("default", { maxAttempts: 2 })]);
    for (const result of results) {
      expect(result).toMatchObject({ status: "rejected", reason: { code: "store_unavailable", message: "SQLite commit failed: FOREIGN KEY constraint failed" } });
    }
    expect(await store.get("a")).toBeUndefined();
    expect(await store.get("b")).toBeUndefined();
    expect(await store.policies()).toEqual(new Map());
    expect(await store.put(record("c"))).toBe("created");
    expect(await store.get("c")).toEqual(record("c"));
    await store.dispose();
  });

  it("waits for another connection's write lock without failing, and fails with store_unavailable only past its busy timeout", async () => {
    const path = freshPath();
    const patient = await connectSqliteStore({ adapter: async () => groupCommit(await betterSqliteConnection(path), { defer: setImmediate }) });
    const hasty = await connectSqliteStore({ adapter: async () => groupCommit(await betterSqliteConnection(path), { defer: setImmediate, busyTimeoutMs: 100 }) });
    const holder = await betterSqliteConnection(path);
    holder.exec("BEGIN IMMEDIATE");
    const heldFor = 600;
    const released = new Promise<void>((resolve) => setTimeout(() => resolve(holder.exec("COMMIT")), heldFor));
    const started = Date.now();
    const [waited, gaveUp] = await Promise.allSettled([patient.put(record("waited")).then(() => Date.now() - started), hasty.put(record("gave-up"))]);
    await released;
    expect(waited).toMatchObject({ status: "fulfilled", value: expect.any(Number) });
    expect((waited as PromiseFulfilledResult<number>).value).toBeGreaterThanOrEqual(heldFor - 50);
    expect(gaveUp).toMatchObject({ status: "rejected", reason: { code: "store_unavailable", message: "The SQLite database stayed locked by another process for 100 ms" } });
    expect(await hasty.get("waited")).toEqual(record("waited"));
    expect(await hasty.get("gave-up")).toBeUndefined();
    holder.close();
    await Promise.all([patient.dispose(), hasty.dispose()]);
  });

  it("keeps every acknowledged write when its process is SIGKILLed", async () => {
    const path = freshPath();
    const writer = spawn(process.execPath, ["--import", "tsx", new URL("./sqlite-writer.ts", import.meta.url).pathname, path], { stdio: ["ignore", "pipe", "inherit"] });
    const acknowledged: string[] = [];
    let partial = "";
    await new Promise<void>((resolve, reject) => {
      writer.on("exit", (code) => reject(new Error(`the writer exited early (${code})`)));
      writer.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        acknowledged.push(...lines);
        if (acknowledged.length >= 1000) resolve();
      });
    });
    writer.removeAllListeners("exit");
    const exited = new Promise((resolve) => writer.on("exit", resolve));
    writer.kill("SIGKILL");
    await exited;
    const after = await connectSqliteFileStore({ path });
    const missing = [];
    for (const id of acknowledged) if ((await after.get(id)) === undefined) missing.push(id);
    expect(missing).toEqual([]);
    await after.dispose();
  }, 60_000);
});
