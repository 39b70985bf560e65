/**
 * `npm run bench:workers`
 *
 * The Durable Object store in the local workerd (Miniflare), wrangler.toml as shipped:
 * - webhook lateness by the object's alarm (no cron), receive time − `at`;
 * - SSE lateness of messages stored by other requests while a stream waits;
 * - what one object sustains: stores/s at rising concurrency (and the request latency past the
 *   ceiling), SSE deliveries/s of a backlog (with acks), webhook deliveries/s of a backlog.
 * Everything runs on this machine (workerd, receiver and client), so figures are indicative.
 * `-- --quick` runs smaller batches.
 */
import { jsonClient, viaNodeHttp, type JsonCall } from "../test/support/http.ts";
import { startReceiver } from "../test/support/receiver.ts";
import { openSse } from "../test/support/sse.ts";
import { bundleWorker, startWorkerd } from "../test/support/workerd.ts";

const quick = process.argv.includes("--quick");
const scale = quick ? 0.25 : 1;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50)} ms  p99 ${percentile(sorted, 99)} ms  max ${sorted.at(-1)} ms  (n=${sorted.length})`;
};
/** Runs `task(i)` for i in [0, n) with at most `concurrency` at once. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    while (next < n) await task(next++);
  }));
}
const expectStatus = (status: number, want: number, what: string) => {
  if (status !== want) throw new Error(`${what} answered ${status}`);
};

const receiver = await startReceiver();
const bundle = await bundleWorker();
const server = await startWorkerd(bundle, { PITSTOP_ALLOW_PRIVATE_CALLBACKS: "1", PITSTOP_LOCK_TIME: "PT60S", PITSTOP_WEBHOOK_CONCURRENCY: "32" });
const call: JsonCall = jsonClient(server.url, { transport: viaNodeHttp() });
console.log(`Durable Object store in local workerd (miniflare), ${bundle.gzipBytes >> 10} KiB gzip bundle; indicative figures on a shared machine`);

try {
  // Webhooks by alarm: stored ahead, due over 2 s.
  {
    const n = Math.round(400 * scale);
    const start = Date.now() + 4000;
    const arrivals: number[] = [];
    receiver.handler = (request, res) => {
      res.writeHead(204).end();
      arrivals.push(request.time - Date.parse(JSON.parse(request.body).at));
    };
    await pool(n, 16, async (i) => {
      const at = new Date(start + Math.floor((i * 2000) / n)).toISOString();
      expectStatus((await call("POST", "/messages", { message: { id: `hook-${i}` }, callback: receiver.url(), at })).status, 201, "store");
    });
    const overran = Date.now() > start;
    await receiver.waitFor(n, 60_000);
    console.log(`webhook lateness by alarm, ${n} due over 2 s${overran ? " (storing overran the window)" : ""}:`);
    console.log(`  ${summary(arrivals)}   (by the cron alone: up to 60 000 ms)`);
    receiver.reset();
  }

  // SSE: one stream waits; each message is stored by its own request, then acked.
  {
    const n = Math.round(200 * scale);
    const sse = await openSse(`${server.url}/events?topic=sse-bench`);
    await sse.nextFrame();
    const late: number[] = [];
    for (let i = 0; i < n; i++) {
      expectStatus((await call("POST", "/messages", { message: { id: `sse-${i}` }, topic: "sse-bench" })).status, 201, "store");
      const delivery = await sse.nextDelivery(10_000);
      late.push(Date.now() - Date.parse(delivery.at));
      void call("POST", `/messages/${delivery.id}/ack`, { token: delivery.token });
    }
    sse.close();
    console.log(`SSE lateness, message stored by another request (receive − stored at):`);
    console.log(`  ${summary(late)}`);
  }

  // Stores/s at rising concurrency, messages due in an hour (nothing is delivered).
  console.log("stores/s of one object (2 s per level):");
  let id = 0;
  for (const concurrency of [1, 8, 32, 128, 512]) {
    const latencies: number[] = [];
    let failed = 0;
    const until = Date.now() + 2000;
    const at = new Date(Date.now() + 3_600_000).toISOString();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const began = performance.now();
        // Past the ceiling a request may fail (a reset connection, a 5xx): counted, not fatal.
        const status = await call("POST", "/messages", { message: { id: `load-${id++}` }, topic: "load", at }).then((r) => r.status, () => 0);
        latencies.push(Math.round(performance.now() - began));
        if (status !== 201) failed++;
      }
    }));
    console.log(`  concurrency ${String(concurrency).padStart(3)}: ${Math.round(latencies.length / 2)} stores/s, request ${summary(latencies)}${failed ? `, ${failed} failed` : ""}`);
  }

  // Deliveries/s: an SSE backlog drained with acks, then a webhook backlog drained by alarms.
  {
    const n = Math.round(2000 * scale);
    await pool(n, 32, async (i) => expectStatus((await call("POST", "/messages", { message: { id: `drain-${i}` }, topic: "drain" })).status, 201, "store"));
    const sse = await openSse(`${server.url}/events?topic=drain&prefetch=100`);
    const began = performance.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const delivery = await sse.nextDelivery(30_000);
      acks.push(call("POST", `/messages/${delivery.id}/ack`, { token: delivery.token }));
    }
    await Promise.all(acks);
    sse.close();
    console.log(`SSE backlog of ${n}, one stream, prefetch 100, each acked: ${Math.round(n / ((performance.now() - began) / 1000))} deliveries/s`);
  }
  {
    const n = Math.round(2000 * scale);
    const due = Date.now() + 5000 * scale + 2000;
    await pool(n, 32, async (i) => {
      const at = new Date(due).toISOString();
      expectStatus((await call("POST", "/messages", { message: { id: `hook-drain-${i}` }, callback: receiver.url(), at })).status, 201, "store");
    });
    await receiver.waitFor(n, 120_000);
    const last = Math.max(...receiver.received.map((r) => r.time));
    console.log(`webhook backlog of ${n} due at once, by alarm (batches of 500, 32 in flight): ${Math.round(n / ((last - due) / 1000))} deliveries/s`);
  }
} finally {
  await server.stop();
  await bundle.remove();
  await receiver.close();
}
