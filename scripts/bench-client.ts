/**
 * The client side of `npm run bench`, run in a worker thread: stores messages over HTTP, then
 * receives them on one SSE stream and acks them. Posts `{ phase: "stored" }` when the stores are
 * done (so the server side can start counting), then the {@link ClientResult}.
 */
import { parentPort, workerData } from "node:worker_threads";
import { jsonClient, viaNodeHttp, type JsonCall } from "../test/support/http.ts";
import { openSse, type DeliveryFrame } from "../test/support/sse.ts";

export interface ClientWorkload {
  kind: "deferred" | "backlog" | "ordered" | "ingest";
  base: string;
  n: number;
  /** ingest: single stores with this many requests in flight; batches of this size, this many in flight. */
  ingest?: { singleInFlight: number; batchSize: number; batchesInFlight: number };
}

export interface ClientResult {
  phase: "done";
  storedPerSec: number;
  deliveredPerSec: number;
  acked: number;
  /** deferred only: receive time − scheduled time per message, ms. */
  lateness?: number[];
  /** deferred only: HTTP requests the acks took. */
  ackRequests?: number;
  /** deferred only: true if storing ran past the start of the due window. */
  overran?: boolean;
  /** ordered only: deliveries that came out of `at` order. */
  outOfOrder?: number;
  /** ingest only: messages stored per second through `POST /messages/batch`. */
  batchedPerSec?: number;
}

const transport = viaNodeHttp();
/** How long the client waits for the next delivery: the first may be due minutes after the stores. */
const WAIT_MS = 10 * 60_000;

/**
 * Subscribes to `url`, hands each frame to `onFrame` on arrival, and resolves once `count` have
 * arrived with a function that closes the stream: close it only after the acks are in, since a
 * closing stream releases what it has not had acked.
 */
async function receive(url: string, count: number, onFrame: (frame: DeliveryFrame) => void): Promise<() => void> {
  const sse = await openSse(url, {}, { transport: "node" });
  for (let seen = 0; seen < count; seen++) onFrame(await sse.nextDelivery(WAIT_MS));
  return () => sse.close();
}

/**
 * Acks every delivery as soon as it arrives: alone when no ack request is in flight, otherwise
 * together with the others that arrived meanwhile, in one `POST /acks`.
 */
class Acker {
  requests = 0;
  private queued: { id: string; token: string }[] = [];
  private inFlight: Promise<void> | undefined;
  private acked = 0;

  constructor(private readonly call: JsonCall) {}

  ack(id: string, token: string): void {
    this.queued.push({ id, token });
    this.inFlight ??= this.send();
  }

  async done(): Promise<number> {
    while (this.inFlight) await this.inFlight;
    return this.acked;
  }

  private async send(): Promise<void> {
    while (this.queued.length > 0) {
      const acks = this.queued;
      this.queued = [];
      this.requests++;
      const result = (await this.call("POST", "/acks", { acks })).json as { acked: number; failed: unknown[] };
      this.acked += result.acked;
      if (result.failed.length) console.error("failed acks", JSON.stringify(result.failed), acks.length);
    }
    this.inFlight = undefined;
  }
}

