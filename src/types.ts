/**
 * A message is any JSON object. `id` is optional on input; the stored and emitted message always
 * carries one (a UUID v4 when the client gave none).
 */
export type Message = { id?: string; [key: string]: unknown };

/** A time: a `Date`, epoch milliseconds, or an ISO-8601 timestamp with an offset. */
export type TimeInput = Date | number | string;

/** An interval: an ISO-8601 duration (`"PT1H"`, `"P1M"`) or milliseconds. */
export type DurationInput = string | number;

/**
 * What happens to the occurrences of a recurring message that passed without being delivered
 * (the process was down, or a delivery took longer than the schedule's spacing):
 * - `"once"`: one delivery (of the oldest) stands in for all of them;
 * - `"skip"`: none is delivered; the schedule jumps to its next future occurrence;
 * - `"all"`: each is delivered, in order, with its own `at` (at most the newest 1,000).
 */
export type MissedPolicy = (typeof missedPolicies)[number];

/** The missed-occurrence policies, the default first. */
export const missedPolicies = ["once", "skip", "all"] as const;

/**
 * The unit every store persists. All times are epoch milliseconds.
 *
 * A record is either idle (no lock fields) or locked (`lockToken` and `lockedUntil` set).
 * `dueAt` is the one field claims look at: for an idle record it is when it should next be
 * emitted (its occurrence `at`, or a nack retry time); for a locked record it equals
 * `lockedUntil`, so an expired lock makes the record claimable again without any sweep.
 */
export interface StoredMessage {
  /** The message id; equal to `message.id`. */
  id: string;
  /** The message body exactly as stored, `id` included. */
  message: Message & { id: string };
  /** Which consumers may claim it: an opaque key the engine sets, that claims filter on. */
  lane: string;
  /** Listener topic. Defaults to `"default"`. */
  topic: string;
  /** Webhook URL; when set the message is delivered by `tick()`, not by listeners. */
  callback?: string;
  /** Scheduled time of the current occurrence (retries do not move it). */
  at: number;
  /** Next time this record may be claimed. See the type comment. */
  dueAt: number;
  /** First occurrence of a recurring message; occurrences are `start + k × interval`. */
  start?: number;
  /** Recurrence interval as an ISO-8601 duration. Absent for one-shot and cron messages. */
  interval?: string;
  /** Cron expression (5 fields, or 6 with seconds) of a recurring message; never with `interval`. */
  cron?: string;
  /** IANA time zone that `cron` and the calendar parts of `interval` step in. Absent: UTC. */
  tz?: string;
  /** Missed-occurrence policy of a recurring message. Absent: `"once"`. */
  missed?: MissedPolicy;
  /** Last occurrence allowed (inclusive). Only with `interval` or `cron`. */
  end?: number;
  /**
   * Store order: set by the engine when the record is stored, increasing (epoch ms × 1000 plus a
   * counter). Ordered topics deliver in (`at`, `seq`) order. Absent counts as 0.
   */
  seq?: number;
  /** Claims of the current occurrence. Restarts at 0 when an occurrence is acked or replaced. */
  attempts: number;
  /** Error text of the last nack of the current occurrence. */
  lastError?: string;
  /** Most claims of one occurrence before it fails (dead, or a failed occurrence); overrides the topic's. */
  maxAttempts?: number;
  /** This message's lock time in ms (its ack deadline); overrides the topic's. */
  lockTimeMs?: number;
  /**
   * When the message went dead (epoch ms). A dead record lives in the lane `dead:<lane>` with
   * `dueAt = deadAt`, so claims never see it and a store needs no notion of death.
   */
  deadAt?: number;
  /** Occurrences of a recurring message that exhausted their attempts (or got a final nack). */
  failures?: number;
  /** The last failed occurrence of a recurring message. */
  lastFailure?: OccurrenceFailure;
  /** Token of the current lock. */
  lockToken?: string;
  /** When the current lock expires. */
  lockedUntil?: number;
  /** Consumer name of the current lock's holder (`ClaimRequest.consumer`); cleared with the lock. */
  lockedBy?: string;
}

