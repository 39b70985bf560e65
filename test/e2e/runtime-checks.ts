import { expect } from "vitest";
import { jsonClient } from "../support/http.ts";
import type { ServerProcess } from "../support/server-process.ts";
import { openSse } from "../support/sse.ts";

/** The line a listening runtime prints, on a port of its choosing, with its store. */
export const listeningLine = (store = "memory") => new RegExp(`pitstop listening on http://127\\.0\\.0\\.1:\\d+ \\(store: ${store}\\)`);

/** SIGTERM ends an open SSE stream and the process exits 0. */
export async function expectSigtermEndsStreams(server: ServerProcess, token: string): Promise<void> {
  const sse = await openSse(`${server.url}/events?topic=bye`, { authorization: `Bearer ${token}` });
  expect((await sse.nextFrame()).comment).toMatch(/^connected as /);
  expect(await server.stop("SIGTERM")).toBe(0);
  await expect(sse.nextFrame(5000)).rejects.toThrow(/ended|terminated|aborted/i);
}

/** A start that must fail: a non-zero exit and `line`, with no stack trace. */
export function expectRefusedStart({ code, output }: { code: number | null; output: string }, line: RegExp): void {
  expect(code).not.toBe(0);
  expect(output).toMatch(line);
  expect(output).not.toMatch(/\n\s+at /);
}

/**
 * The crash hand-over: 20 messages claimed by a server that is then SIGKILLed are delivered again
 * (attempt 2) by the server `restart` starts on the same store, and acked there. Returns that
 * server and when the first was killed.
 */
export async function expectCrashHandOver(first: ServerProcess, restart: () => Promise<ServerProcess>): Promise<{ second: ServerProcess; killedAt: number }> {
  const callFirst = jsonClient(first.url);
  const ids = Array.from({ length: 20 }, (_, i) => `crash-${i}`);
  for (const id of ids) expect((await callFirst("POST", "/messages", { message: { id }, topic: "crash" })).status).toBe(201);
  const doomed = await openSse(`${first.url}/events?topic=crash`);
  const claimed = new Set<string>();
  while (claimed.size < ids.length) claimed.add((await doomed.nextDelivery()).id);
  const killedAt = Date.now();
  await first.stop("SIGKILL");

  const second = await restart();
  const callSecond = jsonClient(second.url);
  const survivor = await openSse(`${second.url}/events?topic=crash`);
  const redelivered = new Map<string, number>();
  while (redelivered.size < ids.length) {
    const d = await survivor.nextDelivery(30_000);
    redelivered.set(d.id, d.attempt);
    expect((await callSecond("POST", `/messages/${d.id}/ack`, { token: d.token })).status).toBe(204);
  }
  survivor.close();
  expect([...redelivered.keys()].sort()).toEqual([...ids].sort());
  expect(new Set(redelivered.values())).toEqual(new Set([2]));
  for (const id of ids) expect((await callSecond("GET", `/messages/${id}`)).status).toBe(404);
  return { second, killedAt };
}
