import type { Logger } from "../log.ts";
import type { StoredMessage } from "../types.ts";
import type { Delivery, LifecycleDetail, Listener } from "./api.ts";
import type { Clock } from "./clock.ts";
import { detailOf } from "./events.ts";
import type { HoldOwner, Holds } from "./holds.ts";

/** One lane of the store, as the engine lets a listener use it. */
export interface LaneAccess {
  /** Claims and locks up to `limit` due records of the lane. */
  claim(limit: number): Promise<StoredMessage[]>;
  /** The lane's earliest `dueAt`, or undefined when it is empty. */
  nextDueAt(): Promise<number | undefined>;
  /** Makes records this listener claimed but will not deliver due again at once. */
  release(records: StoredMessage[]): Promise<void>;
}

/** What a listener is built with. It calls these; nothing calls back into it but `wake` and `holdEnded`. */
export interface ListenerParts {
  /** The listener's consumer name. */
  consumer: string;
  clock: Clock;
  loopTimeMs: number;
  claimBatch: number;
  prefetch: number;
  lane: LaneAccess;
  holds: Holds;
  /** The delivery handed out for a claimed record (its ack and nack go to the engine). */
  deliveryOf(record: StoredMessage): Delivery;
  log: Logger;
  /** Dispatches a lifecycle event of the engine. */
  emit(type: "delivered" | "expired", detail: LifecycleDetail): void;
  /** Called once when the listener has stopped and released what it held. */
  onStop(): void;
}

/**
 * A listener's loop: claim what is due (up to the room `prefetch` leaves), hand it out one by
 * one, and otherwise sleep until the lane's next due time, a wake-up, or at most `loopTime`.
 */
export class LaneListener implements Listener, HoldOwner {
  private buffer: Delivery[] = [];
  private bufferAt = 0;
  private stopped = false;
  private stopping?: Promise<void>;
  /** Bumped by every wake-up, so one that lands between a look-up and a sleep is not lost. */
  private generation = 0;
  private wakeSleeper?: () => void;
  /** When the current sleep ends; undefined while awake. */
  private sleepingUntil?: number;
  /** The generation in which a claim last came back with fewer than it asked for. */
  private drainedAt?: number;
  /** Calls to `next()` run one after another, so concurrent callers never share a delivery. */
  private pendingNext: Promise<unknown> = Promise.resolve();

  constructor(private readonly parts: ListenerParts) {}

  get consumer(): string {
    return this.parts.consumer;
  }

  /**
   * Something in the lane may be due at `dueAt` (or earlier than known): a sleeper that wakes by
   * then anyway sleeps on, so many listeners on a lane do not all query the store per message.
   */
  wake(dueAt = Number.NEGATIVE_INFINITY): void {
    if (this.sleepingUntil !== undefined && this.sleepingUntil <= dueAt) return;
    this.generation++;
    this.wakeSleeper?.();
  }

  /** A hold ended elsewhere: when that makes room under `prefetch`, claim again. */
  holdEnded(): void {
    if (this.parts.holds.count(this) + 1 >= this.parts.prefetch) this.wake();
  }

  /** Resolves once what it held is released; every call returns the same promise. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.wake();
      this.buffer = [];
      try {
        await this.parts.lane.release(this.parts.holds.takeAll(this, this.parts.clock.now()));
      } finally {
        this.parts.onStop();
      }
    })();
    return this.stopping;
  }

  ready(): Delivery[] {
    const ready: Delivery[] = [];
    while (!this.stopped && this.bufferAt < this.buffer.length) {
      const delivery = this.buffer[this.bufferAt++];
      if (this.parts.holds.holds(this, delivery.id, delivery.token)) ready.push(this.handedOut(delivery));
    }
    return ready;
  }

  [Symbol.asyncIterator](): AsyncIterator<Delivery> {
    return {
      next: () => {
        const result = this.pendingNext.then(() => this.next());
        this.pendingNext = result.catch(() => undefined);
        return result;
      },
      return: async () => {
        await this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  private async next(): Promise<IteratorResult<Delivery>> {
    const { clock, holds, lane } = this.parts;
    while (!this.stopped) {
      if (this.bufferAt < this.buffer.length) {
        const delivery = this.buffer[this.bufferAt++];
        if (holds.holds(this, delivery.id, delivery.token)) return { done: false, value: this.handedOut(delivery) };
        continue;
      }
      const generation = this.generation;
      const now = clock.now();
      let wakeAt = now + this.parts.loopTimeMs;
      const { expired, firstExpiry } = holds.expire(this, now);
      for (const record of expired) {
        this.parts.log("warn", `lock on message "${record.id}" (attempt ${record.attempts}) expired without an ack or nack; it is due again`);
        this.parts.emit("expired", detailOf(record));
      }
      const room = this.parts.prefetch - holds.count(this);
      if (room > 0) {
        // A claim that came back short took everything due, so unless a wake-up came since,
        // claiming again now would only cost a round trip.
        if (this.drainedAt !== generation) {
          const limit = Math.min(room, this.parts.claimBatch);
          const claimed = await lane.claim(limit);
          if (this.stopped) {
            await lane.release(claimed);
            break;
          }
          if (claimed.length > 0) {
            this.drainedAt = claimed.length < limit ? generation : undefined;
            for (const record of claimed) holds.hold(record, this);
            this.buffer = claimed.map((record) => this.parts.deliveryOf(record));
            this.bufferAt = 0;
            continue;
          }
        }
        this.drainedAt = undefined;
        const next = await lane.nextDueAt();
        if (next !== undefined) wakeAt = Math.min(wakeAt, next);
      } else if (firstExpiry !== undefined) {
        wakeAt = Math.min(wakeAt, firstExpiry);
      }
      if (generation === this.generation) await this.sleepUntil(wakeAt);
    }
    return { done: true, value: undefined };
  }

  private handedOut(delivery: Delivery): Delivery {
    this.parts.emit("delivered", { id: delivery.id, topic: delivery.topic, attempt: delivery.attempt, at: delivery.at });
    return delivery;
  }

  private sleepUntil(wakeAt: number): Promise<void> {
    return new Promise((resolve) => {
      const clock = this.parts.clock;
      const cancel = clock.setTimer(Math.max(1, wakeAt - clock.now()), () => this.wakeSleeper?.());
      this.sleepingUntil = wakeAt;
      this.wakeSleeper = () => {
        this.wakeSleeper = undefined;
        this.sleepingUntil = undefined;
        cancel();
        resolve();
      };
    });
  }
}
