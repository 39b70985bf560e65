import { PitstopError } from "../errors.ts";
import { consoleLogger } from "../log.ts";
import { catchUp, occurrenceAfterAck, occurrences } from "../recurrence.ts";
import { backoffMs, delayMs, durationMs, formatTime, parseDuration } from "../schedule.ts";
import type { SettleAction, SettleOp, SettleResult, StoredMessage } from "../types.ts";
import type { ConsumeOptions, Delivery, EngineOptions, NackOptions, Pitstop } from "./api.ts";
import { checkCount, checkHttpUrl, checkName } from "./checks.ts";
import { systemClock } from "./clock.ts";
import { guardStore } from "./guarded-store.ts";
import { Holds } from "./holds.ts";
import { WEBHOOK_LANE, laneOf } from "./lanes.ts";
import { LaneListener } from "./listener.ts";
import { messageView, recordOf, recurrenceOf, scheduledView, timingOf } from "./records.ts";
import { SettleQueue } from "./settle-queue.ts";

/** Most deliveries one `claim` or one listener's prefetch may ask for. */
const MAX_BATCH = 100_000;

/** The engine over `options.store`. See {@link Pitstop}. */
export function createEngine(options: EngineOptions): Pitstop {
  const store = guardStore(options.store);
  const log = options.log ?? consoleLogger;
  const clock = options.clock ?? systemClock;
  const lockTimeMs = durationMs(parseDuration(options.lockTime ?? "PT15M", "lockTime"), "lockTime");
  const loopTimeMs = durationMs(parseDuration(options.loopTime ?? "PT1M", "loopTime"), "loopTime");
  const claimBatch = options.claimBatch ?? 100;
  /** Every running listener with its lane. */
  const listeners = new Map<LaneListener, string>();
  const holds = new Holds();
  const settler = new SettleQueue(store);
  const defaultCallback = options.defaultCallback === undefined ? undefined : checkHttpUrl(options.defaultCallback, "defaultCallback");
  const checkCallbackOption = options.checkCallback ?? ((url: string) => checkHttpUrl(url, "callback"));
  const checkCallback = (url: string) => (url === defaultCallback ? url : checkCallbackOption(url));

  const laneFor = (consume: ConsumeOptions) =>
    consume.webhooks ? WEBHOOK_LANE : laneOf(checkName(consume.topic ?? "default", "topic"));

  /** Tells the lane's listeners that something may fall due at `dueAt`. */
  const wake = (lane: string, dueAt?: number) => {
    for (const [listener, listenerLane] of listeners) if (listenerLane === lane) listener.wake(dueAt);
  };

  const retryMs = (record: StoredMessage, nack: NackOptions) =>
    nack.retryIn === undefined ? backoffMs(record.attempts, lockTimeMs) : delayMs(nack.retryIn, "retryIn");

  const ackAction = (record: StoredMessage): SettleAction => {
    const recurrence = recurrenceOf(record);
    if (!recurrence) return { kind: "delete" };
    const next = occurrenceAfterAck(recurrence, record.at, clock.now(), record.missed);
    if (next === undefined) {
      // Past the last time a Date (or croner: the year 9999) can hold: the schedule has run out, like one past its end.
      log("warn", `recurring message "${record.id}" has no occurrence after ${formatTime(record.at)} within the supported time range; it is removed`);
      return { kind: "delete" };
    }
    if (recurrence.end !== undefined && next > recurrence.end) return { kind: "delete" };
    return { kind: "update", dueAt: next, at: next, attempts: 0, lastError: null };
  };

  const nackAction = (record: StoredMessage, nack: NackOptions): SettleAction => ({
    kind: "update",
    dueAt: clock.now() + retryMs(record, nack),
    lastError: nack.error ?? null,
  });

  const settleRecord = async (record: StoredMessage, token: string, action: SettleAction) => {
    const result = await settler.settle({ id: record.id, token, now: clock.now(), action });
    if (result === "ok" && action.kind === "update") wake(record.lane, action.dueAt);
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

  const settleById = async (id: string, token: string, action: (record: StoredMessage) => SettleAction) => {
    const found = await lockedRecord(id, token);
    return typeof found === "string" ? found : settleRecord(found, token, action(found));
  };

  const deliveryOf = (record: StoredMessage): Delivery => {
    const token = record.lockToken!;
    const settle = async (action: () => SettleAction) => {
      const chosen = action();
      holds.end(record.id, token);
      throwUnlessOk(record.id, await settleRecord(record, token, chosen));
    };
    return {
      id: record.id,
      message: record.message,
      attempt: record.attempts,
      token,
      at: record.at,
      topic: record.topic,
      callback: record.callback,
      lockedUntil: record.lockedUntil!,
      ack: () => settle(() => ackAction(record)),
      nack: (nack = {}) => settle(() => nackAction(record, nack)),
      remove: () => settle(() => ({ kind: "delete" })),
    };
  };

  /**
   * Claims due records of a lane. Records whose `missed` policy says not to deliver the claimed
   * occurrence (`skip` after an outage, `all` past 1,000 missed) are moved on instead, and the
   * claim is repeated while that left nothing to deliver.
   */
  const claimLane = async (lane: string, limit: number): Promise<StoredMessage[]> => {
    for (let round = 0; ; round++) {
      const now = clock.now();
      const claimed = await store.claim({ lane, now, lockedUntil: now + lockTimeMs, limit, token: crypto.randomUUID() });
      const moves: SettleOp[] = [];
      const deliver = claimed.filter((record) => {
        const recurrence = record.missed === undefined ? undefined : recurrenceOf(record);
        const move = recurrence && catchUp(recurrence, record.at, now, record.missed);
        if (!move) return true;
        const action: SettleAction =
          move.next === undefined ? { kind: "delete" } : { kind: "update", dueAt: move.next, at: move.next, attempts: 0, lastError: null };
        moves.push({ id: record.id, token: record.lockToken!, now, action });
        return false;
      });
      if (moves.length === 0) return deliver;
      await settler.settleMany(moves);
      // The lane is not drained: what moved may be due again, and the claim came back short.
      wake(lane);
      if (deliver.length > 0 || round === 9) return deliver;
    }
  };

  const release = async (records: StoredMessage[]) => {
    if (records.length === 0) return;
    const now = clock.now();
    await settler.settleMany(records.map((r) => ({ id: r.id, token: r.lockToken!, now, action: { kind: "update", dueAt: now } })));
    for (const lane of new Set(records.map((r) => r.lane))) wake(lane, now);
  };

  const pitstop: Pitstop = {
    storeName: store.name,
    now: () => clock.now(),

    store(message, at, end, interval) {
      return pitstop.schedule({ message, at, end, interval });
    },

    async schedule(input) {
      const callback = input.callback === undefined ? defaultCallback : checkCallback(input.callback);
      const record = recordOf(input, clock.now(), callback);
      const outcome = await store.put(record);
      holds.end(record.id);
      wake(record.lane, record.dueAt);
      return scheduledView(record, outcome === "replaced");
    },

    preview(input) {
      const count = input.count === undefined ? 10 : checkCount(input.count, "count", 100);
      const { at, recurrence } = timingOf(input, clock.now());
      return (recurrence ? occurrences(recurrence, at, count) : [at]).map(formatTime);
    },

    async remove(id) {
      const existed = await store.remove(checkName(id, "id"));
      holds.end(id);
      return existed;
    },

    async get(id) {
      const record = await store.get(checkName(id, "id"));
      return record && messageView(record, clock.now());
    },

    listen(listenOptions = {}) {
      const lane = laneFor(listenOptions);
      const prefetch = listenOptions.prefetch === undefined ? 1000 : checkCount(listenOptions.prefetch, "prefetch", MAX_BATCH);
      const listener: LaneListener = new LaneListener({
        clock,
        loopTimeMs,
        claimBatch,
        prefetch,
        holds,
        lane: { claim: (limit) => claimLane(lane, limit), nextDueAt: () => store.nextDueAt(lane), release },
        deliveryOf,
        log,
        onStop: () => listeners.delete(listener),
      });
      listeners.set(listener, lane);
      return listener;
    },

    async claim(claimOptions) {
      const lane = laneFor(claimOptions);
      return (await claimLane(lane, checkCount(claimOptions.limit, "limit", MAX_BATCH))).map(deliveryOf);
    },

    async ack(id, token) {
      throwUnlessOk(id, await settleById(id, token, ackAction));
    },

    async nack(id, token, nack = {}) {
      if (nack.retryIn !== undefined) delayMs(nack.retryIn, "retryIn");
      throwUnlessOk(id, await settleById(id, token, (record) => nackAction(record, nack)));
    },

    async ackMany(items) {
      return Promise.all(items.map(async ({ id, token }) => ({ id, result: await settleById(id, token, ackAction) })));
    },

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
  };
  return pitstop;
}
