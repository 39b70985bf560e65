import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, viaApp } from "./support/http.ts";

/** Friday 2026-05-01, 10:00 in Berlin. */
const T0 = Date.parse("2026-05-01T08:00:00Z");

function setup() {
  const clock = manualClock(T0);
  const store = memoryStore();
  const pitstop = createPitstop({ store, clock, lockTime: "PT30S" });
  const call = jsonClient("", { transport: viaApp(createApp(pitstop)) });
  return { clock, pitstop, call, store };
}

describe("POST /messages with cron, tz and missed", () => {
  it("stores a cron schedule at its first occurrence and shows it with the next three", async () => {
    const { call } = setup();
    const body = { message: { id: "standup" }, cron: "0 9 * * MON-FRI", tz: "Europe/Berlin", missed: "skip" };
    expect(await call("POST", "/messages", body)).toEqual({
      status: 201,
      json: { id: "standup", at: "2026-05-04T07:00:00.000Z", cron: "0 9 * * MON-FRI", tz: "Europe/Berlin", missed: "skip", topic: "default" },
    });
    expect((await call("GET", "/messages/standup")).json).toEqual({
      id: "standup",
      message: { id: "standup" },
      at: "2026-05-04T07:00:00.000Z",
      cron: "0 9 * * MON-FRI",
      tz: "Europe/Berlin",
      missed: "skip",
      upcoming: ["2026-05-04T07:00:00.000Z", "2026-05-05T07:00:00.000Z", "2026-05-06T07:00:00.000Z"],
      topic: "default",
      attempts: 0,
      state: "pending",
      locked: false,
    });
  });

  it("starts a cron at the first time at or after `at`, and shows UTC and once by default", async () => {
    const { call } = setup();
    const { json } = await call("POST", "/messages", { message: { id: "q" }, cron: "*/15 * * * *", at: "2026-05-01T08:15:00Z", end: "2026-05-01T08:45:00Z" });
    expect(json).toEqual({ id: "q", at: "2026-05-01T08:15:00.000Z", cron: "*/15 * * * *", tz: "UTC", missed: "once", end: "2026-05-01T08:45:00.000Z", topic: "default" });
    expect((await call("GET", "/messages/q")).json.upcoming).toEqual(["2026-05-01T08:15:00.000Z", "2026-05-01T08:30:00.000Z", "2026-05-01T08:45:00.000Z"]);
  });

  it("steps a daily interval on the zone's wall clock through acks", async () => {
    const { call, clock, pitstop } = setup();
    clock.set(Date.parse("2026-10-23T00:00:00Z"));
    await call("POST", "/messages", { message: { id: "daily" }, at: "2026-10-24T09:00:00+02:00", interval: "P1D", tz: "Europe/Berlin" });
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.set(Date.parse((await call("GET", "/messages/daily")).json.at));
      const [d] = await pitstop.claim({ limit: 1 });
      seen.push(new Date(d.at).toISOString());
      expect((await call("POST", "/messages/daily/ack", { token: d.token })).status).toBe(204);
    }
    expect(seen).toEqual(["2026-10-24T07:00:00.000Z", "2026-10-25T08:00:00.000Z", "2026-10-26T08:00:00.000Z"]);
  });

  it.each([
    ["an unknown zone", { cron: "0 9 * * *", tz: "Europe/Atlantis" }, "tz", /tz must be an IANA time zone name/],
    ["a zone that is not a string", { cron: "0 9 * * *", tz: 2 }, "tz", /tz must be a string/],
    ["a bad expression", { cron: "0 25 * * *" }, "cron", /cron must be a cron expression of 5 fields, or 6 with seconds \(.*hour.*\)/],
    ["7 fields", { cron: "0 0 9 * * * 2027" }, "cron", /cron must be a cron expression/],
    ["cron with interval", { cron: "0 9 * * *", interval: "P1D" }, "cron", /cron and interval are mutually exclusive/],
    ["a cron that never occurs", { cron: "0 0 30 2 *" }, "cron", /cron has no occurrence at or after at/],
    ["no occurrence before end", { cron: "0 9 * * *", tz: "Europe/Berlin", end: "2026-05-01T12:00:00Z" }, "end", /no occurrence between at and end/],
    ["tz on a one-shot message", { tz: "Europe/Berlin" }, "tz", /tz requires an interval or a cron/],
    ["missed on a one-shot message", { missed: "all" }, "missed", /missed requires an interval or a cron/],
    ["an unknown missed policy", { cron: "0 9 * * *", missed: "some" }, "missed", /missed must be one of "once", "skip", "all"/],
    ["end without a schedule", { end: T0 + 1 }, "end", /end requires an interval or a cron/],
  ])("refuses %s with 400 naming the field, and changes nothing", async (_, fields, field, message) => {
    const { call } = setup();
    await call("POST", "/messages", { message: { id: "keep", v: 1 }, cron: "0 12 * * *" });
    const response = await call("POST", "/messages", { message: { id: "keep", v: 2 }, ...fields });
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_request", message: expect.stringMatching(message) });
    expect(response.json.issues.map((i: { path: string[] }) => i.path[0])).toContain(field);
    expect((await call("GET", "/messages/keep")).json).toMatchObject({ message: { id: "keep", v: 1 }, cron: "0 12 * * *", at: "2026-05-01T12:00:00.000Z" });
  });

  it("takes the same fields in the library, and checks them the same way", async () => {
    const { pitstop } = setup();
    const stored = await pitstop.schedule({ message: { id: "lib" }, cron: "30 2 * * *", tz: "Europe/Berlin", missed: "all", end: "2027-01-01T00:00:00Z" });
    expect(stored).toMatchObject({ at: "2026-05-02T00:30:00.000Z", cron: "30 2 * * *", tz: "Europe/Berlin", missed: "all", replaced: false });
    await expect(pitstop.schedule({ message: {}, cron: "0 9 * * *", tz: "Nowhere/Town" })).rejects.toMatchObject({ code: "invalid_request", issues: [{ path: ["tz"] }] });
    await expect(pitstop.schedule({ message: {}, cron: "0 9 * * *", missed: "never" as "all" })).rejects.toMatchObject({ issues: [{ path: ["missed"] }] });
  });
});

