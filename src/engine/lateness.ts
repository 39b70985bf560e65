import type { LatenessSummary } from "./api.ts";

/** A message's last delivery by this process (times epoch ms). */
export interface LastDelivery {
  at: number;
  emittedAt: number;
  lateMs: number;
  attempt: number;
  consumer?: string;
}

/** Most deliveries a topic's window holds, and the longest it looks back. */
const WINDOW_SIZE = 10_000;
const WINDOW_MS = 15 * 60_000;

/** Most messages whose last delivery (and pending retry time) this process remembers. */
const REMEMBERED = 100_000;

/** A map that forgets its oldest entries past `limit` (insertion order). */
class BoundedMap<K, V> extends Map<K, V> {
  /**
   * Walks the keys oldest first, one eviction at a time. A fresh `keys()` per eviction would step
   * over every deleted slot at the front of the table (a full map's holes: tens of µs a delivery);
   * this one resumes where it stopped. Every key before it was evicted, so it meets the oldest.
   */
  private readonly oldest = this.keys();

  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    this.delete(key);
    super.set(key, value);
    if (this.size > this.limit) this.delete(this.oldest.next().value as K);
    return this;
  }
}

/** One topic's last deliveries: a ring of (emit time, lateness), at most {@link WINDOW_SIZE}. */
class Window {
  private readonly times = new Float64Array(WINDOW_SIZE);
  private readonly late = new Float64Array(WINDOW_SIZE);
  private next = 0;
  private size = 0;

  add(time: number, lateMs: number): void {
    this.times[this.next] = time;
    this.late[this.next] = lateMs;
    this.next = (this.next + 1) % WINDOW_SIZE;
    this.size = Math.min(this.size + 1, WINDOW_SIZE);
  }

  summary(now: number): LatenessSummary {
    const values: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.times[i]! > now - WINDOW_MS) values.push(this.late[i]!);
    values.sort((a, b) => a - b);
    const rank = (p: number) => values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)] ?? 0;
    return { p50: rank(50), p90: rank(90), p99: rank(99), max: values.at(-1) ?? 0, count: values.length };
  }
}

/**
 * What this process saw of its deliveries: each message's last one, the retry time of a message
 * it nacked or released (a retry's lateness is measured from it), and per topic a sliding window
 * of lateness (the last 10,000 deliveries within 15 minutes). In memory: per process.
 */
export class LatenessBook {
  private readonly last = new BoundedMap<string, LastDelivery>(REMEMBERED);
  private readonly retryAt = new BoundedMap<string, number>(REMEMBERED);
  private readonly windows = new Map<string, Window>();

  /** The message will be due again at `dueAt` (a nack's retry, a release). */
  retry(id: string, dueAt: number): void {
    this.retryAt.set(id, dueAt);
  }

  /** Records a delivery emitted at `now`; returns its lateness in ms. */
  delivered(delivery: { id: string; topic: string; attempt: number; at: number }, now: number, consumer: string | undefined): number {
    const due = delivery.attempt > 1 ? (this.retryAt.get(delivery.id) ?? delivery.at) : delivery.at;
    this.retryAt.delete(delivery.id);
    const lateMs = Math.max(0, now - due);
    const last: LastDelivery = { at: delivery.at, emittedAt: now, lateMs, attempt: delivery.attempt };
    if (consumer !== undefined) last.consumer = consumer;
    this.last.set(delivery.id, last);
    let window = this.windows.get(delivery.topic);
    if (!window) this.windows.set(delivery.topic, (window = new Window()));
    window.add(now, lateMs);
    return lateMs;
  }

  /** The last delivery of a message this process emitted. */
  lastOf(id: string): LastDelivery | undefined {
    return this.last.get(id);
  }

  /** A topic's lateness over the window, or undefined when this process delivered none of it. */
  summary(topic: string, now: number): LatenessSummary | undefined {
    return this.windows.get(topic)?.summary(now);
  }

  forget(id: string): void {
    this.last.delete(id);
    this.retryAt.delete(id);
  }
}
