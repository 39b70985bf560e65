import { serve, type ServerType } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop, type Pitstop } from "../src/index.ts";
import type { LogLevel } from "../src/log.ts";
import { mongoStore } from "../src/stores/mongodb.ts";
import type { SettleResult, Store } from "../src/types.ts";
import { startMongoDouble, type MongoDouble } from "../tools/mongo-double/index.ts";
import { jsonClient, type JsonResponse } from "./support/http.ts";
import { openSse, type DeliveryFrame, type SseClient } from "./support/sse.ts";

/**
 * A fault run: the MongoDB store on the wire-protocol double, whose connection fails every
 * FAULT_EVERY commands (before or after the command runs, so some writes have an unknown
 * outcome), while a producer stores messages over HTTP and consumers on one SSE topic receive and
 * ack them. The driver runs with its defaults: after each failure it clears its pool and waits for
 * its monitor (about 500 ms), failing what was queued meanwhile (as it does against a real server).
 *
 * The server runs in this process (`@hono/node-server` on a real socket) so its store can be
 * wrapped in a recorder: every claim with its lock, every settle and replace. That turns
 * "no id held by two consumers at once" into an exact check on the engine's own clock instead of
 * a guess from when frames reached the client.
 */

const LOCK_TIME = "PT2S";
const LOOP_TIME = "PT0.5S";
const TOPIC = "fault";
const MESSAGES = 200;
/** A failure is armed after every FAULT_EVERY data commands, until FAULTS have fired. */
const FAULT_EVERY = 15;
const FAULTS = 24;
/** Per consumer: its prefetch (1 claims with findAndModify, more with find + updateMany) and how it acks. */
const CONSUMERS = [
  { prefetch: 1, batchAcks: false },
  { prefetch: 2, batchAcks: true },
  { prefetch: 4, batchAcks: false },
  { prefetch: 8, batchAcks: true },
];
/** Exactly what the consumers can hold together, so each one must take part in the last round. */
const PROBES = CONSUMERS.reduce((sum, c) => sum + c.prefetch, 0);

/** A successful claim of one record, as the store returned it. */
interface Claim {
  id: string;
  token: string;
  /** The claim's `now` and the lock it set (engine clock, epoch ms). */
  now: number;
  lockedUntil: number;
  startedAt: number;
  doneAt: number;
}

/** A write that may have ended a lock on `id`: a settle with `token`, or a replace (no token). */
interface LockEnd {
  id: string;
  token?: string;
  issuedAt: number;
  doneAt: number;
}

/** The store as the engine sees it, recording claims and every write that may end a lock. */
function recordingStore(inner: Store) {
  const claims: Claim[] = [];
  const ends: LockEnd[] = [];
  const badClaims: string[] = [];
  const replaced = async <T>(id: string, write: () => Promise<T>): Promise<T> => {
    const issuedAt = Date.now();
    try {
      return await write();
    } finally {
      ends.push({ id, issuedAt, doneAt: Date.now() });
    }
  };
  const store: Store = {
    ...inner,
    name: inner.name,
    put: (record) => replaced(record.id, () => inner.put(record)),
    remove: (id) => replaced(id, () => inner.remove(id)),
    get: (id) => inner.get(id),
    nextDueAt: (lane, ordered) => inner.nextDueAt(lane, ordered),
    ping: () => inner.ping!(),
    dispose: () => inner.dispose!(),
    async claim(request) {
      const startedAt = Date.now();
      const records = await inner.claim(request);
      const doneAt = Date.now();
      for (const r of records) {
        if (r.lockToken !== request.token || r.lockedUntil !== request.lockedUntil) badClaims.push(`${r.id}: claimed with ${request.token}, returned ${r.lockToken}`);
        claims.push({ id: r.id, token: request.token, now: request.now, lockedUntil: request.lockedUntil, startedAt, doneAt });
      }
      return records;
    },
    async settle(ops) {
      const issuedAt = Date.now();
      let results: SettleResult[] | undefined;
      try {
        results = await inner.settle(ops);
        return results;
      } finally {
        // A settle that failed may have been applied; one answered lock_lost or not_found was not.
        const doneAt = Date.now();
        ops.forEach((op, i) => {
          if (!results || results[i] === "ok") ends.push({ id: op.id, token: op.token, issuedAt, doneAt });
        });
      }
    },
  };
  return { store, claims, ends, badClaims };
}

