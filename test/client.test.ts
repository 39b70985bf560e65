import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, PitstopClientError, type ClientDelivery, type Listening, type StoreManyItem } from "../src/client/index.ts";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { flakyStore } from "./support/flaky-store.ts";
import { serveInProcess } from "./support/http.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real server in this process, and a client of it that records the requests it sends. */
async function setup(options: { token?: string; clientToken?: string | null } = {}) {
  const store = flakyStore(memoryStore());
  const pitstop = createPitstop({ store, lockTime: "PT30S", log: () => {} });
  const server = await serveInProcess(createApp(pitstop, { token: options.token, log: () => {} }).fetch);
  cleanups.push(() => pitstop.close(), () => server.close());
  const requests: string[] = [];
  const token = options.clientToken === null ? undefined : (options.clientToken ?? options.token);
  const client = createClient({
    baseUrl: `${server.url}/`,
    ...(token !== undefined && { token }),
    fetch: (url, init) => {
      requests.push(`${init?.method ?? "GET"} ${url.slice(server.url.length)}`);
      return fetch(url, init);
    },
  });
  return { store, pitstop, server, client, requests };
}

/** Listens, closing the stream when the test ends. */
function listenOn(client: ReturnType<typeof createClient>, options: Parameters<ReturnType<typeof createClient>["listen"]>[0] = {}): Listening {
  const listening = client.listen({ reconnect: { minMs: 20, maxMs: 100 }, ...options });
  cleanups.unshift(() => listening.close());
  return listening;
}

/** The next `n` deliveries, or a timeout after `ms`. */
async function take(listening: Listening, n: number, ms = 5000): Promise<ClientDelivery[]> {
  const got: ClientDelivery[] = [];
  const timeout = setTimeout(() => listening.close(), ms);
  try {
    while (got.length < n) {
      const { value, done } = await listening.next();
      if (done) throw new Error(`stream closed after ${got.length} of ${n} deliveries`);
      got.push(value);
    }
  } finally {
    clearTimeout(timeout);
  }
  return got;
}

async function rejection(promise: Promise<unknown>): Promise<PitstopClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(PitstopClientError);
  return error as PitstopClientError;
}

describe("client: messages", () => {
  it("stores, replaces, gets, lists and removes", async () => {
    const { client } = await setup();
    const at = Date.now() + 60_000;
    const first = await client.schedule({ message: { id: "a", n: 1 }, at, topic: "jobs" });
    expect(first).toEqual({ id: "a", at: new Date(at).toISOString(), topic: "jobs", replaced: false });
    expect((await client.store({ message: { id: "a", n: 2 }, at, topic: "jobs" })).replaced).toBe(true);
    await client.schedule({ message: { id: "b" }, at: at + 1, interval: "PT1H", topic: "jobs" });

    const a = await client.get("a");
    expect(a).toMatchObject({ id: "a", message: { id: "a", n: 2 }, state: "pending", attempts: 0, locked: false });
    const page = await client.list({ topic: "jobs", limit: 1 });
    expect(page.items.map((i) => i.id)).toEqual(["a"]);
    expect((await client.list({ topic: "jobs", cursor: page.next! })).items.map((i) => i.id)).toEqual(["b"]);
    expect((await client.list({ topic: "jobs", state: "locked" })).items).toEqual([]);

    expect(await client.remove("a")).toBe(true);
    expect(await client.remove("a")).toBe(false);
    expect(await client.get("a")).toBeNull();
  });

  it("stores many in chunks of 1,000 through POST /messages/batch, each result in order", async () => {
    const { client, requests, pitstop } = await setup();
    const items: StoreManyItem[] = Array.from({ length: 2500 }, (_, i) => ({ message: { id: `s${i}` }, topic: "bulk" }));
    items[1700] = { message: { id: "" }, topic: "bulk" };
    items[2400] = { message: { id: "s3", v: 2 }, topic: "bulk" };
    const results = await client.storeMany(items);
    expect(requests).toEqual(["POST /messages/batch", "POST /messages/batch", "POST /messages/batch"]);
    expect(results).toHaveLength(2500);
    expect(results[0]).toEqual({ id: "s0", status: 201 });
    expect(results[1700]).toMatchObject({ error: "invalid_request", index: 1700, message: expect.stringContaining("id must not be empty") });
    expect(results[2400]).toEqual({ id: "s3", status: 200 });
    expect((await pitstop.get("s3"))?.message).toEqual({ id: "s3", v: 2 });
    expect((await pitstop.topic("bulk"))?.counts.pending).toBe(2498);
    expect(await client.storeMany([])).toEqual([]);
  });

  it("encodes ids in paths", async () => {
    const { client } = await setup();
    await client.schedule({ message: { id: "a/b ?#%" }, at: Date.now() + 60_000 });
    expect((await client.get("a/b ?#%"))?.id).toBe("a/b ?#%");
  });

  it("sets and reads topic policies", async () => {
    const { client } = await setup();
    expect(await client.topics.get("pay")).toBeNull();
    const policy = await client.topics.setPolicy("pay", { maxAttempts: 3, backoff: { base: "PT2S" }, ordered: true });
    expect(policy).toMatchObject({ maxAttempts: 3, ordered: true, backoff: { base: "PT2S" } });
    expect((await client.topics.get("pay"))?.policy).toEqual(policy);
    expect((await client.topics.list()).map((t) => t.name)).toContain("pay");
    await client.topics.resetPolicy("pay");
    expect(await client.topics.get("pay")).toBeNull(); // no messages and no policy left
  });
});

