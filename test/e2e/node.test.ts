import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runNodeServerToExit, startNodeServer, type NodeServer } from "../support/node-server.ts";
import { openSse } from "../support/sse.ts";
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
    expect(server.output()).toMatch(/pitstop listening on http:\/\/127\.0\.0\.1:\d+ \(store: memory\)/);
  });

  it("runs the whole HTTP scenario", async () => {
    await runScenario(server.url, { token: "s3cret", lockTimeMs: 3000 });
  }, 60_000);

  it("on SIGTERM ends SSE streams and exits 0", async () => {
    const sse = await openSse(`${server.url}/events?topic=bye`, { authorization: "Bearer s3cret" });
    expect((await sse.nextFrame()).comment).toBe("connected");
    const code = await server.stop("SIGTERM");
    expect(code).toBe(0);
    await expect(sse.nextFrame(5000)).rejects.toThrow(/ended|terminated|aborted/i);
  });
});

describe("Node runtime configuration", () => {
  it.each([
    [{ PITSTOP_LOCK_TIME: "soon" }, /^pitstop: PITSTOP_LOCK_TIME=soon is invalid/m],
    [{ PITSTOP_STORE: "redis" }, /^pitstop: PITSTOP_STORE=redis is invalid/m],
    [{ PITSTOP_MAX_BODY: "-1" }, /^pitstop: PITSTOP_MAX_BODY=-1 is invalid/m],
    [{ PORT: "99999" }, /^pitstop: PORT=99999 is invalid/m],
    [{ PITSTOP_STORE: "mongodb", MONGODB_URI: "" }, /^pitstop: MONGODB_URI is required/m],
  ])("refuses %o with one clear line and a non-zero exit", async (env, line) => {
    const { code, output } = await runNodeServerToExit(env as Record<string, string>);
    expect(code).not.toBe(0);
    expect(output).toMatch(line);
    expect(output).not.toMatch(/\n\s+at /);
  });
});
