import type { ClaimRequest, SettleOp, SettleResult, Store, StoredMessage, StoredPolicy } from "../types.ts";

/** Options of the embedded store. */
export interface MemoryStoreOptions {
  /** Name reported by `/health`. @default "memory" */
  name?: string;
}

interface Entry {
  record: StoredMessage;
  /** Position in its lane's heap. */
  pos: number;
  /** Insertion order, so records due at the same time leave in the order they came. */
  seq: number;
}

/**
 * A binary min-heap of entries ordered by (`dueAt`, `seq`) that knows each entry's position, so
 * an entry can be removed or re-keyed in O(log n). Claims and next-due look-ups never scan.
 */
class DueHeap {
  private readonly items: Entry[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Entry | undefined {
    return this.items[0];
  }

  /** The entries in heap order (not sorted). */
  entries(): readonly Entry[] {
    return this.items;
  }

  push(entry: Entry): void {
    entry.pos = this.items.length;
    this.items.push(entry);
    this.up(entry.pos);
  }

  remove(entry: Entry): void {
    const last = this.items.pop()!;
    if (last !== entry) {
      this.items[entry.pos] = last;
      last.pos = entry.pos;
      this.update(last);
    }
  }

  /** Restores order after `entry.record.dueAt` changed. */
  update(entry: Entry): void {
    this.up(entry.pos);
    this.down(entry.pos);
  }

  private less(a: Entry, b: Entry): boolean {
    return a.record.dueAt < b.record.dueAt || (a.record.dueAt === b.record.dueAt && a.seq < b.seq);
  }

  private up(i: number): void {
    const items = this.items;
    const entry = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(entry, items[parent])) break;
      items[i] = items[parent];
      items[i].pos = i;
      i = parent;
    }
    items[i] = entry;
    entry.pos = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const entry = items[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(items[child + 1], items[child])) child++;
      if (!this.less(items[child], entry)) break;
      items[i] = items[child];
      items[i].pos = i;
      i = child;
    }
    items[i] = entry;
    entry.pos = i;
  }
}

/**
 * The embedded default store: everything lives in this process and is lost when it exits.
 * Records are indexed by id and, per lane, in a heap on `dueAt`, so a claim costs O(log n)
 * whatever the number of pending messages. Message bodies are kept as given and never mutated.
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store {
  const byId = new Map<string, Entry>();
  const lanes = new Map<string, DueHeap>();
  const policies = new Map<string, StoredPolicy>();
  let seq = 0;

  const heapOf = (lane: string): DueHeap => {
    let heap = lanes.get(lane);
    if (!heap) lanes.set(lane, (heap = new DueHeap()));
    return heap;
  };

  const unlink = (entry: Entry): void => {
    leaveLane(entry);
    byId.delete(entry.record.id);
  };

  const leaveLane = (entry: Entry): void => {
    const heap = lanes.get(entry.record.lane)!;
    heap.remove(entry);
    if (heap.size === 0) lanes.delete(entry.record.lane);
  };

  /** Re-files an entry after its `dueAt` or `lane` changed. */
  const refile = (entry: Entry, lane: string): void => {
    if (lane === entry.record.lane) return lanes.get(lane)!.update(entry);
    leaveLane(entry);
    entry.record.lane = lane;
    heapOf(lane).push(entry);
  };

  /** The lane's first record in (`at`, `seq`) order. A scan: ordered lanes are expected to be short. */
  const headOf = (lane: string): Entry | undefined => {
    let head: Entry | undefined;
    for (const entry of lanes.get(lane)?.entries() ?? []) {
      const r = entry.record;
      if (!head || r.at < head.record.at || (r.at === head.record.at && (r.seq ?? 0) < (head.record.seq ?? 0))) head = entry;
    }
    return head;
  };

  const claimHead = (request: ClaimRequest): StoredMessage[] => {
    const head = headOf(request.lane);
    if (!head || head.record.dueAt > request.now) return [];
    const record = head.record;
    record.lockToken = request.token;
    record.lockedUntil = request.lockedUntil;
    record.dueAt = request.lockedUntil;
    record.attempts += 1;
    lanes.get(request.lane)!.update(head);
    return [{ ...record }];
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
      record.lockedUntil = record.dueAt = action.lockedUntil;
      lanes.get(record.lane)!.update(entry);
      return "ok";
    }
    record.lockToken = undefined;
    record.lockedUntil = undefined;
    record.lockedBy = undefined;
    record.dueAt = action.dueAt;
    if (action.at !== undefined) record.at = action.at;
    if (action.attempts !== undefined) record.attempts = action.attempts;
    if (action.lastError === null) record.lastError = undefined;
    else if (action.lastError !== undefined) record.lastError = action.lastError;
    if (action.deadAt !== undefined) record.deadAt = action.deadAt;
    if (action.failures !== undefined) record.failures = action.failures;
    if (action.lastFailure !== undefined) record.lastFailure = action.lastFailure;
    refile(entry, action.lane ?? record.lane);
    return "ok";
  };

  return {
    name: options.name ?? "memory",

    async put(record) {
      const { lockToken: _token, lockedUntil: _until, lockedBy: _by, ...fresh } = record;
      const existing = byId.get(record.id);
      if (existing) unlink(existing);
      const entry: Entry = { record: fresh as StoredMessage, pos: 0, seq: seq++ };
      byId.set(record.id, entry);
      heapOf(record.lane).push(entry);
      return existing ? "replaced" : "created";
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
      if (request.ordered) return claimHead(request);
      const heap = lanes.get(request.lane);
      const claimed: StoredMessage[] = [];
      while (heap && claimed.length < request.limit) {
        const entry = heap.peek();
        if (!entry || entry.record.dueAt > request.now) break;
        const record = entry.record;
        record.lockToken = request.token;
        record.lockedUntil = request.lockedUntil;
        record.lockedBy = request.consumer;
        record.dueAt = request.lockedUntil;
        record.attempts += 1;
        heap.update(entry);
        claimed.push({ ...record });
      }
      return claimed;
    },

    async settle(ops) {
      return ops.map(settleOne);
    },

    async nextDueAt(lane, ordered) {
      return ordered ? headOf(lane)?.record.dueAt : lanes.get(lane)?.peek()?.record.dueAt;
    },

    async countLanes(now) {
      const counts = new Map<string, { total: number; locked: number }>();
      for (const { record } of byId.values()) {
        const count = counts.get(record.lane) ?? { total: 0, locked: 0 };
        count.total++;
        if (record.lockedUntil !== undefined && record.lockedUntil > now) count.locked++;
        counts.set(record.lane, count);
      }
      return counts;
    },

    async move(id, from, to) {
      const entry = byId.get(id);
      if (!entry || entry.record.lane !== from || entry.record.lockToken !== undefined) return false;
      entry.record.dueAt = to.dueAt;
      entry.record.attempts = 0;
      entry.record.deadAt = undefined;
      refile(entry, to.lane);
      return true;
    },

    async laneIds(lane) {
      return [...(lanes.get(lane)?.entries() ?? [])].sort((a, b) => a.record.dueAt - b.record.dueAt || a.seq - b.seq).map((e) => e.record.id);
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
