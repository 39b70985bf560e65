import type { PitstopError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "./clock.ts";
import type { DurationInput, Message, MissedPolicy, SettleResult, Store, TimeInput } from "../types.ts";

/** A topic's rules as the API shows them: every field filled in, durations ISO-8601. */
export interface TopicPolicy {
  /** Claims of one occurrence before it fails: dead (one-shot) or a failed occurrence (recurring). */
  maxAttempts: number;
  /** How long a delivery of this topic stays locked awaiting its ack. */
  lockTime: string;
  /** Nack retry delays: `base × factor^(attempt−1)`, at most `max`. */
  backoff: { base: string; factor: number; max: string };
  /** At most one delivery of the topic in flight, in `at` order. */
  ordered: boolean;
}

/** What `PUT /topics/:name` and `setPolicy` take: any subset; durations ISO-8601 or ms. */
export interface PolicyInput {
  maxAttempts?: number;
  lockTime?: DurationInput;
  backoff?: { base?: DurationInput; factor?: number; max?: DurationInput };
  ordered?: boolean;
}

/** A topic as `GET /topics/:name` shows it. */
export interface TopicView {
  name: string;
  policy: TopicPolicy;
  /** Listener messages of the topic by state (webhook messages share one lane and are not counted per topic), and its dead letters. */
  counts: { pending: number; locked: number; dead: number };
  /** Lateness of the topic's deliveries by this process (not the cluster): the last 10,000 within 15 minutes. Absent when it delivered none. */
  lateness?: LatenessSummary;
}

/** Lateness (emit time − scheduled time, ms) over a window of deliveries. */
export interface LatenessSummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  count: number;
}

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
   * Records each delivery's lateness (`lastDelivery` of a message, `lateness` of a topic, the
   * `lateness` event), in this process's memory. @default true
   */
  recordLateness?: boolean;
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
  /** Claims of one occurrence before it fails; overrides the topic's policy. */
  maxAttempts?: number;
  /** How long a delivery of this message stays locked (its ack deadline); overrides the topic's policy. */
  lockTime?: DurationInput;
}

/** A schedule to preview: its timing and how many occurrences to list. */
export interface PreviewInput extends ScheduleTiming {
  /** How many occurrences to list, 1 to 100. @default 10 */
  count?: number;
}

/** A message's schedule as the API shows it. Times are ISO-8601 UTC strings. */
export interface ScheduleView {
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
}

/** Where and when a stored message will be emitted. */
export interface Scheduled extends ScheduleView {
  /** True when an existing message with this id was replaced. */
  replaced: boolean;
}

/** One input of {@link Pitstop.scheduleMany}: stored, or the error `schedule` would have thrown for it. */
export type ScheduleOutcome = { scheduled: Scheduled } | { error: PitstopError };

/** A stored message with its schedule and state, as `get` and `GET /messages/:id` show it. */
export interface MessageView extends ScheduleView {
  message: Message & { id: string };
  /** A recurring message's next occurrence times: from `at` while it is ahead, else from now (up to 3, none past `end`). */
  upcoming?: string[];
  attempts: number;
  /** `pending` (waiting for its time or a retry), `locked` (delivered, awaiting its ack) or `dead`. */
  state: "pending" | "locked" | "dead";
  /** True while `state` is `locked`. */
  locked: boolean;
  lastError?: string;
  /** The message's own `maxAttempts`, when it overrides the topic's. */
  maxAttempts?: number;
  /** The message's own lock time, when it overrides the topic's. */
  lockTime?: string;
  /** When it went dead (ISO-8601). */
  failedAt?: string;
  /** Failed occurrences of a recurring message. */
  failures?: number;
  /** The last failed occurrence of a recurring message (times ISO-8601). */
  lastFailure?: { at: string; failedAt: string; attempts: number; lastError?: string };
  /** Consumer name of the lock's holder, while locked by a named consumer. */
  lockedBy?: string;
  /** When the lock expires, while locked. */
  lockedUntil?: string;
  /**
   * The message's last delivery by this process (kept in its memory, not in the store):
   * occurrence time, emit time, lateness (emit time − occurrence time, or − retry time for a
   * retry this process scheduled), attempt and consumer.
   */
  lastDelivery?: { at: string; emittedAt: string; lateMs: number; attempt: number; consumer?: string };
}

