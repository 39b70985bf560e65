/**
 * `npm run bench [-- --store memory|mongodb|sqlite] [-- --webhook] [-- --only ingest,deferred,backlog,ordered,scale,listing]`
 *
 * Runs a pitstop server in this process on 127.0.0.1 and measures it over HTTP + SSE:
 * - ingest: stores/s over HTTP, N (`--ingest`, default 20,000) single `POST /messages` with 50 in
 *   flight on keep-alive connections, then 5N in `POST /messages/batch` of 500 with 4 in flight;
 * - deferred: N messages due over a 1 s window, one SSE listener acking each; lateness
 *   (receive time − scheduled time) p50/p99/p99.9/max;
 * - backlog: M already-due messages drained through one SSE listener with batch acks;
 * - ordered: N messages on an ordered topic, one SSE listener acking each with its own POST;
 * - scale (memory store only): heap with 1M pending messages, and claim cost with 1M pending
 *   against an empty store;
 * - listing (`--only listing`, not in the default set): 100,000 stored messages read page by page (1,000 a page) over
 *   `GET /messages` and through `pitstop.list`: time of the first, middle and last page.
 * `--metrics on|off|both` (default both): the deferred run with metrics and lateness recording
 * (the server's default), without them, or both side by side with the difference of the p99s;
 * with `--rounds N`, N runs of each in ABBA order (so neither always runs on a warmer or more
 * littered heap) and their median p99s. The other workloads run with them.
 * With `--store mongodb` it uses MONGODB_URI, or starts the project's wire-protocol test double
 * (labelled as such), and prints database round trips per delivered message. With `--store sqlite`
 * each run gets a fresh database file (WAL, group commit) in a temporary directory.
 */
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createApp } from "../src/http/app.ts";
import { createMetrics } from "../src/metrics/index.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import type { Store } from "../src/types.ts";
import { tsWorker } from "./ts-worker.ts";
import type { ClientResult, ClientWorkload } from "./bench-client.ts";

const { values: args } = parseArgs({
  options: {
    store: { type: "string", default: "memory" },
    webhook: { type: "boolean", default: false },
    only: { type: "string", default: "ingest,deferred,backlog,ordered,scale" },
    ingest: { type: "string", default: "20000" },
    deferred: { type: "string", default: "2000" },
    backlog: { type: "string", default: "20000" },
    ordered: { type: "string", default: "2000" },
    pending: { type: "string", default: "1000000" },
    listing: { type: "string", default: "100000" },
    metrics: { type: "string", default: "both" },
    rounds: { type: "string", default: "1" },
  },
});

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const fmt = (n: number, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

interface Backend {
  label: string;
  make(): Promise<Store>;
  /** Database commands sent so far, if this backend can count them. */
  roundTrips?(): number;
  close(): Promise<void>;
}

async function backend(): Promise<Backend> {
  if (args.store === "memory") return { label: "memory store", make: async () => memoryStore(), close: async () => {} };
  if (args.store === "sqlite") return sqliteBackend();
  if (args.store !== "mongodb") throw new Error(`--store ${args.store}: use memory, mongodb or sqlite`);
  const { MongoClient } = await import("mongodb");
  const { mongoStore } = await import("../src/stores/mongodb.ts");
  let uri = process.env.MONGODB_URI;
  let label = "MongoDB";
  let double: ChildProcess | undefined;
  if (!uri) {
    // The double runs in its own process so its work does not land on the server's event loop.
    double = spawn(process.execPath, ["--import", "tsx", "tools/mongo-double/main.ts"], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] });
    uri = await new Promise<string>((resolve) => double!.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
    label = "MongoDB test double";
    console.log("NOTE: no MONGODB_URI, so this runs against the project's wire-protocol test double (one JS process,");
    console.log("      no real indexes), not a real mongod: round trips are real, rates and lateness are only indicative.\n");
  }
  const client = new MongoClient(uri, { monitorCommands: true });
  let commands = 0;
  client.on("commandStarted", () => commands++);
  await client.connect();
  const dbName = `pitstop_bench_${Date.now()}`;
  return {
    label,
    make: async () => mongoStore({ client, dbName }),
    roundTrips: () => commands,
    close: async () => {
      await client.db(dbName).dropDatabase().catch(() => {});
      await client.close();
      double?.kill();
    },
  };
}

