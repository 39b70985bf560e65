import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";
import { runNodeServerToExit, startNodeServer, type NodeServer } from "../support/node-server.ts";
import { expectCrashHandOver, expectRefusedStart, listeningLine } from "./runtime-checks.ts";
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
    const { killedAt } = await expectCrashHandOver(await start(), start);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2000);
  }, 90_000);

  it("refuses to start on an unreachable MongoDB with one clear line", async () => {
    expectRefusedStart(
      await runNodeServerToExit({ PITSTOP_STORE: "mongodb", MONGODB_URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500" }),
      /^pitstop: cannot open the mongodb store: Cannot connect to MongoDB at 127\.0\.0\.1:1/m,
    );
  });
});