/** Options of a nack. */
export interface NackOptions {
  /** Error text recorded as `lastError`. */
  error?: string;
  /** Retry after this (ISO-8601 duration or ms; `0` or `"PT0S"`: now) instead of the exponential backoff. */
  retryIn?: DurationInput;
  /** The occurrence fails at once, whatever attempts are left: dead, or a failed occurrence when recurring. */
  final?: boolean;
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
  /** When the lock expires (epoch ms); {@link Delivery.extend} moves it. */
  lockedUntil: number;
  /** Removes a one-shot message, moves a recurring one to its next occurrence. Throws `lock_lost`, `not_found`. */
  ack(): Promise<void>;
  /** Unlocks the message and makes it due again after `retryIn` or the backoff. Throws as `ack`. */
  nack(options?: NackOptions): Promise<void>;
  /** Deletes the message for good, recurring or not (a webhook answered 410 Gone). Throws as `ack`. */
  remove(): Promise<void>;
  /** {@link Pitstop.extend} for this delivery; updates `lockedUntil` and returns it. */
  extend(by?: DurationInput): Promise<number>;
}

/** Which due messages a listener or a claim takes: a topic's, or the webhook messages. */
export interface ConsumeOptions {
  /** Topic to consume. @default "default" */
  topic?: string;
  /** Consume the messages that have a callback (webhooks) instead of a topic. */
  webhooks?: boolean;
  /**
   * Who consumes, recorded as `lockedBy` on each claim (an id-like name: 1..256 characters, no
   * control characters). @default `listener-<8 hex>` for `listen()`, none for `claim()`
   */
  consumer?: string;
}

/** Options of `list()`: which stored messages, and which page of them. */
export interface ListOptions {
  /** Topic to list (its messages without a callback). @default "default" */
  topic?: string;
  /** List the messages that have a callback (webhooks, whatever their topic) instead; not with `topic`. */
  webhooks?: boolean;
  /**
   * Only messages locked now, or only those that are not (absent: both, in due-time order); or the
   * topic's dead letters, in the order they died (also for webhook messages: give their topic).
   */
  state?: "pending" | "locked" | "dead";
  /** Most messages in the page, 1 to 1000. @default 100 */
  limit?: number;
  /** The `next` of the previous page; absent for the first page. */
  cursor?: string;
}

/** One page of a listing. */
export interface MessagePage {
  /** In due-time order: when each is next due (a locked message when its lock expires). */
  items: MessageView[];
  /** Opaque cursor of the next page, or null when there was nothing after this one. */
  next: string | null;
}

/** Options of `listen()`. */
export interface ListenOptions extends ConsumeOptions {
  /** Most deliveries held unacked at once; claiming pauses at this many. @default 1000 */
  prefetch?: number;
}

