import type { Logger } from "../log.ts";
import type { Clock } from "./clock.ts";
import type { DurationInput, Message, MissedPolicy, SettleResult, Store, TimeInput } from "../types.ts";

/** Options of the engine. */
export interface EngineOptions {
  /** Where messages live. */
  store: Store;
  /** How long a claimed message stays locked before it is emitted again. @default "PT15M" */
  lockTime?: DurationInput;
  /** Longest a listener sleeps before looking at the store again. @default "PT1M" */
  loopTime?: DurationInput;
  /** Most messages one claim takes from the store. @default 100 */
  claimBatch?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
  /**
   * Checks (and may normalize) a callback URL when a message is stored; throws to refuse it.
   * @default only an absolute http(s) URL is required
   */
  checkCallback?: (url: string) => string;
  /** Where failures an operator should see are written, one line each. @default consoleLogger */
  log?: Logger;
  /**
   * Callback of messages stored without one, so every message goes out as a webhook. Trusted
   * configuration: only checked to be an http(s) URL, and exempt from `checkCallback`.
   */
  defaultCallback?: string;
}

/** When a message is emitted. Times and durations as in {@link TimeInput} and {@link DurationInput}. */
export interface ScheduleTiming {
  /** First (or only) emission time; with `cron`, the first cron time at or after it. @default now */
  at?: TimeInput;
  /** Makes the message recurring: occurrences are `at + k × interval`. Not with `cron`. */
  interval?: DurationInput;
  /**
   * Makes the message recurring on a cron expression: 5 fields (minute precision) or 6 (with
   * seconds), e.g. `"0 9 * * MON-FRI"`. Not with `interval`.
   */
  cron?: string;
  /**
   * IANA time zone (`"Europe/Berlin"`) that `cron` and the calendar parts of `interval` (`P1D`,
   * `P1W`, `P1M`, `P1Y`) follow, DST included. Requires `cron` or `interval`. @default "UTC"
   */
  tz?: string;
  /** Last allowed occurrence, inclusive. Requires `interval` or `cron`. */
  end?: TimeInput | null;
}

/** Everything a message can be stored with. */
export interface ScheduleInput extends ScheduleTiming {
  message: Message;
  /** What happens to occurrences missed while nothing delivered them. Requires `cron` or `interval`. @default "once" */
  missed?: MissedPolicy;
  /** @default "default" */
  topic?: string;
  /** Deliver by POSTing to this URL instead of to listeners. */
  callback?: string;
}

/** A schedule to preview: its timing and how many occurrences to list. */
export interface PreviewInput extends ScheduleTiming {
  /** How many occurrences to list, 1 to 100. @default 10 */
  count?: number;
}

/** Where and when a stored message will be emitted. Times are ISO-8601 UTC strings. */
export interface Scheduled {
  id: string;
  at: string;
  interval?: string;
  cron?: string;
  /** Zone of a recurring message's schedule (`"UTC"` unless given). */
  tz?: string;
  /** Missed-occurrence policy of a recurring message (`"once"` unless given). */
  missed?: MissedPolicy;
  end?: string;
  topic: string;
  callback?: string;
  /** True when an existing message with this id was replaced. */
  replaced: boolean;
}

/** A stored message with its schedule and state, as `get` and `GET /messages/:id` show it. */
export interface MessageView {
  id: string;
  message: Message & { id: string };
  at: string;
  interval?: string;
  cron?: string;
  tz?: string;
  missed?: MissedPolicy;
  end?: string;
  /** A recurring message's next occurrence times: from `at` while it is ahead, else from now (up to 3, none past `end`). */
  upcoming?: string[];
  topic: string;
  callback?: string;
  attempts: number;
  locked: boolean;
  lastError?: string;
}

/** Options of a nack. */
export interface NackOptions {
  /** Error text recorded as `lastError`. */
  error?: string;
  /** Retry after this (ISO-8601 duration or ms; `0` or `"PT0S"`: now) instead of the exponential backoff. */
  retryIn?: DurationInput;
}

