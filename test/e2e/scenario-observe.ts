import { expect } from "vitest";
import { jsonClient } from "../support/http.ts";
import { parseExposition } from "../support/prometheus.ts";
import { openSse } from "../support/sse.ts";

/** What {@link runObserveScenario} expects of the server. */
export interface ObserveOptions {
  /** The server's PITSTOP_TOKEN, if any. */
  token?: string;
  /**
   * The server builds an engine per request (Workers with a database store), so its counters
   * cover one request: only the exposition's shape and the store's gauge are checked.
   */
  enginePerRequest?: boolean;
}

/**
 * Run right after the scenario delivered and acked a message on `topic` over SSE: `/metrics`
 * parses (strict text-format parser) and counts that delivery, and the dashboard shows a stored
 * message, on its page and on its stats stream, without claiming it.
 */
export async function runObserveScenario(base: string, topic: string, options: ObserveOptions): Promise<void> {
  const auth: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const call = jsonClient(base, { headers: auth });
  const id = `observed-${topic}`;
  expect((await call("POST", "/messages", { message: { id }, topic, at: Date.now() + 10 * 60_000 })).status).toBe(201);

  const response = await fetch(`${base}/metrics`, { headers: auth });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parseExposition(await response.text());
  for (const name of ["pitstop_messages", "pitstop_deliveries_total", "pitstop_acks_total", "pitstop_delivery_lateness_seconds", "pitstop_sse_streams", "pitstop_store_errors_total"]) {
    expect(families.has(name), name).toBe(true);
  }
  const ofTopic = (name: string) => families.get(name)!.samples.filter((s) => s.labels.topic === topic);
  expect(ofTopic("pitstop_messages").find((s) => s.labels.state === "pending")?.value).toBeGreaterThanOrEqual(0);
  if (!options.enginePerRequest) {
    expect(ofTopic("pitstop_deliveries_total").find((s) => s.labels.transport === "listener")?.value).toBeGreaterThanOrEqual(1);
    expect(ofTopic("pitstop_delivery_lateness_seconds").find((s) => s.name.endsWith("_count"))?.value).toBeGreaterThanOrEqual(1);
    expect(families.get("pitstop_acks_total")!.samples[0]!.value).toBeGreaterThanOrEqual(1);
  }

  if (options.token) {
    const login = await fetch(`${base}/ui`);
    expect(login.status).toBe(401);
    const html = await login.text();
    expect(html).toContain('action="/ui/login"');
    expect(html).not.toContain(id);
  }
  const page = await fetch(`${base}/ui`, { headers: auth });
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(`data-id="${id}"`);
  const stream = await openSse(`${base}/ui/stream`, auth);
  try {
    const frame = await stream.nextFrame(10_000);
    expect(frame.event).toBe("panels");
    expect(frame.data).toContain(`data-id="${id}"`);
  } finally {
    stream.close();
  }
  expect((await call("GET", `/messages/${id}`)).json).toMatchObject({ state: "pending", attempts: 0 });
  expect((await call("DELETE", `/messages/${id}`)).status).toBe(204);
}