async function sqliteBackend(): Promise<Backend> {
  const { sqliteFileStore } = await import("../src/stores/sqlite-node.ts");
  const dir = mkdtempSync(join(tmpdir(), "pitstop-bench-"));
  const stores: Store[] = [];
  return {
    label: "SQLite store, a file in WAL mode, group commit, log synced before answering",
    make: async () => {
      const store = sqliteFileStore({ path: join(dir, `bench-${stores.length}.db`) });
      stores.push(store);
      return store;
    },
    close: async () => {
      await Promise.all(stores.map((store) => store.dispose?.()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves an app over `store`; `instrumented`: with metrics and lateness recording, as a server runs. */
async function withServer<T>(store: Store, run: (base: string, pitstop: ReturnType<typeof createPitstop>) => Promise<T>, instrumented = true): Promise<T> {
  const pitstop = createPitstop({ store, lockTime: "PT1M", recordLateness: instrumented });
  const app = createApp(pitstop, instrumented ? { metrics: createMetrics(pitstop) } : {});
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    return await run(base, pitstop);
  } finally {
    await pitstop.close();
    server.close();
  }
}

/**
 * Runs one client workload in a worker thread, so the client does not share the server's event
 * loop. Returns its result and the database round trips made after the stores were done.
 */
function runClient(b: Backend, workload: ClientWorkload): Promise<ClientResult & { roundTrips?: number }> {
  const worker = tsWorker(new URL("./bench-client.ts", import.meta.url), workload);
  let before = 0;
  return new Promise((resolve, reject) => {
    worker.on("message", (message: { phase: "stored" } | ClientResult) => {
      if (message.phase === "stored") before = b.roundTrips?.() ?? 0;
      else resolve({ ...message, roundTrips: b.roundTrips && b.roundTrips() - before });
    });
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`bench client exited with ${code}`)));
  });
}

/** Runs one workload; returns its lateness p99 (ms) when it measures lateness. */
async function drain(b: Backend, kind: ClientWorkload["kind"], n: number, title: string, instrumented = true): Promise<number | undefined> {
  return withServer(await b.make(), async (base) => {
    const r = await runClient(b, { kind, base, n });
    console.log(`${title} (${b.label}, ${instrumented ? "with" : "without"} metrics and lateness recording)`);
    if (r.overran) console.log("  warning: storing overran the start of the due window; lateness includes it");
    console.log(`  stored ${fmt(r.storedPerSec, 0)}/s over HTTP`);
    const requests = r.ackRequests === undefined ? "" : ` in ${r.ackRequests} ack requests`;
    console.log(`  delivered+acked ${fmt(r.deliveredPerSec, 0)}/s; acked ${r.acked}/${n}${requests}`);
    if (r.lateness) {
      const lateness = r.lateness.sort((x, y) => x - y);
      console.log(`  lateness ms: p50 ${percentile(lateness, 50)}  p99 ${percentile(lateness, 99)}  p99.9 ${percentile(lateness, 99.9)}  max ${lateness.at(-1)}`);
    }
    if (r.outOfOrder !== undefined) console.log(`  out of order: ${r.outOfOrder}`);
    if (r.roundTrips !== undefined) console.log(`  database round trips per delivered message: ${fmt(r.roundTrips / n, 3)}`);
    return r.lateness && percentile(r.lateness, 99);
  }, instrumented);
}

/** How the ingest workload stores: single stores with this many in flight; batches of this size, this many in flight. */
const INGEST = { singleInFlight: 50, batchSize: 500, batchesInFlight: 4 };

/** Stores per second over HTTP: one `POST /messages` each, and in batches through `POST /messages/batch`. */
async function ingest(b: Backend): Promise<void> {
  const n = Number(args.ingest);
  await withServer(await b.make(), async (base) => {
    const r = await runClient(b, { kind: "ingest", base, n, ingest: INGEST });
    console.log(`ingest: ${fmt(n, 0)} messages stored one POST each, ${fmt(5 * n, 0)} in batches, each after a warm-up (${b.label}, with metrics and lateness recording)`);
    console.log(`  single:  ${fmt(r.storedPerSec, 0)} stores/s (one POST /messages each, keep-alive, ${INGEST.singleInFlight} in flight)`);
    console.log(`  batched: ${fmt(r.batchedPerSec!, 0)} stores/s (POST /messages/batch of ${INGEST.batchSize}, ${INGEST.batchesInFlight} in flight)`);
  });
}

async function scale(): Promise<void> {
  const pendingCount = Number(args.pending);
  const claimCost = async (pitstop: ReturnType<typeof createPitstop>) => {
    for (let i = 0; i < 2000; i++) await pitstop.store({ id: `due-${i}` }, 0);
    const started = performance.now();
    for (let i = 0; i < 2000; i++) {
      const [d] = await pitstop.claim({ limit: 1 });
      await d.ack();
    }
    return ((performance.now() - started) * 1000) / 2000;
  };
  // The first round only warms the JIT up: measured cold, the small store looked twice as slow as the big one.
  await claimCost(createPitstop());
  const empty = await claimCost(createPitstop());
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const pitstop = createPitstop();
  const future = Date.now() + 86_400_000;
  const started = performance.now();
  for (let i = 0; i < pendingCount; i++) await pitstop.store({ id: `p${i}`, n: i, kind: "reminder" }, future + i);
  const storeSeconds = (performance.now() - started) / 1000;
  globalThis.gc?.();
  const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  const full = await claimCost(pitstop);
  console.log(`scale: ${fmt(pendingCount, 0)} pending messages in the memory store (library API)`);
  console.log(`  stored ${fmt(pendingCount / storeSeconds, 0)}/s; heap for them ${fmt(heapMiB, 0)} MiB (rss ${fmt(process.memoryUsage().rss / 2 ** 20, 0)} MiB)`);
  console.log(`  claim+ack cost: ${fmt(empty, 2)} µs with an empty store, ${fmt(full, 2)} µs with ${fmt(pendingCount, 0)} pending`);
}

async function listing(b: Backend): Promise<void> {
  const n = Number(args.listing);
  const limit = 1000;
  await withServer(await b.make(), async (base, pitstop) => {
    const future = Date.now() + 86_400_000;
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => pitstop.store({ id: `l${i + j}`, n: i + j, kind: "reminder" }, future + i + j)));
    }
    /** Milliseconds of each page, reading every page once with `read`. */
    const pageTimes = async (read: (cursor: string | null) => Promise<{ count: number; next: string | null }>) => {
      const times: number[] = [];
      let cursor: string | null = null;
      let listed = 0;
      do {
        const started = performance.now();
        const page = await read(cursor);
        times.push(performance.now() - started);
        listed += page.count;
        cursor = page.next;
      } while (cursor);
      if (listed !== n) throw new Error(`listed ${listed} of ${n}`);
      return times;
    };
    const overHttp = (cursor: string | null) =>
      fetch(`${base}/messages?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`)
        .then((r) => r.json() as Promise<{ items: unknown[]; next: string | null }>)
        .then((page) => ({ count: page.items.length, next: page.next }));
    const viaLibrary = (cursor: string | null) =>
      pitstop.list({ limit, ...(cursor && { cursor }) }).then((page) => ({ count: page.items.length, next: page.next }));
    const show = (title: string, times: number[]) => {
      const at = (i: number) => fmt(times[i], 2);
      const sorted = [...times].sort((x, y) => x - y);
      console.log(`  ${title}: first ${at(0)} ms, middle ${at(times.length >> 1)} ms, last ${at(times.length - 1)} ms (median ${fmt(percentile(sorted, 50), 2)}, max ${fmt(sorted.at(-1)!, 2)})`);
    };
    // One unmeasured pass warms the JIT up, so the first page is not charged for compiling.
    await pageTimes(overHttp);
    const http = await pageTimes(overHttp);
    const library = await pageTimes(viaLibrary);
    console.log(`listing: ${fmt(n, 0)} messages in ${http.length} pages of ${fmt(limit, 0)} (${b.label})`);
    show("GET /messages", http);
    show("pitstop.list", library);
  });
}