/** One claimed message handed to a consumer. Ack or nack it before its lock expires. */
export interface Delivery {
  id: string;
  /** The message body, `id` included. */
  message: Message & { id: string };
  /** Claims of the current occurrence so far, this one included (1 on first delivery). */
  attempt: number;
  /** Lock token; HTTP consumers send it back with their ack or nack. */
  token: string;
  /** Scheduled time of the occurrence being delivered (epoch ms); retries keep it. */
  at: number;
  topic: string;
  /** The webhook URL, for a message stored with one (or with the default callback). */
  callback?: string;
  /** When the lock expires (epoch ms). */
  lockedUntil: number;
  /** Removes a one-shot message, moves a recurring one to its next occurrence. Throws `lock_lost`, `not_found`. */
  ack(): Promise<void>;
  /** Unlocks the message and makes it due again after `retryIn` or the backoff. Throws as `ack`. */
  nack(options?: NackOptions): Promise<void>;
  /** Deletes the message for good, recurring or not (a webhook answered 410 Gone). Throws as `ack`. */
  remove(): Promise<void>;
}

/** Which due messages a listener or a claim takes: a topic's, or the webhook messages. */
export interface ConsumeOptions {
  /** Topic to consume. @default "default" */
  topic?: string;
  /** Consume the messages that have a callback (webhooks) instead of a topic. */
  webhooks?: boolean;
}

/** Options of `listen()`. */
export interface ListenOptions extends ConsumeOptions {
  /** Most deliveries held unacked at once; claiming pauses at this many. @default 1000 */
  prefetch?: number;
}

/** A stream of deliveries. Breaking out of `for await` stops it like `stop()`. */
export interface Listener extends AsyncIterable<Delivery> {
  /**
   * The deliveries already claimed and waiting to be handed out, taken at once without waiting,
   * for consumers that write in batches (an SSE stream sends them in one write). Call it between
   * iterations, not while a `next()` is pending.
   */
  ready(): Delivery[];
  /** Stops claiming and releases every delivery not yet acked or nacked (due again at once). */
  stop(): Promise<void>;
}

/** Result of one item of a batch ack. */
export interface AckOutcome {
  id: string;
  result: SettleResult;
}

/**
 * The engine: scheduling, locks, acks and retries over any {@link Store}. Every method that takes
 * input checks it first and throws `invalid_request` (naming the field) before touching the store.
 */
export interface Pitstop {
  /** Name of the store in use (`"memory"`, `"mongodb"`). */
  readonly storeName: string;
  /** The engine's clock, in epoch ms. */
  now(): number;
  /**
   * `store(msg, at)`: emit once at `at` (default now). `store(msg, start, end, interval)`: emit at
   * `start + k × interval` until `end` (inclusive; `null` for no end). The original pitstop's API,
   * an alias of {@link Pitstop.schedule}. Storing an existing id replaces that message, its
   * schedule and any lock on it.
   */
  store(message: Message, at?: TimeInput, end?: TimeInput | null, interval?: DurationInput): Promise<Scheduled>;
  /** Stores (or replaces) a message with everything it can have: topic, callback, schedule. */
  schedule(input: ScheduleInput): Promise<Scheduled>;
  /**
   * The first `count` occurrence times (ISO-8601 UTC) of a schedule, computed without storing
   * anything, to check an expression before using it. Throws `invalid_request` as `schedule` does.
   */
  preview(input: PreviewInput): string[];
  /** Deletes the message whatever its state; true if it existed. */
  remove(id: string): Promise<boolean>;
  /** The stored message with its schedule and state, or undefined. */
  get(id: string): Promise<MessageView | undefined>;
  /** Deliveries of due messages on a topic (or of webhook messages), as they fall due. */
  listen(options?: ListenOptions): Listener;
  /** Claims up to `limit` due messages right now, outside any listener (pull consumers, cron ticks). */
  claim(options: ConsumeOptions & { limit: number }): Promise<Delivery[]>;
  /** Acks by id and lock token. Throws `not_found` or `lock_lost`. */
  ack(id: string, token: string): Promise<void>;
  /** Nacks by id and lock token. Throws `invalid_request` (bad `retryIn`), `not_found` or `lock_lost`. */
  nack(id: string, token: string, options?: NackOptions): Promise<void>;
  /** Acks many at once (one store round trip where the store allows); reports each item, never throws per item. */
  ackMany(items: { id: string; token: string }[]): Promise<AckOutcome[]>;
  /** Whether the store answers now (one round trip to a database server); never throws. */
  health(): Promise<Health>;
  /** Stops every listener (releasing what they hold) and disposes the store. */
  close(): Promise<void>;
}

/** What {@link Pitstop.health} found. */
export type Health = { ok: true; store: string } | { ok: false; store: string; reason: string };
