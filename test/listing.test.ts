import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, viaApp } from "./support/http.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function setup() {
  const clock = manualClock(T0);
  const pitstop = createPitstop({ store: memoryStore(), clock, lockTime: "PT30S" });
  const call = jsonClient("", { transport: viaApp(createApp(pitstop)) });
  return { clock, pitstop, call };
}

/** Every page of `query`, with `between` run after each page but the last. */
async function allPages(call: ReturnType<typeof setup>["call"], query: string, between: (page: number) => Promise<void> = async () => {}) {
  const pages: { id: string }[][] = [];
  let cursor: string | null = null;
  do {
    const { status, json } = await call("GET", `/messages?${query}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(status).toBe(200);
    pages.push(json.items);
    cursor = json.next;
    if (cursor) await between(pages.length);
  } while (cursor);
  return pages;
}

describe("GET /messages", () => {
  it("answers an empty page for an empty topic", async () => {
    const { call } = setup();
    expect(await call("GET", "/messages")).toEqual({ status: 200, json: { items: [], next: null } });
  });

  it("lists the default topic in due-time order, a locked message where its lock expires, as GET /messages/:id shows it", async () => {
    const { call, pitstop } = setup();
    await call("POST", "/messages", { message: { id: "late" }, at: T0 + 60_000 });
    await call("POST", "/messages", { message: { id: "due" }, at: T0 - 1000, interval: "PT1H" });
    await call("POST", "/messages", { message: { id: "soon", x: 1 }, at: T0 + 10_000 });
    await call("POST", "/messages", { message: { id: "elsewhere" }, topic: "jobs" });
    await pitstop.claim({ limit: 1 });
    const { status, json } = await call("GET", "/messages");
    expect(status).toBe(200);
    expect(json.items.map((m: { id: string }) => m.id)).toEqual(["soon", "due", "late"]);
    expect(json.items[1]).toEqual((await call("GET", "/messages/due")).json);
    expect(json.items[1]).toMatchObject({ locked: true, attempts: 1, at: iso(T0 - 1000), interval: "PT1H" });
    expect(json.items[0]).toEqual({ id: "soon", message: { id: "soon", x: 1 }, at: iso(T0 + 10_000), topic: "default", attempts: 0, state: "pending", locked: false });
    expect(json.next).toBeNull();
    expect((await call("GET", "/messages?topic=jobs")).json.items.map((m: { id: string }) => m.id)).toEqual(["elsewhere"]);
  });

  it("lists webhook messages with webhooks=1, not with their topic", async () => {
    const { call } = setup();
    await call("POST", "/messages", { message: { id: "hook" }, topic: "jobs", callback: "https://example.com/hook" });
    await call("POST", "/messages", { message: { id: "plain" }, topic: "jobs" });
    expect((await call("GET", "/messages?webhooks=1")).json.items.map((m: { id: string }) => m.id)).toEqual(["hook"]);
    expect((await call("GET", "/messages?topic=jobs")).json.items.map((m: { id: string }) => m.id)).toEqual(["plain"]);
  });

  it("filters on state", async () => {
    const { call, pitstop, clock } = setup();
    for (let i = 0; i < 4; i++) await call("POST", "/messages", { message: { id: `m${i}` }, at: T0 + i });
    clock.advance(10);
    await pitstop.claim({ limit: 2 });
    const ids = async (query: string) => (await call("GET", `/messages?${query}`)).json.items.map((m: { id: string }) => m.id);
    expect(await ids("state=locked")).toEqual(["m0", "m1"]);
    expect(await ids("state=pending")).toEqual(["m2", "m3"]);
    clock.advance(30_000);
    expect(await ids("state=locked")).toEqual([]);
    expect(await ids("state=pending&limit=1")).toEqual(["m2"]);
  });

  it("pages with a cursor while messages are stored, claimed and removed: each untouched message exactly once", async () => {
    const { call, pitstop } = setup();
    for (let i = 0; i < 250; i++) await pitstop.store({ id: `s${String(i).padStart(3, "0")}` }, T0 + 1000 + Math.floor(i / 3));
    const removed: string[] = [];
    const pages = await allPages(call, "limit=100", async (page) => {
      await pitstop.store({ id: `behind-${page}` }, T0);
      await pitstop.store({ id: `ahead-${page}` }, T0 + 10_000);
      // Claimed, the message just stored behind the cursor moves ahead of it, to its lock's expiry.
      expect((await pitstop.claim({ limit: 1 })).map((d) => d.id)).toEqual([`behind-${page}`]);
      const gone = `s${String(page * 100 + 20).padStart(3, "0")}`;
      await pitstop.remove(gone);
      removed.push(gone);
    });
    expect(pages.map((p) => p.length)).toEqual([100, 100, 52]);
    const listed = pages.flat().map((m) => m.id);
    expect(new Set(listed).size).toBe(listed.length);
    const untouched = Array.from({ length: 250 }, (_, i) => `s${String(i).padStart(3, "0")}`).filter((id) => !removed.includes(id));
    expect(listed.filter((id) => id.startsWith("s"))).toEqual(untouched);
    expect(listed.filter((id) => !id.startsWith("s"))).toEqual(["ahead-1", "ahead-2", "behind-1", "behind-2"]);
  });

  it.each([
    ["limit=0", /limit/],
    ["limit=1001", /limit/],
    ["limit=ten", /limit/],
    ["state=gone", /state must be "pending", "locked" or "dead"/],
    ["state=dead&webhooks=1", /dead letters are listed by topic/],
    ["topic=", /topic must not be empty/],
    ["webhooks=maybe", /webhooks/],
    ["webhooks=1&topic=jobs", /topic cannot be given with webhooks/],
    ["cursor=%21%21", /cursor is not a cursor this server gave out/],
    ["cursor=Z2FyYmFnZQ", /cursor is not a cursor this server gave out/],
    ["cursor=_w", /cursor is not a cursor this server gave out/],
  ])("refuses %s with 400 invalid_request", async (query, message) => {
    const { call } = setup();
    await call("POST", "/messages", { message: { id: "a" } });
    const { status, json } = await call("GET", `/messages?${query}`);
    expect(status).toBe(400);
    expect(json.error).toBe("invalid_request");
    expect(json.message).toMatch(message);
  });
});

describe("pitstop.list", () => {
  it("defaults to 100 per page and checks its options", async () => {
    const { pitstop } = setup();
    for (let i = 0; i < 150; i++) await pitstop.store({ id: `m${i}` }, T0 + i);
    const first = await pitstop.list();
    expect(first.items.length).toBe(100);
    const second = await pitstop.list({ cursor: first.next! });
    expect(second).toMatchObject({ next: null });
    expect(second.items.map((m) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i + 100}`));
    await expect(pitstop.list({ limit: 1.5 })).rejects.toMatchObject({ code: "invalid_request" });
    await expect(pitstop.list({ state: "gone" as "locked" })).rejects.toMatchObject({ code: "invalid_request" });
    await expect(pitstop.list({ topic: "" })).rejects.toMatchObject({ code: "invalid_request" });
  });
});

describe("GET /messages?state=dead", () => {
  it("lists a topic's dead letters in the order they died, page by page", async () => {
    const { call, pitstop, clock } = setup();
    for (const id of ["d1", "d2", "d3"]) {
      await call("POST", "/messages", { message: { id }, topic: "t" });
      const [d] = await pitstop.claim({ topic: "t", limit: 1 });
      expect(d.id).toBe(id);
      await d.nack({ final: true, error: `no ${id}` });
      clock.advance(1000);
    }
    await call("POST", "/messages", { message: { id: "alive" }, topic: "t" });
    const first = await call("GET", "/messages?topic=t&state=dead&limit=2");
    expect(first.json.items.map((v: { id: string; state: string }) => [v.id, v.state])).toEqual([["d1", "dead"], ["d2", "dead"]]);
    const second = await call("GET", `/messages?topic=t&state=dead&limit=2&cursor=${first.json.next}`);
    expect(second.json).toMatchObject({ items: [{ id: "d3", lastError: "no d3" }], next: null });
    expect((await call("GET", "/messages?topic=t")).json.items.map((v: { id: string }) => v.id)).toEqual(["alive"]);
  });
});
