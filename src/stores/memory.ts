import SortedTree from "sorted-btree";
import { invalid } from "../errors.ts";
import type { ClaimRequest, ListRequest, SettleOp, SettleResult, Store, StoredMessage, StoredPolicy } from "../types.ts";

// Node and Deno hand a CommonJS module's `exports` to a default import, bundlers its `exports.default`.
const BTree: typeof SortedTree = (SortedTree as unknown as { default?: typeof SortedTree }).default ?? SortedTree;

/** Options of the embedded store. */
export interface MemoryStoreOptions {
  /** Name reported by `/health`. @default "memory" */
  name?: string;
}

/** A position in a lane: records are ordered by (`dueAt`, `seq`). */
interface Position {
  record: { dueAt: number };
  seq: number;
}

interface Entry extends Position {
  record: StoredMessage;
}

const byPosition = (a: Position, b: Position): number => a.record.dueAt - b.record.dueAt || a.seq - b.seq;

/**
 * A lane: its entries in a B+ tree ordered by (`dueAt`, `seq`), so claims take the earliest in
 * O(log n) and a listing starts after any position in O(log n). An entry's `dueAt` may change
 * only while it is out of the tree.
 */
type Lane = SortedTree<Position, undefined>;

/** The cursor of a listing: the last listed position. */
const cursorOf = (entry: Position): string => `${entry.record.dueAt}:${entry.seq}`;

function positionOf(cursor: string): Position {
  const match = /^(-?\d{1,16}):(\d{1,16})$/.exec(cursor);
  if (!match) throw invalid("after is not a cursor of this store", ["after"]);
  return { record: { dueAt: Number(match[1]) }, seq: Number(match[2]) };
}