describe("client: listen", () => {
  it("receives and acks; acks that arrive together go out in one POST /acks", async () => {
    const { client, requests } = await setup();
    const listening = listenOn(client, { consumer: "worker-1" });
    for (let i = 0; i < 50; i++) await client.schedule({ message: { id: `m${i}` } });
    const deliveries = await take(listening, 50);
    expect(listening.consumer).toBe("worker-1");
    expect(new Set(deliveries.map((d) => d.id)).size).toBe(50);
    expect(deliveries[0]).toMatchObject({ attempt: 1, message: { id: deliveries[0]!.id } });
    await Promise.all(deliveries.map((d) => d.ack()));
    expect((await client.list()).items).toEqual([]);
    const ackRequests = requests.filter((r) => r.startsWith("POST /acks") || r.endsWith("/ack"));
    expect(ackRequests).toContain("POST /acks");
    expect(ackRequests.length).toBeLessThan(10);
  });

  it("reconnects after the server ends the stream, and acks what the new stream delivers", async () => {
    const { client, store } = await setup();
    const listening = listenOn(client);
    await client.schedule({ message: { id: "first" } });
    const [first] = await take(listening, 1);
    expect(first).toMatchObject({ id: "first", attempt: 1 });

    // A store failure ends the server's stream; the client reconnects by itself.
    store.failing.add("claim");
    await client.schedule({ message: { id: "second" } });
    await vi.waitFor(() => expect(store.failures).toBeGreaterThan(0), { timeout: 5000 });
    store.failing.delete("claim");

    const again = await take(listening, 2);
    expect(listening.connections).toBeGreaterThanOrEqual(2);
    expect(again.map((d) => [d.id, d.attempt]).sort()).toEqual([["first", 2], ["second", 1]]);
    // The first stream's lock was released when it ended: its token no longer acks.
    expect((await rejection(first!.ack())).code).toBe("lock_lost");
    await Promise.all(again.map((d) => d.ack()));
    expect(await client.get("first")).toBeNull();
    expect(await client.get("second")).toBeNull();
  });

  it("nacks with an error and a retry delay", async () => {
    const { client } = await setup();
    const listening = listenOn(client);
    await client.schedule({ message: { id: "n" } });
    const [d] = await take(listening, 1);
    await d!.nack({ error: "db down", retryIn: "PT1H" });
    expect(await client.get("n")).toMatchObject({ state: "pending", attempts: 1, lastError: "db down" });
  });

  it("extends the lock and updates the deadline", async () => {
    const { client } = await setup();
    const listening = listenOn(client);
    await client.schedule({ message: { id: "e" } });
    const [d] = await take(listening, 1);
    const before = Date.parse(d!.deadline);
    const until = await d!.extend("PT10M");
    expect(d!.deadline).toBe(until);
    expect(Date.parse(until)).toBeGreaterThan(before + 9 * 60_000);
    expect((await client.get("e"))?.lockedUntil).toBe(until);
  });

  it("stops when its signal is aborted", async () => {
    const { client } = await setup();
    const controller = new AbortController();
    const listening = listenOn(client, { signal: controller.signal });
    controller.abort();
    expect(await listening.next()).toEqual({ value: undefined, done: true });
  });
});

