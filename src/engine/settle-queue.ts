import type { SettleOp, SettleResult, Store } from "../types.ts";

interface Pending {
  op: SettleOp;
  resolve: (result: SettleResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Funnels settles (acks, nacks, releases) into `store.settle` batches: while one batch is with
 * the store, the next accumulates, so many concurrent acks cost one round trip, and a lone ack
 * waits for nothing.
 */
export class SettleQueue {
  private pending: Pending[] = [];
  private running = false;

  constructor(private readonly store: Store) {}

  settle(op: SettleOp): Promise<SettleResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  settleMany(ops: SettleOp[]): Promise<SettleResult[]> {
    return Promise.all(ops.map((op) => this.settle(op)));
  }

  private async drain(): Promise<void> {
    this.running = true;
    // Let the acks that arrive in the same turn join the first batch.
    await Promise.resolve();
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        const results = await this.store.settle(batch.map((p) => p.op));
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.running = false;
  }
}
