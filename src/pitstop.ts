import { checkCallbackUrl } from "./callback-url.ts";
import { type Clock, systemClock } from "./clock.ts";
import { PitstopError } from "./errors.ts";
import { ActiveListener, type Delivery, type ListenOptions, type Listener, type NackOptions } from "./listener.ts";
import { messageView, recordOf, scheduledView, type MessageView, type ScheduleInput, type Scheduled } from "./records.ts";
import { backoffMs, durationMs, nextOccurrenceAfter, parseDuration } from "./schedule.ts";
import { checkName } from "./schemas.ts";
import { SettleQueue } from "./settle-queue.ts";
import { memoryStore } from "./stores/memory.ts";
import {
  laneOf,
  type DurationInput,
  type Message,
  type SettleAction,
  type SettleResult,
  type Store,
  type StoredMessage,
  type TimeInput,
} from "./types.ts";

/** Options of `createPitstop`. */
export interface PitstopOptions {
  /** Where messages live. @default memoryStore() */
  store?: Store;
  /** How long a claimed message stays locked before it is emitted again. @default "PT15M" */
  lockTime?: DurationInput;
  /** Longest a listener sleeps before looking at the store again. @default "PT1M" */
  loopTime?: DurationInput;
  /** Most messages one claim takes from the store. @default 100 */
  claimBatch?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
  /**
   * Checks (and may normalize) a callback URL when a message is stored and again before each
   * webhook delivery; throws to refuse it. @default checkCallbackUrl (private hosts refused)
   */
  checkCallback?: (url: string) => string;
  /**
   * Callback of messages stored without one, so every message goes out as a webhook. Trusted
   * configuration: only checked to be an http(s) URL, and exempt from `checkCallback`.
   */
  defaultCallback?: string;
}

/** Result of one item of a batch ack. */
export interface AckOutcome {
  id: string;
  result: SettleResult;
}

export type Pitstop = ReturnType<typeof createPitstop>;

/**
 * The engine: scheduling, locks, acks and retries over any {@link Store}.
 *
 * `store(msg, at)` and `store(msg, start, end, interval)` mirror the original Clojure pitstop.
 */