describe("POST /schedules/preview", () => {
  it("lists occurrences without storing anything", async () => {
    const { call, store } = setup();
    const cron = await call("POST", "/schedules/preview", { cron: "0 9 * * MON-FRI", tz: "America/New_York", count: 4 });
    expect(cron).toEqual({
      status: 200,
      json: { occurrences: ["2026-05-01T13:00:00.000Z", "2026-05-04T13:00:00.000Z", "2026-05-05T13:00:00.000Z", "2026-05-06T13:00:00.000Z"] },
    });
    const interval = await call("POST", "/schedules/preview", { interval: "P1M", at: "2026-01-31T09:00:00Z", end: "2026-04-30T09:00:00Z" });
    expect(interval.json.occurrences).toEqual(["2026-01-31T09:00:00.000Z", "2026-02-28T09:00:00.000Z", "2026-03-31T09:00:00.000Z", "2026-04-30T09:00:00.000Z"]);
    const seconds = await call("POST", "/schedules/preview", { cron: "*/10 * * * * *" });
    expect(seconds.json.occurrences).toHaveLength(10);
    expect(seconds.json.occurrences[0]).toBe("2026-05-01T08:00:00.000Z");
    expect((await call("POST", "/schedules/preview", { at: T0 + 5 })).json).toEqual({ occurrences: ["2026-05-01T08:00:00.005Z"] });
    expect((await call("POST", "/schedules/preview", { cron: "* * * * *", count: 100 })).json.occurrences).toHaveLength(100);
    expect(await store.nextDueAt("topic:default")).toBeUndefined();
  });

  it.each([
    ["count over 100", { cron: "* * * * *", count: 101 }, "count"],
    ["count zero", { cron: "* * * * *", count: 0 }, "count"],
    ["an unknown field", { cron: "* * * * *", missed: "all" }, ""],
    ["a bad zone", { interval: "P1D", tz: "Mars/Base" }, "tz"],
    ["cron with interval", { cron: "* * * * *", interval: "PT1M" }, "cron"],
    ["no occurrence before end", { cron: "0 0 1 1 *", end: T0 + 1000 }, "end"],
  ])("refuses %s with 400 naming the field", async (_, body, field) => {
    const { call } = setup();
    const response = await call("POST", "/schedules/preview", body);
    expect(response.status).toBe(400);
    expect(response.json.error).toBe("invalid_request");
    expect(response.json.issues.map((i: { path: string[] }) => i.path[0] ?? "")).toContain(field);
  });

  it("needs a JSON body", async () => {
    const { pitstop } = setup();
    const app = createApp(pitstop);
    const response = await app.request("/schedules/preview", { method: "POST", body: "cron=* * * * *" });
    expect(response.status).toBe(415);
  });
});