/** A stream of deliveries. Breaking out of `for await` stops it like `stop()`. */
export interface Listener extends AsyncIterable<Delivery> {
  /** Its consumer name: the one given, or the generated one. */
  readonly consumer: string;
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

/** `detail` of every lifecycle event. */
export interface LifecycleDetail {
  id: string;
  topic: string;
  /** The attempt concerned (1 on a first delivery), as `Delivery.attempt`. */
  attempt: number;
  /** Scheduled time of the occurrence concerned (epoch ms), as `Delivery.at`; retries keep it. */
  at: number;
}

/** The events an engine dispatches, each a `CustomEvent` with a {@link LifecycleDetail}. */
export interface PitstopEventMap {
  /** A listener or `claim()` handed a delivery out. */
  delivered: CustomEvent<LifecycleDetail>;
  /** A delivery was acked (by the `Delivery`, by id and token, or in `ackMany`). */
  acked: CustomEvent<LifecycleDetail>;
  /** A delivery was nacked. */
  nacked: CustomEvent<LifecycleDetail>;
  /** A listener's delivery was neither acked nor nacked before its lock ran out: the message is due again. */
  expired: CustomEvent<LifecycleDetail>;
  /** A message failed for good (attempts exhausted, or a final nack) and became a dead letter. */
  dead: CustomEvent<LifecycleDetail>;
  /** An occurrence of a recurring message failed for good and the schedule moved on. */
  "failed-occurrence": CustomEvent<LifecycleDetail>;
  /** Right after `delivered`, when lateness is recorded: how late the delivery went out. */
  lateness: CustomEvent<LatenessDetail>;
  /** A store call failed (it surfaces as `store_unavailable`). */
  "store-error": CustomEvent<{ method: string; reason: string }>;
}

/** `detail` of the `lateness` event. */
export interface LatenessDetail extends LifecycleDetail {
  /** Emit time − scheduled time (of the retry, for a retry this process scheduled), ms. */
  lateMs: number;
  /** How it went out: to a webhook, or to a listener (SSE, in-process). */
  transport: "webhook" | "listener";
}

/** Name of a lifecycle event. */
export type PitstopEventName = keyof PitstopEventMap;

/**
 * The engine: scheduling, locks, acks and retries over any {@link Store}. Every method that takes
 * input checks it first and throws `invalid_request` (naming the field) before touching the store.
 *
 * It is an `EventTarget` dispatching the lifecycle events of {@link PitstopEventMap}, synchronously
 * after what they report happened; a handler should not throw (on Node that is an uncaught exception).
 */
export interface Pitstop extends EventTarget {
  addEventListener<K extends PitstopEventName>(type: K, listener: (event: PitstopEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends PitstopEventName>(type: K, listener: (event: PitstopEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
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
   * {@link Pitstop.schedule} for many messages, in as few store calls as the store allows (one
   * transaction, one bulk write). Each input is checked on its own: a bad one gets its error and
   * the others are stored. The same id given twice acts as sequential schedules: the last wins,
   * and the outcomes say so (`replaced: false`, then `true`). Listeners are woken once, at the end.
   * Outcomes are in the order of `inputs`. Throws `store_unavailable` when the store call fails
   * as a whole (then some of the messages may have been stored).
   */
  scheduleMany(inputs: ScheduleInput[]): Promise<ScheduleOutcome[]>;
  /**
   * The first `count` occurrence times (ISO-8601 UTC) of a schedule, computed without storing
   * anything, to check an expression before using it. Throws `invalid_request` as `schedule` does.
   */
  preview(input: PreviewInput): string[];
  /** Deletes the message whatever its state; true if it existed. */
  remove(id: string): Promise<boolean>;
  /** The stored message with its schedule and state, or undefined. */
  get(id: string): Promise<MessageView | undefined>;
  /**
   * One page of the stored messages of a topic (or the webhook messages), in due-time order (a
   * locked message sits where its lock expires), read from the store by position, never by offset:
   * paging with `next` while messages are stored, claimed and removed lists every message that
   * stays untouched exactly once; one stored or moved ahead of the cursor is listed, one behind it
   * is not. Throws `invalid_request` for a bad option or a cursor this server did not give out.
   */
  list(options?: ListOptions): Promise<MessagePage>;
  /** Deliveries of due messages on a topic (or of webhook messages), as they fall due. */
  listen(options?: ListenOptions): Listener;
  /** Claims up to `limit` due messages right now, outside any listener (pull consumers, cron ticks). */
  claim(options: ConsumeOptions & { limit: number }): Promise<Delivery[]>;
  /** Acks by id and lock token. Throws `not_found` or `lock_lost`. */
  ack(id: string, token: string): Promise<void>;
  /** Nacks by id and lock token. Throws `invalid_request` (bad `retryIn`), `not_found` or `lock_lost`. */
  nack(id: string, token: string, options?: NackOptions): Promise<void>;
  /**
   * Moves the lock's expiry to now + `by` (ISO-8601 duration or ms; default the engine's lock
   * time), keeping the token; returns the new expiry (epoch ms). Throws `invalid_request` (bad
   * `by`), `not_found` or `lock_lost` (a stale token, or a lock that already expired).
   */
  extend(id: string, token: string, by?: DurationInput): Promise<number>;
  /** Acks many at once (one store round trip where the store allows); reports each item, never throws per item. */
  ackMany(items: { id: string; token: string }[]): Promise<AckOutcome[]>;
  /**
   * Makes a dead message pending again: due at `at` (default now), attempts 0. Throws
   * `not_found`, or `invalid_state` when it is not dead.
   */
  redrive(id: string, at?: TimeInput): Promise<MessageView>;
  /** A topic with its policy and counts, or undefined when it has neither messages nor a policy. */
  topic(name: string): Promise<TopicView | undefined>;
  /** Every topic with messages or a policy, by name. */
  topics(): Promise<TopicView[]>;
  /** Sets a topic's policy (fields left out take the defaults); returns the whole policy. */
  setPolicy(name: string, policy: PolicyInput): Promise<TopicPolicy>;
  /** Resets a topic's policy to the defaults. */
  resetPolicy(name: string): Promise<void>;
  /** Redrives every dead message of a topic; returns how many. */
  redriveTopic(name: string): Promise<number>;
  /** Deletes every dead message of a topic; returns how many. */
  purgeDead(name: string): Promise<number>;
  /** Whether the store answers now (one round trip to a database server); never throws. */
  health(): Promise<Health>;
  /** Stops every listener (releasing what they hold) and disposes the store. */
  close(): Promise<void>;
}

/** What {@link Pitstop.health} found. */
export type Health = { ok: true; store: string } | { ok: false; store: string; reason: string };
