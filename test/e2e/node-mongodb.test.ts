import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";
import { jsonClient } from "../support/http.ts";
import { runNodeServerToExit, startNodeServer, type NodeServer } from "../support/node-server.ts";
import { openSse } from "../support/sse.ts";
import { expectRefusedStart, listeningLine } from "./runtime-checks.ts";
import { runScenario } from "./scenario.ts";

describe("Node runtime on the MongoDB store (real driver → wire-protocol test double)", () => {
  let double: MongoDouble;
  const servers: NodeServer[] = [];
  const start = async (lockTime = "PT3S") => {
    const server = await startNodeServer({ PITSTOP_STORE: "mongodb", MONGODB_URI: double.uri, PITSTOP_LOCK_TIME: lockTime, PITSTOP_LOOP_TIME: "PT1S" });
    servers.push(server);
    return server;
  };
  beforeAll(async () => {
    double = await startMongoDouble();
  });
  afterAll(async () => {
    for (const s of servers) if (s.process.exitCode === null && s.process.signalCode === null) await s.stop("SIGKILL");
    await double.close();
  });

  it("runs the whole HTTP scenario", async () => {
    const server = await start();
    expect(server.output()).toMatch(listeningLine("mongodb"));
    await runScenario(server.url, { lockTimeMs: 3000, store: "mongodb" });
    expect(await server.stop("SIGTERM")).toBe(0);
  }, 90_000);

  it("loses nothing when a server is killed holding claimed messages: another delivers them after the lock time", async () => {
    const first = await start();
    const callFirst = jsonClient(first.url);
    const ids = Array.from({ length: 20 }, (_, i) => `crash-${i}`);
    for (const id of ids) {
      const response = await callFirst("POST", "/messages", { message: { id }, topic: "crash" });
      expect(response.status).toBe(201);
    }
    const doomed = await openSse(`${first.url}/events?topic=crash`);
    const claimed = new Set<string>();
    while (claimed.size < ids.length) claimed.add((await doomed.nextDelivery()).id);
    const killedAt = Date.now();
    await first.stop("SIGKILL");

    const second = await start();
    const callSecond = jsonClient(second.url);
    const survivor = await openSse(`${second.url}/events?topic=crash`);
    const redelivered = new Map<string, number>();
    while (redelivered.size < ids.length) {
      const d = await survivor.nextDelivery(30_000);
      redelivered.set(d.id, d.attempt);
      const ack = await callSecond("POST", `/messages/${d.id}/ack`, { token: d.token });
      expect(ack.status).toBe(204);
    }
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2000);
    expect([...redelivered.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(redelivered.values())).toEqual(new Set([2]));
    for (const id of ids) expect((await callSecond("GET", `/messages/${id}`)).status).toBe(404);
    survivor.close();
  }, 90_000);

  it("refuses to start on an unreachable MongoDB with one clear line", async () => {
    expectRefusedStart(
      await runNodeServerToExit({ PITSTOP_STORE: "mongodb", MONGODB_URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500" }),
      /^pitstop: cannot open the mongodb store: Cannot connect to MongoDB at 127\.0\.0\.1:1/m,
    );
  });
});
