import { invalid, PitstopError } from "../errors.ts";
import { consoleLogger } from "../log.ts";
import { catchUp, occurrences } from "../recurrence.ts";
import { delayMs, durationMs, formatTime, parseDuration } from "../schedule.ts";
import type { SettleAction, SettleOp, SettleResult, StoredMessage } from "../types.ts";
import type { ConsumeOptions, Delivery, EngineOptions, LifecycleDetail, NackOptions, Pitstop, ScheduleOutcome } from "./api.ts";
import { putInOrder } from "./batch.ts";
import { badCursor, checkCount, checkCursor, checkHttpUrl, checkListState, checkName, cursorOf } from "./checks.ts";
import { systemClock } from "./clock.ts";
import { LifecycleEvents, detailOf } from "./events.ts";
import { guardStore } from "./guarded-store.ts";
import { Holds } from "./holds.ts";
import { LatenessBook } from "./lateness.ts";
import { WEBHOOK_LANE, deadLaneOf, laneOf } from "./lanes.ts";
import { LaneListener } from "./listener.ts";
import { messageView, recordOf, recurrenceOf, scheduledView, timingOf } from "./records.ts";
import { settleActions } from "./actions.ts";
import { PolicyCache, effectivePolicy } from "./policies.ts";
import { SettleQueue } from "./settle-queue.ts";
import { topicOperations } from "./topics.ts";

/** Most deliveries one `claim` or one listener's prefetch may ask for. */
const MAX_BATCH = 100_000;

/** Most messages one page of `list` may hold. */
const MAX_PAGE = 1000;