/**
 * Pairs of claims of one id whose locks overlapped: neither was claimed after the other's lock
 * expired, was settled, or was replaced. Times are the engine's, so this is exact up to the
 * order of a write's issue and completion.
 */
function doubleClaims(claims: Claim[], ends: LockEnd[]): string[] {
  const endsOf = group(ends);
  const after = (first: Claim, second: Claim) =>
    second.now >= first.lockedUntil ||
    (endsOf.get(first.id) ?? []).some((e) => e.issuedAt <= second.doneAt && (e.token === undefined ? e.doneAt >= first.startedAt : e.token === first.token));
  const found: string[] = [];
  for (const [id, list] of group(claims)) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [a, b] = [list[i], list[j]];
        if (!after(a, b) && !after(b, a)) found.push(`${id}: ${a.token} (now ${a.now}, until ${a.lockedUntil}) and ${b.token} (now ${b.now}, until ${b.lockedUntil})`);
      }
    }
  }
  return found;
}

function group<T extends { id: string }>(items: T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) map.get(item.id)?.push(item) ?? map.set(item.id, [item]);
  return map;
}

/**
 * Arms one injected failure after every `every` data commands, cycling commands and kinds, until
 * `total` have fired. A failure armed on a command nobody sends for `every` more commands moves on.
 */
function injectFaults(double: MongoDouble, every: number, total: number) {
  const commands = ["find", "update", "findAndModify", "delete"];
  const kinds = ["network", "network-after"] as const;
  const fired = { network: 0, "network-after": 0 };
  const done = () => fired.network + fired["network-after"] >= total;
  let armed: { name: string; kind: (typeof kinds)[number]; count: number; sentAt: number } | undefined;
  let lastFiredAt = 0;
  let turn = 0;
  /** Counts a failure that fired (the next command of its name ran, so its count moved) or drops a stale one. */
  const observe = () => {
    const counts = double.commandCounts();
    const sent = commands.reduce((sum, name) => sum + (counts[name] ?? 0), 0);
    if (armed && (counts[armed.name] ?? 0) > armed.count) {
      fired[armed.kind]++;
      lastFiredAt = sent;
      armed = undefined;
    } else if (armed && sent - armed.sentAt >= every) {
      double.failNext(armed.name, 0, armed.kind);
      armed = undefined;
    }
    return { counts, sent };
  };
  const timer = setInterval(() => {
    const { counts, sent } = observe();
    if (done()) return stop();
    if (armed || sent - lastFiredAt < every) return;
    const name = commands[turn % commands.length];
    const kind = kinds[Math.floor(turn / commands.length) % kinds.length];
    turn++;
    double.failNext(name, 1, kind);
    armed = { name, kind, count: counts[name] ?? 0, sentAt: sent };
  }, 5);
  const stop = () => {
    clearInterval(timer);
    observe();
    if (armed) double.failNext(armed.name, 0, armed.kind);
    armed = undefined;
  };
  return { fired, done, stop };
}

/** Resolves waiters whenever something happened; `until` re-checks a condition on each, with a ceiling. */
function progress() {
  const waiters = new Set<() => void>();
  return {
    notify: () => waiters.forEach((w) => w()),
    async until(done: () => boolean, ceilingMs: number, what: () => string): Promise<void> {
      const deadline = Date.now() + ceilingMs;
      while (!done()) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`not within ${ceilingMs} ms: ${what()}`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(left, 1000));
          waiters.add(wake);
        });
      }
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

it("the double-claim check tells overlapping locks from expired, settled and replaced ones", () => {
  const claim = (token: string, now: number): Claim => ({ id: "x", token, now, lockedUntil: now + 2000, startedAt: now, doneAt: now + 5 });
  expect(doubleClaims([claim("a", 0), claim("b", 2000)], [])).toEqual([]);
  expect(doubleClaims([claim("a", 0), claim("b", 500)], [{ id: "x", token: "a", issuedAt: 400, doneAt: 410 }])).toEqual([]);
  expect(doubleClaims([claim("a", 0), claim("b", 500)], [{ id: "x", issuedAt: 300, doneAt: 310 }])).toEqual([]);
  expect(doubleClaims([claim("a", 0), claim("b", 500)], [{ id: "x", token: "a", issuedAt: 600, doneAt: 610 }])).toHaveLength(1);
  expect(doubleClaims([claim("a", 0), claim("b", 500)], [{ id: "x", token: "c", issuedAt: 400, doneAt: 410 }])).toHaveLength(1);
  expect(doubleClaims([claim("a", 0), claim("b", 1999)], [{ id: "x", issuedAt: -100, doneAt: -50 }])).toHaveLength(1);
});

