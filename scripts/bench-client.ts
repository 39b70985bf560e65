/**
 * The client side of `npm run bench`, run in a worker thread: stores messages over HTTP, then
 * receives them on one SSE stream and acks them. Posts `{ phase: "stored" }` when the stores are
 * done (so the server side can start counting), then the {@link ClientResult}.
 */
import { Agent, request } from "node:http";
import { parentPort, workerData } from "node:worker_threads";

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
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** POSTs JSON with node:http (lighter than fetch, so the client's own GC pauses stay small). */
function post(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent, headers: { ...json, "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

interface Frame {
  id: string;
  token: string;
  at: string;
}

/** A minimal SSE reader: calls `onFrame` with each `message` event's data as it arrives. */
function subscribe(url: string, onFrame: (frame: Frame) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { accept: "text/event-stream" } }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = frame.indexOf("\ndata: ");
          if (frame.startsWith("event: message") && data >= 0) onFrame(JSON.parse(frame.slice(data + 7)));
        }
      });
      resolve(() => req.destroy());
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Subscribes to `url`, hands each frame to `onFrame` on arrival, and resolves once `count` have
 * arrived with a function that closes the stream: close it only after the acks are in, since a
 * closing stream releases what it has not had acked.
 */
async function receive(url: string, count: number, onFrame: (frame: Frame) => void): Promise<() => void> {
  let seen = 0;
  let arrived = () => {};
  const all = new Promise<void>((resolve) => (arrived = resolve));
  const close = await subscribe(url, (frame) => {
    onFrame(frame);
    if (++seen === count) arrived();
  });
  await all;
  return close;
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
      const response = await post(`${this.base}/acks`, JSON.stringify({ acks }));
      const result = JSON.parse(response.text) as { acked: number; failed: unknown[] };
      this.acked += result.acked;
      if (result.failed.length) console.error("failed acks", JSON.stringify(result.failed), acks.length);
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
      const response = await post(`${base}/messages`, JSON.stringify(body));
      if (response.status !== 201) throw new Error(`store failed: HTTP ${response.status} ${response.text}`);
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
  const acker = new Acker(base);
  const received = receive(`${base}/events?topic=${topic}`, n, (d) => {
    lateness.push(Date.now() - Date.parse(d.at));
    acker.ack(d.id, d.token);
  });
  const storedPerSec = await storeAll(base, bodies);
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

async function backlog({ base, n }: ClientWorkload): Promise<ClientResult> {
  const storedPerSec = await storeAll(base, Array.from({ length: n }, (_, i) => ({ message: { i }, topic: "backlog" })));
  parentPort!.postMessage({ phase: "stored" });
  const started = performance.now();
  let pending: { id: string; token: string }[] = [];
  const posts: Promise<number>[] = [];
  const flush = () => {
    posts.push(post(`${base}/acks`, JSON.stringify({ acks: pending })).then((r) => (JSON.parse(r.text) as { acked: number }).acked));
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

const workload = workerData as ClientWorkload;
parentPort!.postMessage(await (workload.kind === "deferred" ? deferred(workload) : backlog(workload)));
