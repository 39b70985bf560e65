/**
 * Webhook delivery bench: stores `count` callback messages due over `windowMs` in the memory
 * store, lets the Node webhook loop POST them (signed) to a local receiver running in a worker
 * thread (so it does not share the sender's event loop), and prints deliveries/s and lateness
 * (receive time − scheduled `at`).
 *
 *   npx tsx scripts/bench-webhook.ts [--count 2000] [--window 1000] [--concurrency 16]
 */
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { callbackChecker } from "../src/webhook/callback-url.ts";
import { createPitstop } from "../src/index.ts";
import { startWebhookLoop } from "../src/index.ts";
import { tsWorker } from "./ts-worker.ts";

export interface WebhookBenchOptions {
  /** Messages to deliver. @default 2000 */
  count?: number;
  /** Their due times are spread evenly over this window (ms). @default 1000 */
  windowMs?: number;
  /** Requests in flight at once. @default 16 */
  concurrency?: number;
  /** Longest wait for the deliveries before reporting what arrived (ms). @default 60000 */
  deadlineMs?: number;
}

export interface WebhookBenchResult {
  delivered: number;
  perSecond: number;
  latenessMs: { p50: number; p99: number; max: number };
}

const SECRET = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
const LEAD_MS = 1000;

export async function runWebhookBench(options: WebhookBenchOptions = {}): Promise<WebhookBenchResult> {
  const { count = 2000, windowMs = 1000, concurrency = 16, deadlineMs = 60_000 } = options;
  const worker = tsWorker(new URL("./bench-webhook-receiver.ts", import.meta.url));
  const received: { time: number; at: number }[] = [];
  let allArrived = () => {};
  const arrived = new Promise<void>((resolve) => (allArrived = resolve));
  const callback = await new Promise<string>((resolve) =>
    worker.on("message", (m: { url: string } | { time: number; at: number }) => {
      if ("url" in m) return resolve(m.url);
      if (received.push(m) === count) allArrived();
    }),
  );
  const checkCallback = callbackChecker({ allowPrivate: true });
  const pitstop = createPitstop({ checkCallback });
  const loop = startWebhookLoop(pitstop, { signingSecret: SECRET, concurrency, checkCallback });
  try {
    // The first message falls due LEAD_MS from now, so storing them all does not count as lateness.
    const start = Date.now() + LEAD_MS;
    for (let i = 0; i < count; i++) {
      const at = start + Math.floor((i * windowMs) / count);
      await pitstop.schedule({ message: { id: `w${i}`, n: i }, at, callback });
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
    await Promise.race([arrived, deadline]);
    if (received.length < count) console.error(`  got ${received.length} of ${count} deliveries in ${deadlineMs} ms`);
    const lateness = received.map((r) => r.time - r.at).sort((a, b) => a - b);
    const at = (q: number) => lateness[Math.min(lateness.length - 1, Math.floor(q * lateness.length))] ?? NaN;
    const spanMs = Math.max(1, (received.at(-1)?.time ?? start) - Math.min(start, received[0]?.time ?? start));
    const result = { delivered: received.length, perSecond: (received.length * 1000) / spanMs, latenessMs: { p50: at(0.5), p99: at(0.99), max: lateness.at(-1) ?? NaN } };
    console.log(`webhook bench: ${count} messages due over ${windowMs} ms, concurrency ${concurrency}, signed, memory store, node ${process.version}`);
    console.log(`  delivered ${result.delivered}/${count} in ${(spanMs / 1000).toFixed(2)} s: ${result.perSecond.toFixed(0)} deliveries/s`);
    console.log(`  lateness (receive − at): p50 ${result.latenessMs.p50} ms, p99 ${result.latenessMs.p99} ms, max ${result.latenessMs.max} ms`);
    return result;
  } finally {
    await loop.stop();
    await pitstop.close();
    worker.postMessage("close");
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { count: { type: "string" }, window: { type: "string" }, concurrency: { type: "string" } } });
  const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  await runWebhookBench({ count: number(values.count), windowMs: number(values.window), concurrency: number(values.concurrency) });
  process.exit(0);
}
