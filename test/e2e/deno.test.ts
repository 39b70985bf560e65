import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { verifyWebhook } from "../../src/index.ts";
import { findDeno, runDenoToExit, startDenoServer, type DenoServer } from "../support/deno.ts";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";
import { jsonClient } from "../support/http.ts";
import { startServerProcess } from "../support/server-process.ts";
import { startReceiver, type Receiver } from "../support/receiver.ts";
import { expectRefusedStart, expectSigtermEndsStreams, listeningLine } from "./runtime-checks.ts";
import { runScenario } from "./scenario.ts";

// Fetching Deno from the npm registry the first time may take a while; without it the file skips.
const deno = await findDeno();
if ("reason" in deno) console.log(`[skip] Deno runtime tests: ${deno.reason}`);
const denoPath = "path" in deno ? deno.path : "";
const secret = `whsec_${btoa("pitstop-deno-e2e-signing-key!!!!")}`;

describe.skipIf(!denoPath)("Deno runtime, started as `npm run start:deno` would", () => {
  let server: DenoServer;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startDenoServer(denoPath, {
      PITSTOP_TOKEN: "s3cret",
      PITSTOP_LOCK_TIME: "PT3S",
      PITSTOP_LOOP_TIME: "PT5S",
      PITSTOP_ALLOW_PRIVATE_CALLBACKS: "1",
      PITSTOP_SIGNING_SECRET: secret,
    });
  }, 60_000);
  afterAll(async () => {
    if (server?.process.exitCode === null) await server.stop("SIGKILL");
    await receiver?.close();
  });

  it("prints its URL and store", () => {
    expect(server.output()).toMatch(listeningLine());
  });

  it("runs the whole HTTP scenario", async () => {
    await runScenario(server.url, { token: "s3cret", lockTimeMs: 3000 });
  }, 60_000);

  it("delivers a due webhook message, signed, with its loop", async () => {
    const call = jsonClient(server.url, { headers: { authorization: "Bearer s3cret" } });
    const response = await call("POST", "/messages", { message: { id: "deno-hook" }, callback: receiver.url() });
    expect(response.status).toBe(201);
    await receiver.waitFor(1);
    expect(JSON.parse(receiver.received[0].body)).toMatchObject({ id: "deno-hook", attempt: 1 });
    expect(await verifyWebhook({ secret, headers: receiver.received[0].headers, body: receiver.received[0].body })).toBe(true);
    await vi.waitFor(async () => expect((await call("GET", "/messages/deno-hook")).status).toBe(404));
  });

  it("on SIGTERM ends SSE streams and exits 0", async () => {
    await expectSigtermEndsStreams(server, "s3cret");
  });
});

describe.skipIf(!denoPath)("npm run start:deno", () => {
  it("starts Deno, and a SIGTERM to npm stops Deno too (nothing keeps the port)", async () => {
    const server = await startServerProcess({ command: "npm", args: ["run", "--silent", "start:deno"], env: { DENO_NO_UPDATE_CHECK: "1" } }, 120_000);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(await server.stop("SIGTERM")).toBe(0);
    await vi.waitFor(() => expect(fetch(`${server.url}/health`)).rejects.toThrow(), { timeout: 10_000, interval: 100 });
  }, 150_000);
});

describe.skipIf(!denoPath)("Deno runtime on the MongoDB store (real driver → wire-protocol test double)", () => {
  let double: MongoDouble;
  let server: DenoServer;
  beforeAll(async () => {
    double = await startMongoDouble();
    server = await startDenoServer(denoPath, { PITSTOP_STORE: "mongodb", MONGODB_URI: double.uri, PITSTOP_LOCK_TIME: "PT3S", PITSTOP_LOOP_TIME: "PT1S" });
  }, 60_000);
  afterAll(async () => {
    if (server?.process.exitCode === null) await server.stop("SIGKILL");
    await double?.close();
  });

  it("runs the whole HTTP scenario and exits 0 on SIGTERM", async () => {
    expect(server.output()).toMatch(listeningLine("mongodb"));
    await runScenario(server.url, { lockTimeMs: 3000, store: "mongodb" });
    expect(await server.stop("SIGTERM")).toBe(0);
  }, 60_000);
});

describe.skipIf(!denoPath)("Deno runtime on the SQLite store (node:sqlite, a file)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pitstop-deno-sqlite-"));
  const path = join(dir, "pitstop.db");
  const start = () =>
    startDenoServer(denoPath, { PITSTOP_STORE: "sqlite", PITSTOP_SQLITE_PATH: path, PITSTOP_LOCK_TIME: "PT3S", PITSTOP_LOOP_TIME: "PT1S" }, 60_000, [
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
    ]);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs the whole HTTP scenario, keeps a stored message across a restart, and exits 0 on SIGTERM", async () => {
    const first = await start();
    expect(first.output()).toMatch(listeningLine("sqlite"));
    await runScenario(first.url, { lockTimeMs: 3000, store: "sqlite" });
    const later = { message: { id: "kept", body: { text: "héllo ✓" } }, topic: "later", at: new Date(Date.now() + 3_600_000).toISOString() };
    expect((await jsonClient(first.url)("POST", "/messages", later)).status).toBe(201);
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await start();
    expect((await jsonClient(second.url)("GET", "/messages/kept")).json).toMatchObject({ message: later.message, topic: "later" });
    expect(await second.stop("SIGTERM")).toBe(0);
  }, 90_000);
});

describe.skipIf(!denoPath)("Deno runtime configuration", () => {
  it.each([
    [{ PITSTOP_LOCK_TIME: "soon" }, /^pitstop: PITSTOP_LOCK_TIME=soon is invalid/m],
    [{ PORT: "99999" }, /^pitstop: PORT=99999 is invalid/m],
  ])("refuses %o with one clear line and a non-zero exit", async (env, line) => {
    expectRefusedStart(await runDenoToExit(denoPath, env as Record<string, string>), line);
  });

  it("lets the MongoDB driver send its full handshake under the script's permissions", async () => {
    // A socket that records the driver's first command (its `hello`) and never answers: the
    // client metadata in it needs --allow-sys=osRelease, and real servers refuse a hello without it.
    const fake = createServer();
    const hello = new Promise<Buffer>((resolve) => fake.on("connection", (socket) => socket.once("data", resolve)));
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const { port } = fake.address() as AddressInfo;
    try {
      const { code, output } = await runDenoToExit(denoPath, {
        PITSTOP_STORE: "mongodb",
        MONGODB_URI: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000`,
      });
      expect(code).toBe(1);
      expect(output).toMatch(/^pitstop: cannot open the mongodb store: Cannot connect to MongoDB at 127\.0\.0\.1:\d+/m);
      const text = (await hello).toString("latin1");
      expect(text).toContain("driver");
      expect(text).toMatch(/Deno v2\.9\.6/);
    } finally {
      fake.close();
    }
  });
});