/** A failed occurrence of a recurring message. Times are epoch ms. */
export interface OccurrenceFailure {
  /** The occurrence's scheduled time. */
  at: number;
  failedAt: number;
  attempts: number;
  lastError?: string;
}

/**
 * The rules of a topic, as stored. Every field is optional: absent ones take the engine's
 * defaults. Durations in ms.
 */
export interface StoredPolicy {
  maxAttempts?: number;
  lockTimeMs?: number;
  backoff?: { baseMs?: number; factor?: number; maxMs?: number };
  ordered?: boolean;
}

/** What a claim asks of a store. */
export interface ClaimRequest {
  lane: string;
  /** Records with `dueAt <= now` in the lane are due. */
  now: number;
  /** The new lock expiry (`now + lockTime`), also the new `dueAt`. */
  lockedUntil: number;
  /** Most records to claim in this call (at least 1). */
  limit: number;
  /** Fresh random token for this claim; every record claimed by this call gets it. */
  token: string;
  /**
   * An ordered lane: claim only its head, the record with the smallest (`at`, `seq`), and only
   * when that head is due and not locked; so at most one record of the lane is locked at a time.
   */
  ordered?: boolean;
  /** Who claims (a listener's consumer name), recorded as `lockedBy`; absent leaves no `lockedBy`. */
  consumer?: string;
}

/** What a listing asks of a store: one page of a lane, in (`dueAt`, tiebreak) order. */
export interface ListRequest {
  lane: string;
  /** The `next` of the previous page; absent for the first page. */
  after?: string;
  /** Most records in the page (at least 1). */
  limit: number;
  /** Only records locked at `now` (`lockedUntil > now`) when true, only the others when false; absent: both. */
  locked?: boolean;
  /** The time `locked` is judged at. */
  now: number;
}

/** One page of a listing. */
export interface ListPage {
  records: StoredMessage[];
  /** Where the next page starts; absent when nothing followed this page when it was read. */
  next?: string;
}

/** How a held lock is settled. The lock is always cleared by a successful settle. */
/**
 * How a held lock is settled. A successful settle clears the lock (`lockToken`, `lockedUntil`,
 * `lockedBy`), except `extend`, which keeps it.
 */
export type SettleAction =
  | { kind: "delete" }
  | {
      /** Keeps the lock, its token and `lockedBy`; moves `lockedUntil` (and `dueAt` with it). */
      kind: "extend";
      /** The new lock expiry, also the new `dueAt`. */
      lockedUntil: number;
    }
  | {
      kind: "update";
      /** New `dueAt` (next occurrence, retry time, or now for a release). */
      dueAt: number;
      /** New occurrence time, when the occurrence moves (ack of a recurring message). */
      at?: number;
      /** New attempts count, when it changes (0 after an acked occurrence). */
      attempts?: number;
      /** New `lastError`; `null` clears it, absent keeps it. */
      lastError?: string | null;
      /** New lane (a message going dead moves to `dead:<lane>`). */
      lane?: string;
      /** New `deadAt`. */
      deadAt?: number;
      /** New `failures` count. */
      failures?: number;
      /** New `lastFailure`. */
      lastFailure?: OccurrenceFailure;
    };

/** One settle of a lock held with `token`. */
export interface SettleOp {
  id: string;
  token: string;
  /** The lock is valid only while `lockedUntil > now`. */
  now: number;
  action: SettleAction;
}

/**
 * Outcome of one settle: `ok` when applied; `not_found` when no record has the id; `lock_lost`
 * when the record exists but is not locked with that token, or its lock expired.
 */
export type SettleResult = "ok" | "not_found" | "lock_lost";

/** Outcome of one record of {@link Store.putMany}: as `put` answers, or why that record alone was not stored. */
export type PutOutcome = "created" | "replaced" | { error: string };

/**
 * The store contract. A store persists records and claims them atomically; the engine
 * (`src/engine/`) owns every scheduling rule. Each store must pass `test/stores/contract.ts`.
 */
