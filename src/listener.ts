import type { Message, StoredMessage } from "./types.ts";

/** Options of a nack. */
export interface NackOptions {
  /** Error text recorded as `lastError`. */
  error?: string;
  /** Retry after this (ISO-8601 duration or ms) instead of the exponential backoff. */
  retryIn?: string | number;
}

/** One claimed message handed to a consumer. Ack or nack it before its lock expires. */
export interface Delivery {
  id: string;
  /** The message body, `id` included. */
  msg: Message & { id: string };
  /** Claims of the current occurrence so far, this one included (1 on first delivery). */
  attempt: number;
  /** Lock token; HTTP consumers send it back with their ack or nack. */
  token: string;
  /** Scheduled time of the occurrence being delivered (epoch ms); retries keep it. */
  at: number;
  topic: string;
  callback?: string;
  /** When the lock expires (epoch ms). */
  lockedUntil: number;
  /** Removes a one-shot message, moves a recurring one to its next occurrence. */
  ack(): Promise<void>;
  /** Unlocks the message and makes it due again after `retryIn` or the backoff. */
  nack(options?: NackOptions): Promise<void>;
}

/** Options of `listen()`. */
export interface ListenOptions {
  /** Topic to listen on. @default "default" */
  topic?: string;
  /** Claim webhook messages (those with a callback) instead of a topic. */
  webhooks?: boolean;
  /** Most deliveries held unacked at once; claiming pauses at this many. @default 1000 */
  prefetch?: number;
}

/** A stream of deliveries. Breaking out of `for await` stops it like `stop()`. */
export interface Listener extends AsyncIterable<Delivery> {
  /** Stops claiming and releases every delivery not yet acked or nacked (due again at once). */
  stop(): Promise<void>;
}

/** What a listener needs from the engine. */
export interface ListenerHost {
  now(): number;
  setTimer(delayMs: number, fn: () => void): () => void;
  readonly loopTimeMs: number;
  readonly claimBatch: number;
  claim(lane: string, limit: number): Promise<StoredMessage[]>;
  nextDueAt(lane: string): Promise<number | undefined>;
  deliveryOf(record: StoredMessage, onSettled: () => void): Delivery;
  release(records: StoredMessage[]): Promise<void>;
  detach(listener: ActiveListener): void;
  /** Told when this listener starts and stops holding a message, so acks by id find it at once. */
  holding(id: string, listener: ActiveListener | undefined): void;
}

/**
 * A listener's loop: claim what is due (up to the room `prefetch` leaves), hand it out one by
 * one, and otherwise sleep until the lane's next due time, a wake-up, or at most `loopTime`.
 */
export class ActiveListener implements Listener {
  /** Unsettled deliveries by message id. */
  readonly held = new Map<string, StoredMessage>();
  private buffer: Delivery[] = [];
  private bufferAt = 0;
  private stopped = false;
  /** Bumped by every wake-up, so one that lands between a look-up and a sleep is not lost. */
  private generation = 0;
  private wakeSleeper?: () => void;
  /** When the current sleep ends; undefined while awake. */
  private sleepingUntil?: number;
  /** The generation in which a claim last came back with fewer than it asked for. */
  private drainedAt?: number;
  /** Calls to `next()` run one after another, so concurrent callers never share a delivery. */
  private pendingNext: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: ListenerHost,
    readonly lane: string,
    private readonly prefetch: number,
  ) {}

  /**
   * Something in the lane may be due at `dueAt` (or earlier than known): a sleeper that wakes by
   * then anyway sleeps on, so many listeners on a lane do not all query the store per message.
   */
  wake(dueAt = Number.NEGATIVE_INFINITY): void {
    if (this.sleepingUntil !== undefined && this.sleepingUntil <= dueAt) return;
    this.generation++;
    this.wakeSleeper?.();
  }

  /** Forgets a delivery settled elsewhere (for example an HTTP ack) and makes room for more. */
  forget(id: string, token: string): StoredMessage | undefined {
    const record = this.held.get(id);
    if (!record || record.lockToken !== token) return undefined;
    const wasFull = this.held.size >= this.prefetch;
    this.unhold(id);
    if (wasFull) this.wake();
    return record;
  }

  private hold(record: StoredMessage): void {
    this.held.set(record.id, record);
    this.host.holding(record.id, this);
  }

  private unhold(id: string): void {
    this.held.delete(id);
    this.host.holding(id, undefined);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.host.detach(this);
    this.wake();
    const now = this.host.now();
    const unsettled = [...this.held.values()].filter((r) => r.lockedUntil! > now);
    for (const id of [...this.held.keys()]) this.unhold(id);
    this.buffer = [];
    await this.host.release(unsettled);
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
    while (!this.stopped) {
      if (this.bufferAt < this.buffer.length) {
        const delivery = this.buffer[this.bufferAt++];
        if (this.held.get(delivery.id)?.lockToken === delivery.token) return { done: false, value: delivery };
        continue;
      }
      const generation = this.generation;
      const now = this.host.now();
      let wakeAt = now + this.host.loopTimeMs;
      for (const [id, record] of this.held) {
        if (record.lockedUntil! <= now) this.unhold(id);
      }
      const room = this.prefetch - this.held.size;
      if (room > 0) {
        // A claim that came back short took everything due, so unless a wake-up came since,
        // claiming again now would only cost a round trip.
        if (this.drainedAt !== generation) {
          const limit = Math.min(room, this.host.claimBatch);
          const claimed = await this.host.claim(this.lane, limit);
          if (this.stopped) {
            await this.host.release(claimed);
            break;
          }
          if (claimed.length > 0) {
            this.drainedAt = claimed.length < limit ? generation : undefined;
            this.buffer = claimed.map((record) => {
              this.hold(record);
              return this.host.deliveryOf(record, () => this.forget(record.id, record.lockToken!));
            });
            this.bufferAt = 0;
            continue;
          }
        }
        this.drainedAt = undefined;
        const next = await this.host.nextDueAt(this.lane);
        if (next !== undefined) wakeAt = Math.min(wakeAt, next);
      } else {
        for (const record of this.held.values()) wakeAt = Math.min(wakeAt, record.lockedUntil!);
      }
      if (generation === this.generation) await this.sleepUntil(wakeAt);
    }
    return { done: true, value: undefined };
  }

  private sleepUntil(wakeAt: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.host.setTimer(Math.max(1, wakeAt - this.host.now()), () => this.wakeSleeper?.());
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
