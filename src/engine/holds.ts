import type { StoredMessage } from "../types.ts";

/** A consumer that holds deliveries (an in-process listener). */
export interface HoldOwner {
  /** One of its holds was ended from outside (an ack by id, a replace, a remove). */
  holdEnded(): void;
}

/**
 * The engine's one registry of in-process holds: which owner holds an unsettled delivery of each
 * message id, so an ack arriving by id and token (HTTP) finds the claimed record without a store
 * read, and a replaced or removed message frees its owner's prefetch slot at once.
 */
export class Holds {
  private readonly byId = new Map<string, { record: StoredMessage; owner: HoldOwner }>();
  private readonly byOwner = new Map<HoldOwner, Map<string, StoredMessage>>();

  hold(record: StoredMessage, owner: HoldOwner): void {
    const previous = this.byId.get(record.id);
    if (previous) {
      this.drop(previous.owner, record.id);
      if (previous.owner !== owner) previous.owner.holdEnded();
    }
    this.byId.set(record.id, { record, owner });
    let held = this.byOwner.get(owner);
    if (!held) this.byOwner.set(owner, (held = new Map()));
    held.set(record.id, record);
  }

  /** True while `owner` holds this exact delivery (same id and token). */
  holds(owner: HoldOwner, id: string, token: string): boolean {
    const hold = this.byId.get(id);
    return hold !== undefined && hold.owner === owner && hold.record.lockToken === token;
  }

  /**
   * Ends the hold of `id` (only if held with `token`, when given) and returns its record; the
   * owner is told, so it can claim again.
   */
  end(id: string, token?: string): StoredMessage | undefined {
    const hold = this.byId.get(id);
    if (!hold || (token !== undefined && hold.record.lockToken !== token)) return undefined;
    this.byId.delete(id);
    this.byOwner.get(hold.owner)?.delete(id);
    hold.owner.holdEnded();
    return hold.record;
  }

  /** Moves the expiry of the hold of `id` held with `token` (its lock was extended in the store). */
  extend(id: string, token: string, lockedUntil: number): void {
    const hold = this.byId.get(id);
    if (hold?.record.lockToken === token) hold.record.lockedUntil = hold.record.dueAt = lockedUntil;
  }

  /** How many deliveries `owner` holds. */
  count(owner: HoldOwner): number {
    return this.byOwner.get(owner)?.size ?? 0;
  }

  /** Drops the owner's holds whose lock expired by `now`; returns them, and the earliest remaining expiry. */
  expire(owner: HoldOwner, now: number): { expired: StoredMessage[]; firstExpiry?: number } {
    const expired: StoredMessage[] = [];
    let firstExpiry: number | undefined;
    for (const [id, record] of this.byOwner.get(owner) ?? []) {
      if (record.lockedUntil! > now) firstExpiry = Math.min(firstExpiry ?? Infinity, record.lockedUntil!);
      else {
        this.drop(owner, id);
        expired.push(record);
      }
    }
    return { expired, firstExpiry };
  }

  /** Ends every hold of `owner` silently and returns the records whose lock is still valid at `now`. */
  takeAll(owner: HoldOwner, now: number): StoredMessage[] {
    const held = [...(this.byOwner.get(owner)?.values() ?? [])];
    for (const record of held) this.drop(owner, record.id);
    this.byOwner.delete(owner);
    return held.filter((record) => record.lockedUntil! > now);
  }

  private drop(owner: HoldOwner, id: string): void {
    this.byOwner.get(owner)?.delete(id);
    if (this.byId.get(id)?.owner === owner) this.byId.delete(id);
  }
}
