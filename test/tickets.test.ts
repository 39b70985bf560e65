import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, serveInProcess, viaApp } from "./support/http.ts";
import { openSse, type SseClient } from "./support/sse.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");
const TOKEN = "s3cret-token";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An app with `token` (null: none). */
function setup(token: string | null = TOKEN) {
  const clock = manualClock(T0);
  const pitstop = createPitstop({ store: memoryStore(), clock, lockTime: "PT30S", log: () => {} });
  cleanups.push(() => pitstop.close());
  const app = createApp(pitstop, { token: token ?? undefined, log: () => {} });
  const call = jsonClient("", { headers: { authorization: `Bearer ${TOKEN}` }, transport: viaApp(app) });
  const anonymous = jsonClient("", { transport: viaApp(app) });
  /** Opens GET /events with `query` and no Authorization header: the status, and the error body. */
  const events = async (query: string) => {
    const controller = new AbortController();
    const answer = await app.request(`/events?${query}`, { signal: controller.signal });
    const type = answer.headers.get("content-type");
    if (type?.startsWith("application/json")) return { status: answer.status, type, json: await answer.json() };
    controller.abort();
    await answer.body?.cancel();
    return { status: answer.status, type, json: undefined };
  };
  const ticket = async (body: object = {}) => (await call("POST", "/tickets", body)).json.ticket as string;
  return { clock, pitstop, app, call, anonymous, events, ticket };
}

describe("POST /tickets", () => {
  it("answers a ticket valid 60 s by default, up to 5 minutes with ttl, and refuses more", async () => {
    const { call } = setup();
    const first = await call("POST", "/tickets", {});
    expect(first).toEqual({ status: 200, json: { ticket: expect.any(String), expiresAt: "2026-05-01T08:01:00.000Z" } });
    expect(first.json.ticket).not.toContain(TOKEN);
    expect(first.json.ticket).toMatch(/^[\w-]+\.[\w-]+$/);
    expect((await call("POST", "/tickets", { topic: "jobs", ttl: "PT5M" })).json.expiresAt).toBe("2026-05-01T08:05:00.000Z");
    expect((await call("POST", "/tickets", { ttl: 10_000 })).json.expiresAt).toBe("2026-05-01T08:00:10.000Z");
    const over = await call("POST", "/tickets", { ttl: "PT5M1S" });
    expect(over).toEqual({ status: 400, json: { error: "invalid_request", message: "ttl must be at most 5 minutes (PT5M)", issues: [{ path: ["ttl"], message: "ttl must be at most 5 minutes (PT5M)" }] } });
    expect((await call("POST", "/tickets", { ttl: "soon" })).json.error).toBe("invalid_request");
    expect((await call("POST", "/tickets", { topic: "a\u0000b" })).json.error).toBe("invalid_request");
  });

  it("needs the bearer token (a ticket does not buy another)", async () => {
    const { anonymous, ticket } = setup();
    expect((await anonymous("POST", "/tickets", {})).json.error).toBe("unauthorized");
    expect((await anonymous("POST", `/tickets?ticket=${await ticket()}`, {})).json.error).toBe("unauthorized");
  });

  it("does not exist without a token: every route is open then", async () => {
    const { call } = setup(null);
    expect((await call("POST", "/tickets", {})).status).toBe(404);
  });
});

describe("GET /events?ticket=", () => {
  it("opens the stream of the ticket's topic without the Authorization header", async () => {
    const { events, ticket } = setup();
    expect(await events(`topic=jobs&ticket=${await ticket({ topic: "jobs" })}`)).toMatchObject({ status: 200, type: "text/event-stream" });
    // A ticket without a topic is for the default topic, which is also GET /events without one.
    const plain = await ticket();
    expect((await events(`ticket=${plain}`)).status).toBe(200);
    expect((await events(`topic=default&ticket=${plain}`)).status).toBe(200);
  });

  it("refuses the ticket on another topic", async () => {
    const { events, ticket } = setup();
    const jobs = await ticket({ topic: "jobs" });
    expect(await events(`topic=mail&ticket=${jobs}`)).toMatchObject({ status: 401, json: { error: "unauthorized", message: 'The ticket is for topic "jobs", not "mail": ask POST /tickets for a new one.' } });
    expect((await events(`ticket=${jobs}`)).json.error).toBe("unauthorized");
    expect((await events(`topic=jobs&ticket=${await ticket()}`)).json.error).toBe("unauthorized");
  });

  it("refuses it once expired with ticket_expired", async () => {
    const { events, ticket, clock } = setup();
    const jobs = await ticket({ topic: "jobs", ttl: "PT2M" });
    clock.advance(119_999);
    expect((await events(`topic=jobs&ticket=${jobs}`)).status).toBe(200);
    clock.advance(1);
    expect(await events(`topic=jobs&ticket=${jobs}`)).toMatchObject({
      status: 401,
      json: { error: "ticket_expired", message: "The ticket expired at 2026-05-01T08:02:00.000Z: ask POST /tickets for a new one." },
    });
  });

  it("refuses an altered ticket, or one signed with another token", async () => {
    const { events, ticket } = setup();
    const jobs = await ticket({ topic: "jobs", ttl: "PT1M" });
    const [payload, signature] = jobs.split(".") as [string, string];
    const longer = Buffer.from(JSON.stringify({ topic: "jobs", exp: T0 + 3_600_000 })).toString("base64url");
    for (const forged of [`${longer}.${signature}`, `${payload}.${signature.slice(0, -2)}AA`, payload, `${jobs}.x`, "garbage"]) {
      expect(await events(`topic=jobs&ticket=${forged}`), forged).toMatchObject({ status: 401, json: { error: "unauthorized", message: "The ticket is not valid (altered, or signed with another token): ask POST /tickets for a new one." } });
    }
    const other = setup("another-token");
    expect((await events(`topic=jobs&ticket=${await other.ticket({ topic: "jobs" })}`)).status).toBe(401);
  });

  it("is accepted on GET /events only", async () => {
    const { anonymous, ticket } = setup();
    const plain = await ticket();
    expect((await anonymous("GET", `/messages?ticket=${plain}`)).status).toBe(401);
    expect((await anonymous("GET", `/topics/default?ticket=${plain}`)).status).toBe(401);
    expect((await anonymous("POST", `/messages/x/ack?ticket=${plain}`, { token: "t" })).status).toBe(401);
  });

  it("delivers over a real socket to a client holding only the ticket", async () => {
    const { app, call, ticket } = setup();
    const server = await serveInProcess(app.fetch);
    cleanups.push(() => server.close());
    await call("POST", "/messages", { message: { id: "m1" }, topic: "jobs", at: T0 });
    const stream: SseClient = await openSse(`${server.url}/events?topic=jobs&ticket=${encodeURIComponent(await ticket({ topic: "jobs" }))}`);
    cleanups.push(() => stream.close());
    expect(stream.response.status).toBe(200);
    expect((await stream.nextDelivery(10_000)).id).toBe("m1");
  });
});
