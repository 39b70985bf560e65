/**
 * The client side of `npm run bench`, run in a worker thread: stores messages over HTTP, then
 * receives them on one SSE stream and acks them. Posts `{ phase: "stored" }` when the stores are
 * done (so the server side can start counting), then the {@link ClientResult}.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openSse } from "../test/support/sse.ts";

export interface ClientWorkload {
  kind: "deferred" | "backlog";
  base: string;
  n: number;
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
}

const json = { "content-type": "application/json" };

/**
 * Acks every delivery as soon as it arrives: alone when no ack request is in flight, otherwise
 * together with the others that arrived meanwhile, in one `POST /acks`.
 */
class Acker {
  requests = 0;
  private queued: { id: string; token: string }[] = [];
  private inFlight: Promise<void> | undefined;
  private acked = 0;

  constructor(private readonly base: string) {}

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
      const response = await fetch(`${this.base}/acks`, { method: "POST", headers: json, body: JSON.stringify({ acks }) });
      this.acked += ((await response.json()) as { acked: number }).acked;
    }
    this.inFlight = undefined;
  }
}

/** POSTs bodies with a bounded number in flight; returns messages stored per second. */
async function storeAll(base: string, bodies: unknown[], inFlight = 32): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const response = await fetch(`${base}/messages`, { method: "POST", headers: json, body: JSON.stringify(body) });
      if (response.status !== 201) throw new Error(`store failed: HTTP ${response.status} ${await response.text()}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return bodies.length / ((performance.now() - started) / 1000);
}

async function deferred({ base, n }: ClientWorkload): Promise<ClientResult> {
  const sse = await openSse(`${base}/events?topic=deferred`);
  const windowStart = Date.now() + 2000 + 3 * n;
  const bodies = Array.from({ length: n }, (_, i) => ({ message: { i }, topic: "deferred", at: windowStart + Math.floor((i * 1000) / n) }));
  const storedPerSec = await storeAll(base, bodies);
  const overran = Date.now() > windowStart;
  parentPort!.postMessage({ phase: "stored" });
  const lateness: number[] = [];
  const acker = new Acker(base);
  for (let i = 0; i < n; i++) {
    const d = await sse.nextDelivery(60_000);
    lateness.push(Date.now() - Date.parse(d.at));
    acker.ack(d.id, d.token);
  }
  const acked = await acker.done();
  const deliveredPerSec = n / ((Date.now() - windowStart) / 1000);
  sse.close();
  return { phase: "done", storedPerSec, deliveredPerSec, acked, lateness, overran, ackRequests: acker.requests };
}

async function backlog({ base, n }: ClientWorkload): Promise<ClientResult> {
  const storedPerSec = await storeAll(base, Array.from({ length: n }, (_, i) => ({ message: { i }, topic: "backlog" })));
  parentPort!.postMessage({ phase: "stored" });
  const started = performance.now();
  const sse = await openSse(`${base}/events?topic=backlog&prefetch=2000`);
  let pending: { id: string; token: string }[] = [];
  const posts: Promise<number>[] = [];
  const flush = () => {
    posts.push(
      fetch(`${base}/acks`, { method: "POST", headers: json, body: JSON.stringify({ acks: pending }) })
        .then((r) => r.json())
        .then((r: { acked: number }) => r.acked),
    );
    pending = [];
  };
  for (let i = 0; i < n; i++) {
    const d = await sse.nextDelivery(60_000);
    pending.push({ id: d.id, token: d.token });
    if (pending.length >= 250) flush();
  }
  if (pending.length) flush();
  const acked = (await Promise.all(posts)).reduce((a, b) => a + b, 0);
  const deliveredPerSec = n / ((performance.now() - started) / 1000);
  sse.close();
  return { phase: "done", storedPerSec, deliveredPerSec, acked };
}

const workload = workerData as ClientWorkload;
parentPort!.postMessage(await (workload.kind === "deferred" ? deferred(workload) : backlog(workload)));