export function createPitstop(options: PitstopOptions = {}) {
  const store = options.store ?? memoryStore();
  const clock = options.clock ?? systemClock;
  const lockTimeMs = durationMs(parseDuration(options.lockTime ?? "PT15M", "lockTime"), "lockTime");
  const loopTimeMs = durationMs(parseDuration(options.loopTime ?? "PT1M", "loopTime"), "loopTime");
  const claimBatch = options.claimBatch ?? 100;
  const listeners = new Set<ActiveListener>();
  const settler = new SettleQueue(store);
  const defaultCallback =
    options.defaultCallback === undefined ? undefined : checkCallbackUrl(options.defaultCallback, { allowPrivate: true });
  const checkCallbackOption = options.checkCallback ?? checkCallbackUrl;
  const checkCallback = (url: string) => (url === defaultCallback ? url : checkCallbackOption(url));

  /** Which in-process listener holds an unsettled delivery of each message id. */
  const holders = new Map<string, ActiveListener>();

  /** Tells the lane's listeners that something may fall due at `dueAt`. */
  const wake = (lane: string, dueAt?: number) => {
    for (const listener of listeners) if (listener.lane === lane) listener.wake(dueAt);
  };

  /** Drops the hold of the in-process listener holding `id`, if any (it was replaced or removed). */
  const forgetHeld = (id: string) => {
    const listener = holders.get(id);
    const record = listener?.held.get(id);
    if (record) listener!.forget(id, record.lockToken!);
  };

  const settleAction = (record: StoredMessage, kind: "ack" | "nack", nack: NackOptions = {}): SettleAction => {
    const now = clock.now();
    if (kind === "nack") {
      const retryMs =
        nack.retryIn === undefined
          ? backoffMs(record.attempts, lockTimeMs)
          : durationMs(parseDuration(nack.retryIn, "retryIn"), "retryIn");
      return { kind: "update", dueAt: now + retryMs, lastError: nack.error ?? null };
    }
    if (record.interval === undefined) return { kind: "delete" };
    const next = nextOccurrenceAfter(record.start ?? record.at, record.interval, now);
    if (record.end !== undefined && next > record.end) return { kind: "delete" };
    return { kind: "update", dueAt: next, at: next, attempts: 0, lastError: null };
  };

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

  /** Finds the locked record for an ack that arrives by id and token (HTTP). */
  const lockedRecord = async (id: string, token: string): Promise<StoredMessage | SettleResult> => {
    const held = holders.get(id)?.forget(id, token);
    if (held) return held;
    const record = await store.get(id);
    if (!record) return "not_found";
    if (record.lockToken !== token || record.lockedUntil! <= clock.now()) return "lock_lost";
    return record;
  };

  const settleById = async (id: string, token: string, kind: "ack" | "nack", nack?: NackOptions) => {
    const found = await lockedRecord(id, token);
    if (typeof found === "string") return found;
    return settleRecord(found, token, settleAction(found, kind, nack));
  };

  const deliveryOf = (record: StoredMessage, onSettled: () => void = () => {}): Delivery => {
    const token = record.lockToken!;
    const settle = async (kind: "ack" | "nack", nack?: NackOptions) => {
      const action = settleAction(record, kind, nack);
      onSettled();
      throwUnlessOk(record.id, await settleRecord(record, token, action));
    };
    return {
      id: record.id,
      msg: record.message,
      attempt: record.attempts,
      token,
      at: record.at,
      topic: record.topic,
      callback: record.callback,
      lockedUntil: record.lockedUntil!,
      ack: () => settle("ack"),
      nack: (nack) => settle("nack", nack),
    };
  };

  const claim = (lane: string, limit: number) => {
    const now = clock.now();
    return store.claim({ lane, now, lockedUntil: now + lockTimeMs, limit, token: crypto.randomUUID() });
  };

  const release = async (records: StoredMessage[]) => {
    if (records.length === 0) return;
    const now = clock.now();
    await settler.settleMany(
      records.map((r) => ({ id: r.id, token: r.lockToken!, now, action: { kind: "update", dueAt: now } })),
    );
    for (const lane of new Set(records.map((r) => r.lane))) wake(lane, now);
  };

  async function schedule(input: ScheduleInput): Promise<Scheduled> {
    const callback = input.callback === undefined ? defaultCallback : checkCallback(input.callback);
    const record = recordOf(input, clock.now(), callback);
    const outcome = await store.put(record);
    forgetHeld(record.id);
    wake(record.lane, record.dueAt);
    return scheduledView(record, outcome === "replaced");
  }

  return {
    /** The store in use. */
    storeBackend: store,
    lockTimeMs,
    /** The engine's clock, in epoch ms. */
    now: clock.now,
    /** The callback check, applied again before each webhook delivery; the default callback passes. */
    checkCallback,

    /**
     * `store(msg, at)`: emit once at `at`. `store(msg, start, end, interval)`: emit at
     * `start + k × interval` until `end` (inclusive; `null` for no end). Storing an existing id
     * replaces that message, its schedule and any lock on it.
     */
    store(message: Message, at?: TimeInput, end?: TimeInput | null, interval?: DurationInput): Promise<Scheduled> {
      return schedule({ message, at, end, interval });
    },

    schedule,

    /** Deletes the message whatever its state; true if it existed. */
    async remove(id: string): Promise<boolean> {
      const existed = await store.remove(id);
      forgetHeld(id);
      return existed;
    },

    /** The stored message with its schedule and state, or undefined. */
    async get(id: string): Promise<MessageView | undefined> {
      const record = await store.get(id);
      return record && messageView(record, clock.now());
    },

    /** Deliveries of due messages on a topic (or of webhook messages), as they fall due. */
    listen(listenOptions: ListenOptions = {}): Listener {
      const lane = listenOptions.webhooks ? "webhook" : laneOf(checkName(listenOptions.topic ?? "default", "topic"));
      const listener: ActiveListener = new ActiveListener(
        {
          now: clock.now,
          setTimer: clock.setTimer,
          loopTimeMs,
          claimBatch,
          claim,
          nextDueAt: (l) => store.nextDueAt(l),
          deliveryOf,
          release,
          detach: (l) => listeners.delete(l),
          holding: (id, l) => {
            if (l) holders.set(id, l);
            else if (holders.get(id) === listener) holders.delete(id);
          },
        },
        lane,
        listenOptions.prefetch ?? 1000,
      );
      listeners.add(listener);
      return listener;
    },

    /** Claims up to `limit` due messages of a lane right now, outside any listener. */
    async claimDue(lane: string, limit: number): Promise<Delivery[]> {
      return (await claim(lane, limit)).map((record) => deliveryOf(record));
    },

    /** Acks by id and lock token. Throws `not_found` or `lock_lost`. */
    async ack(id: string, token: string): Promise<void> {
      throwUnlessOk(id, await settleById(id, token, "ack"));
    },

    /** Nacks by id and lock token. Throws `not_found` or `lock_lost`. */
    async nack(id: string, token: string, nack: NackOptions = {}): Promise<void> {
      if (nack.retryIn !== undefined) durationMs(parseDuration(nack.retryIn, "retryIn"), "retryIn");
      throwUnlessOk(id, await settleById(id, token, "nack", nack));
    },

    /** Deletes a message whose lock is held with `token`, recurring or not (a webhook answered 410 Gone). */
    async removeLocked(id: string, token: string): Promise<SettleResult> {
      const found = await lockedRecord(id, token);
      if (typeof found === "string") return found;
      return settleRecord(found, token, { kind: "delete" });
    },

    /** Acks many at once (one store round trip where the store allows); never throws per item. */
    async ackMany(items: { id: string; token: string }[]): Promise<AckOutcome[]> {
      return Promise.all(items.map(async ({ id, token }) => ({ id, result: await settleById(id, token, "ack") })));
    },

    /** Stops every listener (releasing what they hold) and disposes the store. */
    async close(): Promise<void> {
      await Promise.all([...listeners].map((l) => l.stop()));
      await store.dispose?.();
    },
  };
}