it("loses nothing, double-claims nothing and keeps serving while MongoDB connections fail", async () => {
  const startedAt = Date.now();
  const double = await startMongoDouble();
  cleanup.push(() => double.close());
  const serverLog = new Map<string, number>();
  const log = (level: LogLevel, message: string) => {
    const key = `${level}: ${message.replace(/"[^"]*"/g, "…").replace(/\(attempt \d+\)/, "")}`;
    serverLog.set(key, (serverLog.get(key) ?? 0) + 1);
  };
  const recorder = recordingStore(mongoStore({ url: double.uri, dbName: "fault" }));
  const pitstop: Pitstop = createPitstop({ store: recorder.store, lockTime: LOCK_TIME, loopTime: LOOP_TIME, log });
  const app = createApp(pitstop, { log });
  const server: ServerType = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanup.push(async () => {
    await pitstop.close();
    await new Promise((resolve) => {
      server.close(resolve);
      (server as Server).closeAllConnections();
    });
  });
  expect((await jsonClient(base)("GET", "/health")).json).toEqual({ ok: true, store: "mongodb" });

  const events = progress();
  const problems: string[] = [];
  const counts = { storeAttempts: 0, store503: 0, appliedDespite503: 0, ackRequests: 0, ack503: 0, transportErrors: 0 };
  const call = jsonClient(base);
  const deadline = Date.now() + 55_000;
  /** Sends until the server answers (a transport error is retried: the request may or may not have arrived). */
  const send = async (method: string, path: string, body?: unknown): Promise<JsonResponse> => {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`gave up on ${method} ${path}: the run is over its deadline`);
      try {
        return await call(method, path, body);
      } catch {
        counts.transportErrors++;
        await pause(20);
      }
    }
  };

  // What the clients saw: the final stored version of each id, and which versions were acked.
  const ids = Array.from({ length: MESSAGES }, (_, i) => `m-${i}`);
  const finalVersion = new Map<string, number>();
  const acked = new Map<string, Set<number>>();
  const received: { id: string; v: number; token: string; consumer: number; receivedAt: number }[] = [];
  const seenVersions = new Set<string>();
  let duplicates = 0;
  const ackOutcomes = { acked: 0, gone: 0, lock_lost: 0 };
  const isDone = (id: string) => finalVersion.has(id) && (acked.get(id)?.has(finalVersion.get(id)!) ?? false);

  /** Stores `id` until it gets 200 or 201: after a 503 the write may or may not have been applied. */
  const store = async (id: string, at: number) => {
    for (let v = 1; ; v++) {
      counts.storeAttempts++;
      const response = await send("POST", "/messages", { message: { id, v }, topic: TOPIC, at });
      if (response.status === 201 || response.status === 200) {
        if (v > 1 && response.status === 200) counts.appliedDespite503++;
        finalVersion.set(id, v);
        events.notify();
        return;
      }
      if (response.status !== 503) problems.push(`POST /messages ${id}: ${response.status} ${JSON.stringify(response.json)}`);
      counts.store503++;
      await pause(20);
    }
  };

  type Outcome = keyof typeof ackOutcomes;
  const settled = (d: DeliveryFrame & { v: number }, outcome: Outcome) => {
    ackOutcomes[outcome]++;
    if (outcome === "acked") acked.get(d.id)?.add(d.v) ?? acked.set(d.id, new Set([d.v]));
    events.notify();
  };
  /** 404 after an ack whose outcome was unknown means that ack removed it. */
  const outcomeOf = (status: number | string, ambiguous: boolean): Outcome | undefined =>
    status === 204 || status === "ok" ? "acked" : status === 404 || status === "not_found" ? (ambiguous ? "acked" : "gone") : status === 409 || status === "lock_lost" ? "lock_lost" : undefined;

  const ackOne = async (d: DeliveryFrame & { v: number }) => {
    for (let ambiguous = false; ; ambiguous = true) {
      counts.ackRequests++;
      const response = await send("POST", `/messages/${d.id}/ack`, { token: d.token });
      const outcome = outcomeOf(response.status, ambiguous);
      if (outcome) return settled(d, outcome);
      if (response.status !== 503) return void problems.push(`ack ${d.id}: ${response.status} ${JSON.stringify(response.json)}`);
      counts.ack503++;
      await pause(20);
    }
  };

  const ackBatch = async (batch: (DeliveryFrame & { v: number })[]) => {
    for (let ambiguous = false; ; ambiguous = true) {
      counts.ackRequests++;
      const response = await send("POST", "/acks", { acks: batch.map((d) => ({ id: d.id, token: d.token })) });
      if (response.status === 200) {
        const failed = response.json.failed as { id: string; error: string }[];
        for (const d of batch) {
          // Two deliveries of one id in a batch are told apart by order, as the server answers in order.
          const index = failed.findIndex((f) => f.id === d.id);
          const outcome = index < 0 ? "acked" : outcomeOf(failed.splice(index, 1)[0].error, ambiguous);
          if (outcome) settled(d, outcome);
          else problems.push(`batch ack ${d.id}: ${JSON.stringify(response.json)}`);
        }
        return;
      }
      if (response.status !== 503) return void problems.push(`POST /acks: ${response.status} ${JSON.stringify(response.json)}`);
      counts.ack503++;
      await pause(20);
    }
  };

  let holdProbes = false;
  let finished = false;
  const inFlight = new Set<Promise<void>>();
  const track = (work: Promise<void>) => {
    inFlight.add(work);
    void work.catch((error: Error) => problems.push(error.message)).finally(() => inFlight.delete(work));
  };

  const consumers = CONSUMERS.map((options, index) => {
    const consumer = { ...options, index, reconnects: 0, probes: [] as DeliveryFrame[], sse: undefined as SseClient | undefined, queue: [] as (DeliveryFrame & { v: number })[], flushing: false };
    const flush = async () => {
      consumer.flushing = true;
      while (consumer.queue.length > 0) await ackBatch(consumer.queue.splice(0));
      consumer.flushing = false;
    };
    const onDelivery = (frame: DeliveryFrame) => {
      const d = { ...frame, v: frame.message.v as number };
      received.push({ id: d.id, v: d.v, token: d.token, consumer: index, receivedAt: Date.now() });
      const key = `${d.id}#${d.v}`;
      if (seenVersions.has(key)) duplicates++;
      seenVersions.add(key);
      events.notify();
      if (holdProbes && d.id.startsWith("probe-")) consumer.probes.push(d);
      else if (consumer.batchAcks) {
        consumer.queue.push(d);
        if (!consumer.flushing) track(flush());
      } else track(ackOne(d));
    };
    /** Reads deliveries; when the server ends the stream, reconnects (as EventSource does) and goes on. */
    const run = async () => {
      while (!finished) {
        const sse = await openSse(`${base}/events?topic=${TOPIC}&prefetch=${consumer.prefetch}`).catch(() => undefined);
        if (!sse) {
          counts.transportErrors++;
          await pause(20);
          continue;
        }
        consumer.sse = sse;
        if (sse.response.status !== 200) problems.push(`consumer ${index}: GET /events answered ${sse.response.status}`);
        for (;;) {
          try {
            onDelivery(await sse.nextDelivery(250));
          } catch (error) {
            if ((error as Error).message.startsWith("no SSE frame within")) {
              if (finished) break;
              continue;
            }
            consumer.reconnects++;
            break;
          }
        }
      }
    };
    return { consumer, running: run().catch((error: Error) => void problems.push(`consumer ${index}: ${error.message}`)) };
  });
  cleanup.push(() => {
    finished = true;
    consumers.forEach(({ consumer }) => consumer.sse?.close());
  });

  const healthStatuses = new Map<number, number>();
  const healthTimer = setInterval(() => {
    void call("GET", "/health").then(
      (r) => healthStatuses.set(r.status, (healthStatuses.get(r.status) ?? 0) + 1),
      () => counts.transportErrors++,
    );
  }, 500);
  cleanup.push(() => clearInterval(healthTimer));

  // Store with faults on, due over the next three seconds, six requests at a time; faults stay on
  // until FAULTS have fired.
  const faults = injectFaults(double, FAULT_EVERY, FAULTS);
  cleanup.push(() => faults.stop());
  const storeFrom = Date.now();
  const queue = ids.map((id, i) => ({ id, at: storeFrom + Math.round((i / MESSAGES) * 3000) }));
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await store(next.id, next.at);
  }));
  await events.until(() => faults.done() || ids.every(isDone), 30_000, () => `${FAULTS} failures injected (${JSON.stringify(faults.fired)})`);
  faults.stop();
  const faultsOffAt = Date.now();

  await events.until(() => ids.every(isDone), 25_000, () => {
    const open = ids.filter((id) => !isDone(id));
    return `every final version acked; ${open.length} not: ${open.slice(0, 5).join(", ")}`;
  });
  const drainedAt = Date.now();

  // Every stream still delivers: probes that fill every consumer's prefetch are held, so each must get some.
  holdProbes = true;
  for (let i = 0; i < PROBES; i++) await store(`probe-${i}`, Date.now());
  await events.until(
    () => consumers.every(({ consumer }) => consumer.probes.length > 0),
    10_000,
    () => `every stream delivering a probe (held per consumer: ${consumers.map(({ consumer }) => consumer.probes.length).join(", ")})`,
  );
  holdProbes = false;
  for (const { consumer } of consumers) for (const d of consumer.probes.splice(0)) track(ackOne({ ...d, v: 1 }));
  const probes = Array.from({ length: PROBES }, (_, i) => `probe-${i}`);
  await events.until(() => probes.every(isDone), 10_000, () => `every probe acked (${probes.filter(isDone).length}/${PROBES})`);

  finished = true;
  await Promise.all(consumers.map((c) => c.running));
  await Promise.all(inFlight);
  clearInterval(healthTimer);

  const health = await call("GET", "/health");
  const left = await Promise.all([...ids, ...probes].map(async (id) => (await call("GET", `/messages/${id}`)).status));
  const reconnects = consumers.map(({ consumer }) => consumer.reconnects);
  const streamEnds = [...serverLog].filter(([key]) => key.includes("ends after a store error")).reduce((sum, [, n]) => sum + n, 0);
  const doubles = doubleClaims(recorder.claims, recorder.ends);
  const lockOf = new Map(recorder.claims.map((c) => [`${c.id} ${c.token}`, c.lockedUntil]));
  const unclaimed = received.filter((r) => !lockOf.has(`${r.id} ${r.token}`));
  // Not a double claim, but worth seeing: a claim that outlived the lock time hands out a lock already gone.
  const expiredOnArrival = received.filter((r) => r.receivedAt >= lockOf.get(`${r.id} ${r.token}`)!).length;

  console.log(
    `[measure] fault run: stored ${MESSAGES}+${PROBES} ids (${counts.storeAttempts} store requests, ${counts.store503} answered 503, ` +
      `${counts.appliedDespite503} of those applied anyway); delivered ${received.length}, duplicates ${duplicates}; ` +
      `acks ${ackOutcomes.acked} acked, ${ackOutcomes.lock_lost} lock_lost, ${ackOutcomes.gone} already gone (${counts.ackRequests} ack requests, ${counts.ack503} answered 503); ` +
      `reconnects ${reconnects.reduce((a, b) => a + b, 0)} (${reconnects.join("/")} per consumer; server ended ${streamEnds} streams); ` +
      `injected failures ${faults.fired.network} network + ${faults.fired["network-after"]} network-after; ` +
      `claims ${recorder.claims.length}, ${expiredOnArrival} deliveries arrived after their lock had expired; health ${JSON.stringify(Object.fromEntries(healthStatuses))}; transport errors ${counts.transportErrors}; ` +
      `faults off after ${faultsOffAt - startedAt} ms, drained ${drainedAt - faultsOffAt} ms later, total ${Date.now() - startedAt} ms`,
  );
  console.log(`[measure] server log lines: ${JSON.stringify(Object.fromEntries(serverLog))}`);

  expect(problems).toEqual([]);
  expect(faults.fired.network).toBeGreaterThan(0);
  expect(faults.fired["network-after"]).toBeGreaterThan(0);
  // 0 lost: every id's last stored version was acked, and nothing is left in the store.
  expect(ids.filter((id) => !isDone(id))).toEqual([]);
  expect(left.filter((status) => status !== 404)).toEqual([]);
  // 0 double claims: no two locks on one id overlapped, and every delivery came from a recorded claim.
  expect(doubles).toEqual([]);
  expect(recorder.badClaims).toEqual([]);
  expect(unclaimed).toEqual([]);
  // The server kept answering: health only ever said 200 or 503, and says 200 now.
  expect([...healthStatuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
  expect(health).toEqual({ status: 200, json: { ok: true, store: "mongodb" } });
  // Every stream that ended was ended by the server after a store error, and its consumer came back.
  expect(reconnects.reduce((a, b) => a + b, 0)).toBe(streamEnds);
}, 120_000); // its own ceilings add up to 75 s on a loaded machine