/** POSTs bodies with a bounded number in flight; returns messages stored per second. */
async function storeAll(call: JsonCall, bodies: unknown[], inFlight = 32): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const response = await call("POST", "/messages", body);
      if (response.status !== 201) throw new Error(`store failed: HTTP ${response.status} ${JSON.stringify(response.json)}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return bodies.length / ((performance.now() - started) / 1000);
}

/** POSTs bodies in batches of `size` through `POST /messages/batch`, `inFlight` at a time; returns messages stored per second. */
async function storeBatched(call: JsonCall, bodies: unknown[], size: number, inFlight: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const messages = bodies.slice(next, (next += size));
      const response = await call("POST", "/messages/batch", { messages });
      const stored = (response.json?.results as { status?: number }[] | undefined)?.filter((r) => r.status === 201).length;
      if (response.status !== 200 || stored !== messages.length) throw new Error(`batch failed: HTTP ${response.status} ${JSON.stringify(response.json).slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return bodies.length / ((performance.now() - started) / 1000);
}

/** Stores `n` messages due over 1 s, then receives and acks each, recording lateness. */
async function deferredRound(base: string, n: number, topic: string, onStored = () => {}) {
  const windowStart = Date.now() + 2000 + 3 * n;
  const bodies = Array.from({ length: n }, (_, i) => ({ message: { i }, topic, at: windowStart + Math.floor((i * 1000) / n) }));
  const lateness: number[] = [];
  const call = jsonClient(base, { transport });
  const acker = new Acker(call);
  const received = receive(`${base}/events?topic=${topic}`, n, (d) => {
    lateness.push(Date.now() - Date.parse(d.at));
    acker.ack(d.id, d.token);
  });
  const storedPerSec = await storeAll(call, bodies);
  const overran = Date.now() > windowStart;
  onStored();
  const close = await received;
  const acked = await acker.done();
  close();
  const deliveredPerSec = n / ((Date.now() - windowStart) / 1000);
  return { storedPerSec, deliveredPerSec, acked, lateness, overran, ackRequests: acker.requests };
}

async function deferred({ base, n }: ClientWorkload): Promise<ClientResult> {
  // A smaller unmeasured round first, so the figures are of a warmed-up server (JIT, heap sizes).
  await deferredRound(base, Math.ceil(n / 4), "warmup");
  const measured = await deferredRound(base, n, "deferred", () => parentPort!.postMessage({ phase: "stored" }));
  return { phase: "done", ...measured };
}

/**
 * An ordered topic: one delivery in flight, so each ack (one POST) must land before the next
 * message goes out. The rate is bound by that round trip.
 */
async function ordered({ base, n }: ClientWorkload): Promise<ClientResult> {
  const call = jsonClient(base, { transport });
  await call("PUT", "/topics/ordered", { ordered: true });
  const at = Date.now();
  const storedPerSec = await storeAll(call, Array.from({ length: n }, (_, i) => ({ message: { id: `o${i}`, i }, topic: "ordered", at: at + i })));
  parentPort!.postMessage({ phase: "stored" });
  const started = performance.now();
  let expected = 0;
  let outOfOrder = 0;
  let acked = 0;
  const acks: Promise<void>[] = [];
  const close = await receive(`${base}/events?topic=ordered`, n, (d) => {
    if (d.id !== `o${expected++}`) outOfOrder++;
    acks.push(call("POST", `/messages/${d.id}/ack`, { token: d.token }).then((r) => void (r.status === 204 && acked++)));
  });
  await Promise.all(acks);
  close();
  return { phase: "done", storedPerSec, deliveredPerSec: n / ((performance.now() - started) / 1000), acked, outOfOrder };
}

async function backlog({ base, n }: ClientWorkload): Promise<ClientResult> {
  const call = jsonClient(base, { transport });
  const storedPerSec = await storeAll(call, Array.from({ length: n }, (_, i) => ({ message: { i }, topic: "backlog" })));
  parentPort!.postMessage({ phase: "stored" });
  const started = performance.now();
  let pending: { id: string; token: string }[] = [];
  const posts: Promise<number>[] = [];
  const flush = () => {
    posts.push(call("POST", "/acks", { acks: pending }).then((r) => (r.json as { acked: number }).acked));
    pending = [];
  };
  const close = await receive(`${base}/events?topic=backlog&prefetch=2000`, n, (d) => {
    pending.push({ id: d.id, token: d.token });
    if (pending.length >= 250) flush();
  });
  if (pending.length) flush();
  const acked = (await Promise.all(posts)).reduce((a, b) => a + b, 0);
  close();
  const deliveredPerSec = n / ((performance.now() - started) / 1000);
  return { phase: "done", storedPerSec, deliveredPerSec, acked };
}

/**
 * Stores only (messages due in a day, so nothing is delivered): `n` single `POST /messages` and
 * `5n` messages in batches, each after an unmeasured warm-up of a quarter as many.
 */
async function ingest({ base, n, ingest: shape }: ClientWorkload): Promise<ClientResult> {
  const { singleInFlight, batchSize, batchesInFlight } = shape!;
  const call = jsonClient(base, { transport });
  const at = Date.now() + 86_400_000;
  const bodies = (count: number) => Array.from({ length: count }, (_, i) => ({ message: { i, kind: "reminder", to: `user-${i}@example.com` }, at: at + i }));
  await storeAll(call, bodies(Math.ceil(n / 4)), singleInFlight);
  const storedPerSec = await storeAll(call, bodies(n), singleInFlight);
  // Five times as many batched, so the measured run lasts about as long.
  await storeBatched(call, bodies(Math.ceil((5 * n) / 4)), batchSize, batchesInFlight);
  const batchedPerSec = await storeBatched(call, bodies(5 * n), batchSize, batchesInFlight);
  parentPort!.postMessage({ phase: "stored" });
  return { phase: "done", storedPerSec, batchedPerSec, deliveredPerSec: 0, acked: 0 };
}

const workload = workerData as ClientWorkload;
const workloads = { deferred, backlog, ordered, ingest };
parentPort!.postMessage(await workloads[workload.kind](workload));