async function main(): Promise<void> {
  if (args.webhook) {
    const { runWebhookBench } = await import("./bench-webhook.ts");
    await runWebhookBench({});
    return;
  }
  const only = new Set(args.only!.split(","));
  const b = await backend();
  console.log(`pitstop bench on ${b.label}, node ${process.version}\n`);
  try {
    const deferredN = Number(args.deferred);
    const backlogN = Number(args.backlog);
    if (only.has("ingest")) await ingest(b);
    if (only.has("deferred")) {
      const title = `deferred: ${deferredN} messages due over 1 s, one SSE listener acking each`;
      if (!["on", "off", "both"].includes(args.metrics!)) throw new Error(`--metrics ${args.metrics}: use on, off or both`);
      const p99s = { on: [] as number[], off: [] as number[] };
      const modes = args.metrics === "both" ? ["off", "on"] : [args.metrics as "on" | "off"];
      for (let round = 0; round < Number(args.rounds); round++) {
        for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
          const p99 = await drain(b, "deferred", deferredN, title, mode === "on");
          if (p99 !== undefined) p99s[mode as "on" | "off"].push(p99);
        }
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
      if (p99s.on.length > 0 && p99s.off.length > 0) {
        const [off, on] = [median(p99s.off), median(p99s.on)];
        console.log(`  lateness p99 without metrics: ${p99s.off.join(", ")} ms (median ${off}); with: ${p99s.on.join(", ")} ms (median ${on}); cost ${on - off} ms\n`);
      }
    }
    if (only.has("backlog")) await drain(b, "backlog", backlogN, `backlog: ${backlogN} due messages drained through one SSE listener with batch acks`);
    if (only.has("ordered")) await drain(b, "ordered", Number(args.ordered), `ordered: ${args.ordered} messages on an ordered topic (one in flight), one SSE listener acking each with its own POST`);
    if (only.has("scale") && args.store === "memory") await scale();
    if (only.has("listing")) await listing(b);
  } finally {
    await b.close();
  }
}

await main();
process.exit(0);
