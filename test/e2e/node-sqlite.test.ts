import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { jsonClient } from "../support/http.ts";
import { runNodeServerToExit, startNodeServer, type NodeServer } from "../support/node-server.ts";
import { openSse } from "../support/sse.ts";
import { expectCrashHandOver, expectRefusedStart, listeningLine } from "./runtime-checks.ts";
import { runScenario } from "./scenario.ts";

describe("Node runtime on the SQLite store (a file, through better-sqlite3)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pitstop-e2e-sqlite-"));
  const servers: NodeServer[] = [];
  const start = async (path: string, lockTime = "PT3S") => {
    const server = await startNodeServer({ PITSTOP_STORE: "sqlite", PITSTOP_SQLITE_PATH: path, PITSTOP_LOCK_TIME: lockTime, PITSTOP_LOOP_TIME: "PT1S" });
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    for (const s of servers) if (s.process.exitCode === null && s.process.signalCode === null) await s.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the whole HTTP scenario", async () => {
    const server = await start(join(dir, "scenario.db"));
    expect(server.output()).toMatch(listeningLine("sqlite"));
    await runScenario(server.url, { lockTimeMs: 3000, store: "sqlite" });
    expect(await server.stop("SIGTERM")).toBe(0);
  }, 90_000);

  it("keeps a stored message across a restart", async () => {
    const path = join(dir, "restart.db");
    const first = await start(path);
    const message = { id: "kept", body: { text: "héllo ✓", n: [1, 2.5, null] } };
    const at = new Date(Date.now() + 3_600_000).toISOString();
    expect((await jsonClient(first.url)("POST", "/messages", { message, topic: "later", at })).status).toBe(201);
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await start(path);
    const got = await jsonClient(second.url)("GET", "/messages/kept");
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ message, topic: "later" });
    expect(await second.stop("SIGTERM")).toBe(0);
  }, 90_000);

  it("loses nothing when a server is killed holding claimed messages: a new one on the file redelivers them", async () => {
    const path = join(dir, "crash.db");
    const { second } = await expectCrashHandOver(await start(path), () => start(path));
    expect(await second.stop("SIGTERM")).toBe(0);
  }, 90_000);

  it("shares one file between two servers under load: both store and deliver, no request fails, none delivered twice", async () => {
    const path = join(dir, "shared.db");
    const pair = await Promise.all([start(path, "PT30S"), start(path, "PT30S")]);
    const perServer = 300;
    const total = pair.length * perServer;
    const deliveredBy = new Map<string, number>();
    const twice: string[] = [];
    const statuses: number[] = [];
    const streams = await Promise.all(pair.map((server) => openSse(`${server.url}/events?topic=shared`)));
    const receiving = streams.map(async (sse, k) => {
      const call = jsonClient(pair[k].url);
      while (deliveredBy.size < total) {
        const delivery = await sse.nextDelivery(2000).catch(() => undefined);
        if (!delivery) continue;
        if (deliveredBy.has(delivery.id)) twice.push(delivery.id);
        deliveredBy.set(delivery.id, k);
        statuses.push((await call("POST", `/messages/${delivery.id}/ack`, { token: delivery.token })).status);
      }
    });
    const storing = pair.map(async (server, k) => {
      const call = jsonClient(server.url);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < perServer) statuses.push((await call("POST", "/messages", { message: { id: `s${k}-${next++}` }, topic: "shared" })).status);
        }),
      );
    });
    await Promise.all([...storing, ...receiving]);
    streams.forEach((sse) => sse.close());
    expect(statuses.filter((status) => status !== 201 && status !== 204)).toEqual([]);
    expect(twice).toEqual([]);
    const byServer = pair.map((_, k) => [...deliveredBy.values()].filter((by) => by === k).length);
    expect(Math.min(...byServer)).toBeGreaterThan(total / 10);
    for (const server of pair) {
      expect(server.output()).not.toMatch(/store_unavailable|store \w+ failed|locked/);
      expect(await server.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);

  it("refuses to start on a path it cannot open, with one clear line", async () => {
    expectRefusedStart(
      await runNodeServerToExit({ PITSTOP_STORE: "sqlite", PITSTOP_SQLITE_PATH: join(dir, "missing", "pitstop.db") }),
      /^pitstop: cannot open the sqlite store: Cannot open the SQLite database \S+missing\/pitstop\.db: /m,
    );
  });
});
