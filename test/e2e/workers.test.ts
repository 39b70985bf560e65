import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { verifyWebhook } from "../../src/index.ts";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";
import { jsonClient, type JsonCall } from "../support/http.ts";
import { closedPortUrl, startReceiver, type Receiver } from "../support/receiver.ts";
import { openSse } from "../support/sse.ts";
import { bundleWorker, startWorkerd, type WorkerBundle, type WorkerdServer } from "../support/workerd.ts";
import { runScenario } from "./scenario.ts";

const token = "s3cret";
const secret = `whsec_${btoa("pitstop-workers-e2e-signing-key!")}`;
let bundle: WorkerBundle;
beforeAll(async () => {
  bundle = await bundleWorker();
}, 120_000);
afterAll(() => bundle?.remove());

describe("Cloudflare Workers runtime on the memory store, in workerd", () => {
  let server: WorkerdServer;
  let receiver: Receiver;
  let call: JsonCall;

  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startWorkerd(bundle, {
      PITSTOP_STORE: "memory",
      PITSTOP_TOKEN: token,
      PITSTOP_LOCK_TIME: "PT3S",
      PITSTOP_LOOP_TIME: "PT5S",
      // workerd notices a gone SSE client on its next write; the scenario wants it within the lock time.
      PITSTOP_HEARTBEAT: "PT0.5S",
      PITSTOP_SIGNING_SECRET: secret,
      PITSTOP_ALLOW_PRIVATE_CALLBACKS: "1",
    });
    call = jsonClient(server.url, { headers: { authorization: `Bearer ${token}` } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });
  beforeEach(() => receiver.reset());

  it("bundles with wrangler within the free plan's 3 MB (gzip) limit", () => {
    expect(bundle.gzipBytes).toBeGreaterThan(0);
    expect(bundle.gzipBytes).toBeLessThan(3_000_000);
  });

  it("runs the whole HTTP scenario, SSE included", async () => {
    await runScenario(server.url, { token, lockTimeMs: 3000 });
  }, 60_000);

  it("scheduled POSTs every due webhook message, signed, and acks it", async () => {
    const due = await call("POST", "/messages", { message: { id: "hook-1", n: 1 }, callback: receiver.url() });
    await call("POST", "/messages", { message: { id: "hook-2", n: 2 }, callback: receiver.url(), at: Date.now() - 1000 });
    await call("POST", "/messages", { message: { id: "hook-later" }, callback: receiver.url(), at: Date.now() + 60_000 });
    expect(due.status).toBe(201);

    expect(await server.scheduled()).toMatchObject({ outcome: "ok" });
    expect(receiver.received.map((r) => JSON.parse(r.body).id).sort()).toEqual(["hook-1", "hook-2"]);
    for (const request of receiver.received) {
      expect(request).toMatchObject({ method: "POST", path: "/hook", headers: { "content-type": "application/json" } });
      expect(await verifyWebhook({ secret, headers: request.headers, body: request.body })).toBe(true);
    }
    expect(JSON.parse(receiver.received.find((r) => r.body.includes("hook-1"))!.body)).toEqual({
      id: "hook-1",
      message: { id: "hook-1", n: 1 },
      attempt: 1,
      at: due.json.at,
      deadline: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect((await call("GET", "/messages/hook-1")).status).toBe(404);
    expect((await call("GET", "/messages/hook-2")).status).toBe(404);
    expect((await call("GET", "/messages/hook-later")).json).toMatchObject({ attempts: 0, locked: false });
    expect((await call("DELETE", "/messages/hook-later")).status).toBe(204);
  });

  it("scheduled retries a failing receiver with backoff, lastError visible", async () => {
    receiver.handler = (_request, res) => res.writeHead(500).end();
    await call("POST", "/messages", { message: { id: "flaky-hook" }, callback: receiver.url() });
    await server.scheduled();
    expect(receiver.received).toHaveLength(1);
    expect((await call("GET", "/messages/flaky-hook")).json).toMatchObject({ attempts: 1, locked: false, lastError: "HTTP 500" });

    // The first retry waits 1 s: a run before that sends nothing, one after it sends attempt 2.
    await server.scheduled();
    expect(receiver.received).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    receiver.handler = (_request, res) => res.writeHead(204).end();
    await server.scheduled();
    expect(receiver.received).toHaveLength(2);
    expect(JSON.parse(receiver.received[1].body)).toMatchObject({ id: "flaky-hook", attempt: 2 });
    expect((await call("GET", "/messages/flaky-hook")).status).toBe(404);
  });

  it("scheduled records an unreachable receiver, and removes a message on 410 Gone", async () => {
    await call("POST", "/messages", { message: { id: "nobody-home" }, callback: await closedPortUrl() });
    receiver.handler = (_request, res) => res.writeHead(410).end();
    await call("POST", "/messages", { message: { id: "gone", n: 1 }, callback: receiver.url(), interval: "PT1H" });
    await server.scheduled();
    expect(receiver.received).toHaveLength(1);
    expect((await call("GET", "/messages/gone")).status).toBe(404);
    expect((await call("GET", "/messages/nobody-home")).json).toMatchObject({ attempts: 1, lastError: expect.stringMatching(/\S/) });
    expect((await call("DELETE", "/messages/nobody-home")).status).toBe(204);
  });
});

describe("Cloudflare Workers runtime with PITSTOP_STORE=mongodb (real driver in workerd → wire-protocol test double)", () => {
  let double: MongoDouble;
  let server: WorkerdServer;
  let receiver: Receiver;
  let call: JsonCall;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
  beforeAll(async () => {
    [double, receiver] = await Promise.all([startMongoDouble(), startReceiver()]);
    server = await startWorkerd(bundle, {
      PITSTOP_STORE: "mongodb",
      MONGODB_URI: double.uri,
      PITSTOP_LOCK_TIME: "PT3S",
      // Each request has its own engine, so a stream learns of messages stored or acked by other
      // requests only when it polls: the loop time bounds that delay.
      PITSTOP_LOOP_TIME: "PT0.2S",
      PITSTOP_HEARTBEAT: "PT0.5S",
      PITSTOP_ALLOW_PRIVATE_CALLBACKS: "1",
    });
    call = jsonClient(server.url);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await Promise.all([double?.close(), receiver?.close()]);
  });

  it("runs the whole HTTP scenario", async () => {
    await runScenario(server.url, { lockTimeMs: 3000, store: "mongodb", enginePerRequest: true });
  }, 60_000);

  it("opens a client per request and closes it when the response, or the SSE stream, ends", async () => {
    // Streams the scenario left are noticed gone at their next heartbeat (0.5 s).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const closed = () => double.commandCounts().endSessions ?? 0;
    const before = closed();
    for (let i = 0; i < 3; i++) expect((await call("GET", "/messages/none")).status).toBe(404);
    await settle();
    expect(closed()).toBe(before + 3);

    const sse = await openSse(`${server.url}/events?topic=closing`);
    expect((await sse.nextFrame()).comment).toMatch(/^connected as /);
    await settle();
    expect(closed()).toBe(before + 3);
    sse.close();
    await vi.waitFor(() => expect(closed()).toBe(before + 4), { timeout: 3000 });
  });

  it("scheduled delivers due webhook messages and closes its client", async () => {
    const response = await call("POST", "/messages", { message: { id: "mongo-hook" }, callback: receiver.url() });
    expect(response.status).toBe(201);
    await settle();
    const closed = double.commandCounts().endSessions ?? 0;
    expect(await server.scheduled()).toMatchObject({ outcome: "ok" });
    expect(receiver.received.map((r) => JSON.parse(r.body).id)).toEqual(["mongo-hook"]);
    expect((await call("GET", "/messages/mongo-hook")).status).toBe(404);
    await settle();
    expect(double.commandCounts().endSessions).toBeGreaterThanOrEqual(closed + 2);
  });

  it("answers 503 store_unavailable when MongoDB cannot be reached", async () => {
    const unreachable = (await closedPortUrl()).replace(/^http:\/\/([^/]+)\/hook$/, "mongodb://$1/?serverSelectionTimeoutMS=500");
    const down = await startWorkerd(bundle, { PITSTOP_STORE: "mongodb", MONGODB_URI: unreachable });
    try {
      const callDown = jsonClient(down.url);
      expect(await callDown("GET", "/health")).toEqual({ status: 503, json: { ok: false, store: "mongodb", reason: expect.stringMatching(/^Cannot connect to MongoDB at 127\.0\.0\.1:\d+: /) } });
      const response = await callDown("POST", "/messages", { message: { id: "m" } });
      expect(response.status).toBe(503);
      expect(response.json).toMatchObject({ error: "store_unavailable", message: expect.stringMatching(/^Cannot connect to MongoDB at 127\.0\.0\.1:\d+: /) });
      expect(await down.scheduled()).toMatchObject({ outcome: "exception" });
    } finally {
      await down.stop();
    }
  });
});

describe("Cloudflare Workers runtime configuration", () => {
  it("refuses a broken configuration with a clear 500", async () => {
    const broken = await startWorkerd(bundle, { PITSTOP_LOCK_TIME: "soon" });
    try {
      const response = await jsonClient(broken.url)("GET", "/health");
      expect(response.status).toBe(500);
      expect(response.json).toEqual({ error: "invalid_config", message: expect.stringMatching(/^PITSTOP_LOCK_TIME=soon is invalid/) });
    } finally {
      await broken.stop();
    }
  });

  it("refuses the SQLite file store, which runs on Node and Deno only, with a clear 500", async () => {
    const refused = await startWorkerd(bundle, { PITSTOP_STORE: "sqlite" });
    try {
      const response = await jsonClient(refused.url)("GET", "/health");
      expect(response.status).toBe(500);
      expect(response.json).toEqual({ error: "invalid_config", message: expect.stringMatching(/^PITSTOP_STORE=sqlite is invalid: the SQLite file store runs on Node and Deno only/) });
    } finally {
      await refused.stop();
    }
  });
});
