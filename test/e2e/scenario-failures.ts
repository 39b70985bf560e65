import { expect } from "vitest";
import { jsonClient } from "../support/http.ts";
import { openSse } from "../support/sse.ts";

/**
 * Failures end and topics have rules, over HTTP on every runtime: dead after maxAttempts, a
 * final nack, redrive, dead letters purged, an ordered topic held back by a failing head.
 */
export async function runFailureScenario(base: string, auth: Record<string, string>): Promise<void> {
  const call = jsonClient(base, { headers: auth });
  const topic = `failing-${crypto.randomUUID().slice(0, 8)}`;
  const policy = await call("PUT", `/topics/${topic}`, { maxAttempts: 2, backoff: { base: 100, max: 100 } });
  expect(policy).toMatchObject({ status: 200, json: { maxAttempts: 2, backoff: { base: "PT0.1S", factor: 2, max: "PT0.1S" }, ordered: false } });
  const sse = await openSse(`${base}/events?topic=${topic}`, auth);
  try {
    expect((await call("POST", "/messages", { message: { id: `${topic}-m` }, topic })).status).toBe(201);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const d = await sse.nextDelivery();
      expect(d).toMatchObject({ id: `${topic}-m`, attempt });
      expect((await call("POST", `/messages/${d.id}/nack`, { token: d.token, error: `failed ${attempt}` })).status).toBe(204);
    }
    expect((await call("GET", `/messages/${topic}-m`)).json).toMatchObject({ state: "dead", attempts: 2, lastError: "failed 2" });
    expect((await call("GET", `/topics/${topic}`)).json.counts).toEqual({ pending: 0, locked: 0, dead: 1 });
    expect((await call("POST", `/messages/${topic}-m/redrive`)).json).toMatchObject({ state: "pending", attempts: 0 });
    const again = await sse.nextDelivery();
    expect(again).toMatchObject({ id: `${topic}-m`, attempt: 1 });
    expect((await call("POST", `/messages/${again.id}/nack`, { token: again.token, final: true })).status).toBe(204);
    expect(await call("DELETE", `/topics/${topic}/dead`)).toEqual({ status: 200, json: { removed: 1 } });
  } finally {
    sse.close();
  }

  // Listing page by page while messages are written: none listed twice, none that stayed skipped.
  const listed = `${topic}-list`;
  const base0 = Date.now() + 3_600_000;
  for (let i = 0; i < 25; i++) await call("POST", "/messages", { message: { id: `${listed}-${String(i).padStart(2, "0")}` }, topic: listed, at: base0 + i * 1000 });
  const seen: string[] = [];
  let cursor: string | null = null;
  let page = 0;
  do {
    const response = await call("GET", `/messages?topic=${listed}&limit=10${cursor ? `&cursor=${cursor}` : ""}`);
    expect(response.status).toBe(200);
    seen.push(...response.json.items.map((v: { id: string }) => v.id));
    cursor = response.json.next;
    // Between pages: one stored ahead of the cursor (listed later), one behind it (not listed).
    if (page++ === 0) {
      await call("POST", "/messages", { message: { id: `${listed}-ahead` }, topic: listed, at: base0 + 24_500 });
      await call("POST", "/messages", { message: { id: `${listed}-behind` }, topic: listed, at: base0 - 1000 });
    }
  } while (cursor);
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen).toEqual([...Array.from({ length: 25 }, (_, i) => `${listed}-${String(i).padStart(2, "0")}`), `${listed}-ahead`]);

  const ordered = `${topic}-ordered`;
  expect((await call("PUT", `/topics/${ordered}`, { ordered: true, backoff: { base: 100, max: 100 } })).status).toBe(200);
  const at = Date.now();
  for (const [i, id] of ["head", "next"].entries()) await call("POST", "/messages", { message: { id: `${ordered}-${id}` }, topic: ordered, at: at + i });
  const stream = await openSse(`${base}/events?topic=${ordered}`, auth);
  try {
    const head = await stream.nextDelivery();
    expect(head).toMatchObject({ id: `${ordered}-head`, attempt: 1 });
    await call("POST", `/messages/${head.id}/nack`, { token: head.token, error: "not yet" });
    const retry = await stream.nextDelivery();
    expect(retry).toMatchObject({ id: `${ordered}-head`, attempt: 2 });
    expect((await call("POST", `/messages/${retry.id}/ack`, { token: retry.token })).status).toBe(204);
    const next = await stream.nextDelivery();
    expect(next).toMatchObject({ id: `${ordered}-next`, attempt: 1 });
    expect((await call("POST", `/messages/${next.id}/ack`, { token: next.token })).status).toBe(204);
  } finally {
    stream.close();
  }
}