export interface Store {
  /** Short name reported by `/health` (`"memory"`, `"mongodb"`). */
  readonly name: string;
  /** Inserts or atomically replaces the record with `record.id` (dropping any lock, `lockedBy` included). */
  put(record: StoredMessage): Promise<"created" | "replaced">;
  /**
   * Optional ability: `put` for many records in as few round trips as the store allows (one
   * transaction, one bulk write). The ids are distinct (the engine keeps the last of duplicates).
   * Outcomes are in the order of `records`; a record the store refused on its own (the rest being
   * stored) gets `{ error }`. Throws, like `put`, when the call failed as a whole. Without it the
   * engine calls `put` once per record.
   */
  putMany?(records: StoredMessage[]): Promise<PutOutcome[]>;
  /** The record with this id, or undefined. Returns a copy the caller may keep. */
  get(id: string): Promise<StoredMessage | undefined>;
  /** Deletes the record whatever its state; true if it existed. */
  remove(id: string): Promise<boolean>;
  /**
   * Atomically claims up to `limit` records of `lane` with `dueAt <= now`, earliest `dueAt`
   * first: each gets `lockToken = token`, `lockedUntil = dueAt = request.lockedUntil`,
   * `lockedBy = consumer` (none without one) and `attempts + 1`. Returns the claimed records as they are after the claim. A record is never
   * returned to two concurrent claims (across processes this relies on their clocks agreeing to
   * well within the lock time). A claim returns fewer than `limit` only when fewer were due.
   */
  claim(request: ClaimRequest): Promise<StoredMessage[]>;
  /**
   * Applies each op only if its record is locked with `op.token` and `lockedUntil > op.now`.
   * Results are in the order of `ops`. Ops on distinct ids are independent; ops on the same id
   * apply in their order (so a second settle with a token the first one used gets `lock_lost`).
   */
  settle(ops: SettleOp[]): Promise<SettleResult[]>;
  /**
   * Smallest `dueAt` in the lane (locked records included), or undefined when it is empty. With
   * `ordered`, the `dueAt` of the lane's head (see {@link ClaimRequest.ordered}): when it can be claimed.
   */
  nextDueAt(lane: string, ordered?: boolean): Promise<number | undefined>;
  /** How many records each lane holds, and how many of them are locked at `now` (lanes with none are left out). */
  countLanes(now: number): Promise<Map<string, { total: number; locked: number }>>;
  /**
   * Moves an unlocked record (a dead one, being redriven) to `lane` with a new `dueAt` and
   * `attempts` 0, clearing `deadAt`. Returns false (and changes nothing) when the record is
   * absent or not in `from`.
   */
  move(id: string, from: string, to: { lane: string; dueAt: number }): Promise<boolean>;
  /** Every record id of a lane, in `dueAt` order (for redriving or deleting a topic's dead letters). */
  laneIds(lane: string): Promise<string[]>;
  /** The stored policy of every topic that has one. */
  policies(): Promise<Map<string, StoredPolicy>>;
  /** Stores (replaces) a topic's policy, or deletes it with `undefined`. */
  setPolicy(topic: string, policy: StoredPolicy | undefined): Promise<void>;
  /**
   * One page of the records of `request.lane`, ordered by `dueAt` (so a locked record sits at its
   * `lockedUntil`), ties broken by a key the store picks that is unique in the lane and fixed while
   * the record keeps its `dueAt` (an insertion sequence, the id). Copies, as `get` returns.
   *
   * `next` is an opaque cursor: the position (`dueAt`, tiebreak) of the page's last record. A page
   * read with it starts strictly after that position, so paging never uses an offset, costs the
   * same on the first and the last page, and a cursor stays valid whatever is written meanwhile:
   * a record that keeps its position from the first page to the last is listed exactly once,
   * whatever is added or removed around it; a record added (or moved by a claim, settle or
   * replace) ahead of the cursor is listed, one behind it is not, and one that moves between
   * pages may be listed twice or not at all. With a `locked` filter the records that do not
   * match are passed over (a page then costs the records it passes over). A malformed `after`
   * (not a `next` of this store) is refused with `invalid_request`.
   */
  list(request: ListRequest): Promise<ListPage>;
  /** Resolves when the store answers (a round trip to a database server); rejects saying why not. */
  ping?(): Promise<void>;
  /** Releases what the store opened. Safe to call twice. */
  dispose?(): Promise<void>;
}
