import { expect } from "vitest";
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