describe("client: errors and auth", () => {
  it("throws PitstopClientError with the server's code, status and message", async () => {
    const { client } = await setup();
    const invalid = await rejection(client.schedule({ message: { id: "" } }));
    expect(invalid).toMatchObject({ code: "invalid_request", status: 400 });
    expect(invalid.message).toMatch(/id must not be empty/);
    expect(invalid.issues?.[0]?.path).toEqual(["message", "id"]);

    await client.schedule({ message: { id: "x" }, at: Date.now() + 60_000 });
    expect(await rejection(client.ack("x", "not-the-token"))).toMatchObject({ code: "lock_lost", status: 409 });
    expect(await rejection(client.ack("nope", "t"))).toMatchObject({ code: "not_found", status: 404 });
    expect(await rejection(client.redrive("x"))).toMatchObject({ code: "invalid_state", status: 409 });
  });

  it("says network_error when nothing answers", async () => {
    const { server } = await setup();
    const client = createClient({ baseUrl: server.url });
    await server.close();
    expect(await rejection(client.get("x"))).toMatchObject({ code: "network_error", status: 0 });
  });

  it("sends the token, on requests and on the stream", async () => {
    const { client } = await setup({ token: "s3cret" });
    const listening = listenOn(client);
    await client.schedule({ message: { id: "t" } });
    const [d] = await take(listening, 1);
    await d!.ack();
    expect(await client.get("t")).toBeNull();
  });

  it("listens with a fresh ticket per connection when told to (as it does in a browser), never sending the token on the stream", async () => {
    const { server } = await setup({ token: "s3cret" });
    const sent: { url: string; authorization: string | null }[] = [];
    const client = createClient({
      baseUrl: server.url,
      token: "s3cret",
      tickets: true,
      fetch: (url, init) => {
        sent.push({ url: url.slice(server.url.length), authorization: new Headers(init?.headers).get("authorization") });
        return fetch(url, init);
      },
    });
    expect(await client.ticket({ topic: "jobs", ttl: "PT1M" })).toEqual({ ticket: expect.any(String), expiresAt: expect.any(String) });
    const listening = listenOn(client, { topic: "jobs" });
    await client.schedule({ message: { id: "t" }, topic: "jobs" });
    const [d] = await take(listening, 1);
    await d!.ack();
    expect(await client.get("t")).toBeNull();
    const streams = sent.filter((r) => r.url.startsWith("/events"));
    expect(streams).toEqual([{ url: expect.stringMatching(/^\/events\?topic=jobs&ticket=[^&]+$/), authorization: null }]);
    expect(sent.filter((r) => r.url === "/tickets")).toHaveLength(2);
  });

  it("throws a refused ticket request from listen instead of retrying", async () => {
    const { server } = await setup({ token: "s3cret" });
    const listening = listenOn(createClient({ baseUrl: server.url, token: "wrong", tickets: true }));
    expect(await rejection(listening.next())).toMatchObject({ code: "unauthorized", status: 401 });
  });

  it("refuses without the token: requests throw, listen throws instead of retrying", async () => {
    const { client } = await setup({ token: "s3cret", clientToken: null });
    expect(await rejection(client.get("x"))).toMatchObject({ code: "unauthorized", status: 401 });
    const listening = listenOn(client);
    expect(await rejection(listening.next())).toMatchObject({ code: "unauthorized", status: 401 });
    expect(await listening.next()).toEqual({ value: undefined, done: true });
  });
});

describe("client: bundle", () => {
  it("bundles for a browser under 15 KB gzip", async () => {
    const result = await build({ entryPoints: ["src/client/index.ts"], bundle: true, platform: "browser", format: "esm", minify: true, write: false, logLevel: "silent" });
    const code = result.outputFiles[0]!.contents;
    const gzip = gzipSync(code).length;
    console.log(`client bundle: ${(code.length / 1024).toFixed(1)} KB minified, ${(gzip / 1024).toFixed(1)} KB gzip`);
    expect(new TextDecoder().decode(code)).not.toMatch(/ZodError|croner/);
    expect(gzip).toBeLessThan(15 * 1024);
  });
});