/** The engine over `options.store`. See {@link Pitstop}. */
export function createEngine(options: EngineOptions): Pitstop {
  const events = new LifecycleEvents();
  const store = guardStore(options.store, (method, reason) => events.emit("store-error", { method, reason }));
  const log = options.log ?? consoleLogger;
  const clock = options.clock ?? systemClock;
  const lockTimeMs = durationMs(parseDuration(options.lockTime ?? "PT15M", "lockTime"), "lockTime");
  const loopTimeMs = durationMs(parseDuration(options.loopTime ?? "PT1M", "loopTime"), "loopTime");
  const claimBatch = options.claimBatch ?? 100;
  /** Every running listener with its lane. */
  const listeners = new Map<LaneListener, string>();
  const holds = new Holds();
  const book = options.recordLateness === false ? undefined : new LatenessBook();
  const settler = new SettleQueue(store);
  const defaultCallback = options.defaultCallback === undefined ? undefined : checkHttpUrl(options.defaultCallback, "defaultCallback");
  const checkCallbackOption = options.checkCallback ?? ((url: string) => checkHttpUrl(url, "callback"));
  /** The callback a new message keeps: its own, checked, else the default. */
  const callbackOf = ({ callback }: { callback?: string }) =>
    callback === undefined ? defaultCallback : callback === defaultCallback ? callback : checkCallbackOption(callback);
  // Policies set by another process sharing the store are seen within this long.
  const policies = new PolicyCache(store, () => clock.now(), Math.min(loopTimeMs, 5000));
  const policyOf = async (topic: string) => effectivePolicy(await policies.get(topic), lockTimeMs);

  const laneFor = (consume: ConsumeOptions) =>
    consume.webhooks ? WEBHOOK_LANE : laneOf(checkName(consume.topic ?? "default", "topic"));

  /** Tells the lane's listeners that something may fall due at `dueAt`. */
  const wake = (lane: string, dueAt?: number) => {
    for (const [listener, listenerLane] of listeners) if (listenerLane === lane) listener.wake(dueAt);
  };

  const { ackAction, failAction, nackAction } = settleActions(clock, log);

  /** A delivery went out: the `delivered` event, and its lateness recorded. */
  const handedOut = (detail: LifecycleDetail, consumer: string | undefined, webhooks: boolean) => {
    events.emit("delivered", detail);
    if (!book) return;
    const lateMs = book.delivered(detail, clock.now(), consumer);
    if (!events.listened("lateness")) return;
    const { id, topic, attempt, at } = detail;
    events.emit("lateness", { id, topic, attempt, at, lateMs, transport: webhooks ? "webhook" : "listener" });
  };

  /** The action of a nack, with the topic's policy in hand. */
  const nackWithPolicy = async (record: StoredMessage, nack: NackOptions): Promise<SettleAction> => nackAction(record, nack, await policyOf(record.topic));

  const settleRecord = async (record: StoredMessage, token: string, action: SettleAction, event?: "acked" | "nacked") => {
    const result = await settler.settle({ id: record.id, token, now: clock.now(), action });
    if (result !== "ok") return result;
    if (action.kind === "update") wake(action.lane ?? record.lane, action.dueAt);
    if (action.kind === "update" && event === "nacked") book?.retry(record.id, action.dueAt);
    if (event) events.emit(event, detailOf(record));
    if (action.kind === "update" && action.deadAt !== undefined) events.emit("dead", detailOf(record));
    if (action.kind === "update" && action.lastFailure !== undefined) events.emit("failed-occurrence", detailOf(record));
    // The head of an ordered lane left it (acked, removed, dead): the next one may go now.
    const left = action.kind === "delete" || (action.kind === "update" && action.lane !== undefined);
    if (left && (await policyOf(record.topic)).ordered) wake(record.lane, clock.now());
    return result;
  };

  const throwUnlessOk = (id: string, result: SettleResult) => {
    if (result === "not_found") throw new PitstopError("not_found", `No message with id "${id}".`);
    if (result === "lock_lost") {
      throw new PitstopError("lock_lost", `The lock on message "${id}" is no longer held with this token (it expired, or the message was replaced).`);
    }
  };

  /** The locked record an ack by id and token (HTTP) settles: from the holds at once, else from the store. */
  const lockedRecord = async (id: string, token: string): Promise<StoredMessage | SettleResult> => {
    const held = holds.end(id, token);
    if (held) return held;
    const record = await store.get(id);
    if (!record) return "not_found";
    if (record.lockToken !== token || record.lockedUntil! <= clock.now()) return "lock_lost";
    return record;
  };

  const settleById = async (id: string, token: string, action: (record: StoredMessage) => Promise<SettleAction>, event?: "acked" | "nacked") => {
    const found = await lockedRecord(id, token);
    return typeof found === "string" ? found : settleRecord(found, token, await action(found), event);
  };

  const deliveryOf = (record: StoredMessage): Delivery => {
    const token = record.lockToken!;
    const settle = async (action: () => SettleAction | Promise<SettleAction>, event?: "acked" | "nacked") => {
      const chosen = await action();
      holds.end(record.id, token);
      throwUnlessOk(record.id, await settleRecord(record, token, chosen, event));
    };
    const delivery: Delivery = {
      id: record.id,
      message: record.message,
      attempt: record.attempts,
      token,
      at: record.at,
      topic: record.topic,
      callback: record.callback,
      lockedUntil: record.lockedUntil!,
      ack: () => settle(() => ackAction(record), "acked"),
      nack: (nack = {}) => settle(() => nackWithPolicy(record, nack), "nacked"),
      remove: () => settle(() => ({ kind: "delete" })),
      extend: async (by) => (delivery.lockedUntil = await pitstop.extend(record.id, token, by)),
    };
    return delivery;
  };

  /** Messages with a lock time of their own get it right after the claim (one batched extend). */
  const applyOwnLockTimes = async (records: StoredMessage[], now: number) => {
    const own = records.filter((r) => r.lockTimeMs !== undefined && r.lockedUntil !== now + r.lockTimeMs);
    if (own.length === 0) return;
    const results = await settler.settleMany(own.map((r) => ({ id: r.id, token: r.lockToken!, now, action: { kind: "extend", lockedUntil: now + r.lockTimeMs! } })));
    own.forEach((r, i) => {
      if (results[i] === "ok") r.lockedUntil = r.dueAt = now + r.lockTimeMs!;
    });
  };

  /**
   * Claims for a lane with the lock time of its topic (the engine's for the webhook lane). A
   * record claimed past its last attempt is one whose last lock expired: it fails here (dead, or
   * a failed occurrence) instead of being delivered. Records whose `missed` policy says not to
   * deliver the claimed occurrence (`skip` after an outage, `all` past 1,000 missed) are moved on
   * instead, and the claim is repeated while that left nothing to deliver.
   */
  const claimLane = async (lane: string, limit: number, topic?: string, consumer?: string): Promise<StoredMessage[]> => {
    const policy = topic === undefined ? undefined : await policyOf(topic);
    const ordered = policy?.ordered === true;
    for (let round = 0; ; round++) {
      const now = clock.now();
      const lockedUntil = now + (policy?.lockTimeMs ?? lockTimeMs);
      const claimed = await store.claim({ lane, now, lockedUntil, limit: ordered ? 1 : limit, token: crypto.randomUUID(), ...(ordered && { ordered }), ...(consumer !== undefined && { consumer }) });
      const deliverable: StoredMessage[] = [];
      const exhausted: StoredMessage[] = [];
      const moves: SettleOp[] = [];
      for (const record of claimed) {
        const max = record.maxAttempts ?? (policy ?? (await policyOf(record.topic))).maxAttempts;
        if (record.attempts > max) {
          exhausted.push(record);
          continue;
        }
        const recurrence = record.missed === undefined ? undefined : recurrenceOf(record);
        const move = recurrence && catchUp(recurrence, record.at, now, record.missed);
        if (!move) {
          deliverable.push(record);
          continue;
        }
        const action: SettleAction =
          move.next === undefined ? { kind: "delete" } : { kind: "update", dueAt: move.next, at: move.next, attempts: 0, lastError: null };
        moves.push({ id: record.id, token: record.lockToken!, now, action });
      }
      if (exhausted.length > 0) {
        await Promise.all(exhausted.map((r) => settleRecord(r, r.lockToken!, failAction(r, r.attempts - 1, r.lastError ?? "its lock expired without an ack or nack"))));
      }
      await applyOwnLockTimes(deliverable, now);
      // A claim slower than the lock time (a struggling store) returns locks already expired:
      // handing those out would only earn their consumer a lock_lost; they are due again.
      const late = clock.now();
      const fresh = deliverable.filter((r) => r.lockedUntil! > late);
      if (fresh.length < deliverable.length) log("warn", `a claim took longer than the lock time; ${deliverable.length - fresh.length} message(s) whose lock expired meanwhile are due again`);
      if (moves.length === 0) return fresh;
      await settler.settleMany(moves);
      // The lane is not drained: what moved may be due again, and the claim came back short.
      wake(lane);
      if (fresh.length > 0 || round === 9) return fresh;
    }
  };

  const consumerOf = (consume: ConsumeOptions) => (consume.consumer === undefined ? undefined : checkName(consume.consumer, "consumer"));

  const release = async (records: StoredMessage[]) => {
    if (records.length === 0) return;
    const now = clock.now();
    await settler.settleMany(records.map((r) => ({ id: r.id, token: r.lockToken!, now, action: { kind: "update", dueAt: now } })));
    for (const r of records) book?.retry(r.id, now);
    for (const lane of new Set(records.map((r) => r.lane))) wake(lane, now);
  };

  const pitstop: Pitstop = Object.assign(events, {
    storeName: store.name,
    now: () => clock.now(),

    store(message, at, end, interval) {
      return pitstop.schedule({ message, at, end, interval });
    },

    async schedule(input) {
      const record = recordOf(input, clock.now(), callbackOf(input));
      const outcome = await store.put(record);
      holds.end(record.id);
      wake(record.lane, record.dueAt);
      return scheduledView(record, outcome === "replaced");
    },

    async scheduleMany(inputs) {
      const now = clock.now();
      const outcomes: ScheduleOutcome[] = [];
      const records: StoredMessage[] = [];
      const indexes: number[] = [];
      inputs.forEach((input, i) => {
        try {
          records.push(recordOf(input, now, callbackOf(input)));
          indexes.push(i);
        } catch (error) {
          if (!(error instanceof PitstopError)) throw error;
          outcomes[i] = { error };
        }
      });
      const puts = await putInOrder(store, records);
      const wakeAt = new Map<string, number>();
      puts.forEach((put, k) => {
        const record = records[k];
        if (typeof put === "object") {
          outcomes[indexes[k]] = { error: new PitstopError("store_unavailable", `The ${store.name} store did not store message "${record.id}": ${put.error}`) };
          return;
        }
        holds.end(record.id);
        wakeAt.set(record.lane, Math.min(wakeAt.get(record.lane) ?? Infinity, record.dueAt));
        outcomes[indexes[k]] = { scheduled: scheduledView(record, put === "replaced") };
      });
      for (const [lane, dueAt] of wakeAt) wake(lane, dueAt);
      return outcomes;
    },

    preview(input) {
      const count = input.count === undefined ? 10 : checkCount(input.count, "count", 100);
      const { at, recurrence } = timingOf(input, clock.now());
      return (recurrence ? occurrences(recurrence, at, count) : [at]).map(formatTime);
    },

    async remove(id) {
      const existed = await store.remove(checkName(id, "id"));
      holds.end(id);
      book?.forget(id);
      return existed;
    },

    async get(id) {
      const record = await store.get(checkName(id, "id"));
      return record && messageView(record, clock.now(), book?.lastOf(id));
    },

    async list(listOptions = {}) {
      if (listOptions.webhooks && listOptions.topic !== undefined) throw invalid("topic cannot be given with webhooks", ["topic"]);
      const state = checkListState(listOptions.state);
      if (state === "dead" && listOptions.webhooks) throw invalid("dead letters are listed by topic: give the topic, not webhooks", ["webhooks"]);
      // Dead letters wait in their topic's dead lane, in the order they died (dueAt = failedAt).
      const lane = state === "dead" ? deadLaneOf(checkName(listOptions.topic ?? "default", "topic")) : laneFor(listOptions);
      const limit = listOptions.limit === undefined ? 100 : checkCount(listOptions.limit, "limit", MAX_PAGE);
      const after = listOptions.cursor === undefined ? undefined : checkCursor(listOptions.cursor);
      const now = clock.now();
      const page = await store.list({ lane, after, limit, now, ...(state && state !== "dead" && { locked: state === "locked" }) }).catch((error) => {
        // The store refuses a cursor it cannot read; the client knows it only as `cursor`.
        throw error instanceof PitstopError && error.code === "invalid_request" ? badCursor() : error;
      });
      return { items: page.records.map((r) => messageView(r, now, book?.lastOf(r.id))), next: page.next === undefined ? null : cursorOf(page.next) };
    },

    listen(listenOptions = {}) {
      const lane = laneFor(listenOptions);
      const topic = listenOptions.webhooks ? undefined : listenOptions.topic ?? "default";
      const consumer = consumerOf(listenOptions) ?? `listener-${crypto.randomUUID().slice(0, 8)}`;
      const prefetch = listenOptions.prefetch === undefined ? 1000 : checkCount(listenOptions.prefetch, "prefetch", MAX_BATCH);
      const listener: LaneListener = new LaneListener({
        consumer,
        clock,
        loopTimeMs,
        claimBatch,
        prefetch,
        holds,
        lane: {
          claim: (limit) => claimLane(lane, limit, topic, consumer),
          nextDueAt: async () => store.nextDueAt(lane, topic !== undefined && (await policyOf(topic)).ordered),
          release,
        },
        deliveryOf,
        log,
        emit: (type, detail) => {
          if (type === "delivered") return handedOut(detail, consumer, listenOptions.webhooks === true);
          // An expired lock makes the message due again now: its retry is measured from here.
          book?.retry(detail.id, clock.now());
          events.emit(type, detail);
        },
        onStop: () => listeners.delete(listener),
      });
      listeners.set(listener, lane);
      return listener;
    },

    async claim(claimOptions) {
      const lane = laneFor(claimOptions);
      const topic = claimOptions.webhooks ? undefined : claimOptions.topic ?? "default";
      const consumer = consumerOf(claimOptions);
      const claimed = await claimLane(lane, checkCount(claimOptions.limit, "limit", MAX_BATCH), topic, consumer);
      for (const record of claimed) handedOut(detailOf(record), consumer, claimOptions.webhooks === true);
      return claimed.map(deliveryOf);
    },

    async ack(id, token) {
      throwUnlessOk(id, await settleById(id, token, async (record) => ackAction(record), "acked"));
    },

    async nack(id, token, nack = {}) {
      if (nack.retryIn !== undefined) delayMs(nack.retryIn, "retryIn");
      throwUnlessOk(id, await settleById(id, token, (record) => nackWithPolicy(record, nack), "nacked"));
    },

    async extend(id, token, by) {
      const ms = by === undefined ? lockTimeMs : durationMs(parseDuration(by, "by"), "by");
      const now = clock.now();
      const lockedUntil = now + ms;
      throwUnlessOk(id, await settler.settle({ id, token, now, action: { kind: "extend", lockedUntil } }));
      holds.extend(id, token, lockedUntil);
      return lockedUntil;
    },

    async ackMany(items) {
      return Promise.all(items.map(async ({ id, token }) => ({ id, result: await settleById(id, token, async (record) => ackAction(record), "acked") })));
    },

    ...topicOperations({ store, policies, lockTimeMs, now: () => clock.now(), wake, lateness: (topic) => book?.summary(topic, clock.now()) }),

    async health() {
      try {
        await store.ping!();
        return { ok: true, store: store.name };
      } catch (error) {
        return { ok: false, store: store.name, reason: error instanceof Error ? error.message : String(error) };
      }
    },

    async close() {
      await Promise.all([...listeners.keys()].map((l) => l.stop()));
      await store.dispose?.();
    },
  } satisfies Omit<Pitstop, keyof EventTarget>);
  return pitstop;
}
