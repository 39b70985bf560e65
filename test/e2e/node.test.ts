import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runNodeServerToExit, startNodeServer, type NodeServer } from "../support/node-server.ts";
import { expectRefusedStart, expectSigtermEndsStreams, listeningLine } from "./runtime-checks.ts";
import { runScenario } from "./scenario.ts";

describe("Node runtime, started as a user would", () => {
  let server: NodeServer;
  beforeAll(async () => {
    server = await startNodeServer({ PITSTOP_TOKEN: "s3cret", PITSTOP_LOCK_TIME: "PT3S", PITSTOP_LOOP_TIME: "PT5S" });
  });
  afterAll(async () => {
    if (server.process.exitCode === null) await server.stop("SIGKILL");
  });

  it("prints its URL and store", () => {
    expect(server.output()).toMatch(listeningLine());
  });

  it("runs the whole HTTP scenario", async () => {
    await runScenario(server.url, { token: "s3cret", lockTimeMs: 3000 });
  }, 60_000);

  it("on SIGTERM ends SSE streams and exits 0", async () => {
    await expectSigtermEndsStreams(server, "s3cret");
  });
});

describe("Node runtime configuration", () => {
  it.each([
    [{ PITSTOP_LOCK_TIME: "soon" }, /^pitstop: PITSTOP_LOCK_TIME=soon is invalid/m],
    [{ PITSTOP_STORE: "redis" }, /^pitstop: PITSTOP_STORE=redis is invalid/m],
    [{ PITSTOP_STORE: "durable-object" }, /^pitstop: PITSTOP_STORE=durable-object is invalid: Durable Objects run on Cloudflare Workers only/m],
    [{ PITSTOP_MAX_BODY: "-1" }, /^pitstop: PITSTOP_MAX_BODY=-1 is invalid/m],
    [{ PORT: "99999" }, /^pitstop: PORT=99999 is invalid/m],
    [{ PITSTOP_STORE: "mongodb", MONGODB_URI: "" }, /^pitstop: MONGODB_URI is required/m],
  ])("refuses %o with one clear line and a non-zero exit", async (env, line) => {
    expectRefusedStart(await runNodeServerToExit(env as Record<string, string>), line);
  });
});
