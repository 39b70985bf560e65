import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, viaApp } from "./support/http.ts";

const T0 = Date.parse("2026-06-01T10:00:00Z");

function setup() {
  const clock = manualClock(T0);
  const pitstop = createPitstop({ clock, lockTime: "PT30S", log: () => {} });
  const app = createApp(pitstop);
  return { clock, pitstop, app, call: jsonClient("", { transport: viaApp(app) }) };
}

describe("topic policies over HTTP", () => {
  it("sets, shows, lists and resets a policy, defaults filled in", async () => {
    const { call } = setup();
    expect(await call("GET", "/topics/jobs")).toMatchObject({ status: 404, json: { error: "not_found" } });
    const put = await call("PUT", "/topics/jobs", { maxAttempts: 3, backoff: { base: "PT2S" }, ordered: true });
    expect(put).toEqual({ status: 200, json: { maxAttempts: 3, lockTime: "PT30S", backoff: { base: "PT2S", factor: 2, max: "PT30S" }, ordered: true } });
    await call("POST", "/messages", { message: { id: "j1" }, topic: "jobs" });
    expect(await call("GET", "/topics/jobs")).toEqual({ status: 200, json: { name: "jobs", policy: put.json, counts: { pending: 1, locked: 0, dead: 0 } } });
    await call("POST", "/messages", { message: { id: "d1" } });
    expect((await call("GET", "/topics")).json.items.map((t: { name: string }) => t.name)).toEqual(["default", "jobs"]);
    expect((await call("DELETE", "/topics/jobs/policy")).status).toBe(204);
    expect((await call("GET", "/topics/jobs")).json.policy).toEqual({ maxAttempts: 20, lockTime: "PT30S", backoff: { base: "PT1S", factor: 2, max: "PT30S" }, ordered: false });
  });

  it.each([
    [{ maxAttempts: 0 }, ["maxAttempts"]],
    [{ maxAttempts: 2.5 }, ["maxAttempts"]],
    [{ lockTime: "soon" }, ["lockTime"]],
    [{ lockTime: "P1M" }, ["lockTime"]],
    [{ backoff: { factor: 0.5 } }, ["backoff", "factor"]],
    [{ backoff: { base: -1 } }, ["backoff.base"]],
    [{ ordered: "yes" }, ["ordered"]],
    [{ color: "red" }, []],
  ])("refuses %o with 400 and changes nothing", async (body, path) => {
    const { call } = setup();
    await call("PUT", "/topics/jobs", { maxAttempts: 7 });
    const response = await call("PUT", "/topics/jobs", body);
    expect(response.status).toBe(400);
    expect(response.json.error).toBe("invalid_request");
    if (path.length) expect(response.json.issues[0].path).toEqual(path);
    expect((await call("GET", "/topics/jobs")).json.policy.maxAttempts).toBe(7);
  });
});

describe("dead letters over HTTP", () => {
  it("goes dead after maxAttempts nacks or on a final nack, is redriven one by one or by topic, and purged", async () => {
    const { call, pitstop, clock } = setup();
    await call("POST", "/messages", { message: { id: "m" }, maxAttempts: 2 });
    await call("POST", "/messages", { message: { id: "f" } });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [d] = await pitstop.claim({ limit: 1 });
      expect((await call("POST", "/messages/m/nack", { token: d.token, error: `try ${attempt}`, retryIn: 0 })).status).toBe(204);
    }
    expect((await call("GET", "/messages/m")).json).toMatchObject({ state: "dead", attempts: 2, lastError: "try 2", maxAttempts: 2, failedAt: new Date(T0).toISOString() });
    const [f] = await pitstop.claim({ limit: 1 });
    expect((await call("POST", "/messages/f/nack", { token: f.token, final: true })).status).toBe(204);
    expect((await call("GET", "/topics/default")).json.counts).toEqual({ pending: 0, locked: 0, dead: 2 });
    expect(await call("POST", "/messages/nope/redrive")).toMatchObject({ status: 404 });
    const at = T0 + 60_000;
    const redriven = await call("POST", "/messages/m/redrive", { at });
    expect(redriven).toMatchObject({ status: 200, json: { id: "m", state: "pending", attempts: 0 } });
    expect(await call("POST", "/messages/m/redrive")).toMatchObject({ status: 409, json: { error: "invalid_state" } });
    expect(await pitstop.claim({ limit: 5 })).toEqual([]);
    clock.set(at);
    expect((await pitstop.claim({ limit: 5 })).map((d) => d.id)).toEqual(["m"]);
    expect(await call("POST", "/topics/default/redrive")).toEqual({ status: 200, json: { redriven: 1 } });
    expect((await call("GET", "/messages/f")).json.state).toBe("pending");
    const [again] = await pitstop.claim({ limit: 1 });
    await call("POST", `/messages/${again.id}/nack`, { token: again.token, final: true });
    expect(await call("DELETE", "/topics/default/dead")).toEqual({ status: 200, json: { removed: 1 } });
    expect((await call("GET", `/messages/${again.id}`)).status).toBe(404);
  });
});

describe("failed occurrences of a cron schedule", () => {
  it("records the failure and moves on to the next cron time: a cron message never dies", async () => {
    const { pitstop, clock } = setup();
    clock.set(Date.parse("2026-06-01T09:00:00Z"));
    await pitstop.schedule({ message: { id: "nine" }, cron: "0 9 * * *", tz: "UTC", maxAttempts: 1 });
    const [d] = await pitstop.claim({ limit: 1 });
    await d.nack({ error: "down", final: true });
    expect(await pitstop.get("nine")).toMatchObject({
      state: "pending",
      at: "2026-06-02T09:00:00.000Z",
      failures: 1,
      lastFailure: { at: "2026-06-01T09:00:00.000Z", attempts: 1, lastError: "down" },
    });
  });
});