/**
 * The embedded default store: everything lives in this process and is lost when it exits.
 * Records are indexed by id and, per lane, in a B+ tree on (`dueAt`, insertion order), so a claim
 * or a listing page costs O(log n) whatever the number of pending messages. Message bodies are
 * kept as given and never mutated.
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store {
  const byId = new Map<string, Entry>();
  const lanes = new Map<string, Lane>();
  const policies = new Map<string, StoredPolicy>();
  let seq = 0;

  const laneOf = (lane: string): Lane => {
    let tree = lanes.get(lane);
    if (!tree) lanes.set(lane, (tree = new BTree<Position, undefined>(undefined, byPosition)));
    return tree;
  };

  const leaveLane = (entry: Entry): void => {
    const tree = lanes.get(entry.record.lane)!;
    tree.delete(entry);
    if (tree.size === 0) lanes.delete(entry.record.lane);
  };

  const unlink = (entry: Entry): void => {
    leaveLane(entry);
    byId.delete(entry.record.id);
  };

  /** Moves `entry` to `dueAt` in `lane` (its own by default). */
  const reposition = (entry: Entry, dueAt: number, lane = entry.record.lane): void => {
    leaveLane(entry);
    entry.record.dueAt = dueAt;
    entry.record.lane = lane;
    laneOf(lane).set(entry, undefined);
  };

  /** The lane's first record in (`at`, `seq`) order. A scan: ordered lanes are expected to be short. */
  const headOf = (lane: string): Entry | undefined => {
    let head: Entry | undefined;
    for (const key of lanes.get(lane)?.keys() ?? []) {
      const r = (key as Entry).record;
      if (!head || r.at < head.record.at || (r.at === head.record.at && (r.seq ?? 0) < (head.record.seq ?? 0))) head = key as Entry;
    }
    return head;
  };

  /** Locks `entry` for `request`; returns a copy of the record as claimed. */
  const lock = (entry: Entry, request: ClaimRequest): StoredMessage => {
    const record = entry.record;
    record.lockToken = request.token;
    record.lockedUntil = request.lockedUntil;
    record.lockedBy = request.consumer;
    record.attempts += 1;
    reposition(entry, request.lockedUntil);
    return { ...record };
  };

  const putOne = (record: StoredMessage): "created" | "replaced" => {
    const { lockToken: _token, lockedUntil: _until, lockedBy: _by, ...fresh } = record;
    const existing = byId.get(record.id);
    if (existing) unlink(existing);
    const entry: Entry = { record: fresh as StoredMessage, seq: seq++ };
    byId.set(record.id, entry);
    laneOf(record.lane).set(entry, undefined);
    return existing ? "replaced" : "created";
  };

  const settleOne = (op: SettleOp): SettleResult => {
    const entry = byId.get(op.id);
    if (!entry) return "not_found";
    const record = entry.record;
    if (record.lockToken !== op.token || record.lockedUntil === undefined || record.lockedUntil <= op.now) {
      return "lock_lost";
    }
    const action = op.action;
    if (action.kind === "delete") {
      unlink(entry);
      return "ok";
    }
    if (action.kind === "extend") {
      record.lockedUntil = action.lockedUntil;
      reposition(entry, action.lockedUntil);
      return "ok";
    }
    record.lockToken = undefined;
    record.lockedUntil = undefined;
    record.lockedBy = undefined;
    if (action.at !== undefined) record.at = action.at;
    if (action.attempts !== undefined) record.attempts = action.attempts;
    if (action.lastError === null) record.lastError = undefined;
    else if (action.lastError !== undefined) record.lastError = action.lastError;
    if (action.deadAt !== undefined) record.deadAt = action.deadAt;
    if (action.failures !== undefined) record.failures = action.failures;
    if (action.lastFailure !== undefined) record.lastFailure = action.lastFailure;
    reposition(entry, action.dueAt, action.lane);
    return "ok";
  };

  return {
    name: options.name ?? "memory",

    async put(record) {
      return putOne(record);
    },

    async putMany(records) {
      return records.map(putOne);
    },

    async get(id) {
      const entry = byId.get(id);
      return entry && { ...entry.record };
    },

    async remove(id) {
      const entry = byId.get(id);
      if (!entry) return false;
      unlink(entry);
      return true;
    },

    async claim(request: ClaimRequest) {
      if (request.ordered) {
        const head = headOf(request.lane);
        return head && head.record.dueAt <= request.now ? [lock(head, request)] : [];
      }
      const claimed: StoredMessage[] = [];
      while (claimed.length < request.limit) {
        const entry = lanes.get(request.lane)?.minKey() as Entry | undefined;
        if (!entry || entry.record.dueAt > request.now) break;
        claimed.push(lock(entry, request));
      }
      return claimed;
    },

    async settle(ops) {
      return ops.map(settleOne);
    },

    async nextDueAt(lane, ordered) {
      return ordered ? headOf(lane)?.record.dueAt : lanes.get(lane)?.minKey()?.record.dueAt;
    },

    async list(request: ListRequest) {
      const after = request.after === undefined ? undefined : positionOf(request.after);
      const tree = lanes.get(request.lane);
      const records: StoredMessage[] = [];
      let last: Entry | undefined;
      for (const key of tree?.keys(after) ?? []) {
        const entry = key as Entry;
        if (after && byPosition(entry, after) === 0) continue;
        if (request.locked !== undefined && request.locked !== isLocked(entry.record, request.now)) continue;
        if (records.length === request.limit) return { records, next: cursorOf(last!) };
        records.push({ ...entry.record });
        last = entry;
      }
      return { records };
    },

    async countLanes(now) {
      const counts = new Map<string, { total: number; locked: number }>();
      for (const { record } of byId.values()) {
        const count = counts.get(record.lane) ?? { total: 0, locked: 0 };
        count.total++;
        if (isLocked(record, now)) count.locked++;
        counts.set(record.lane, count);
      }
      return counts;
    },

    async move(id, from, to) {
      const entry = byId.get(id);
      if (!entry || entry.record.lane !== from || entry.record.lockToken !== undefined) return false;
      entry.record.attempts = 0;
      entry.record.deadAt = undefined;
      reposition(entry, to.dueAt, to.lane);
      return true;
    },

    async laneIds(lane) {
      return [...(lanes.get(lane)?.keys() ?? [])].map((key) => (key as Entry).record.id);
    },

    async policies() {
      return new Map([...policies].map(([topic, policy]) => [topic, structuredClone(policy)]));
    },

    async setPolicy(topic, policy) {
      if (policy === undefined) policies.delete(topic);
      else policies.set(topic, structuredClone(policy));
    },

    async ping() {},

    async dispose() {},
  };
}

const isLocked = (record: StoredMessage, now: number): boolean => record.lockedUntil !== undefined && record.lockedUntil > now;
