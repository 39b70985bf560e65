import { invalid } from "../errors.ts";
import { delayMs, durationMs, parseDuration } from "../schedule.ts";
import type { Store, StoredPolicy } from "../types.ts";
import type { PolicyInput, TopicPolicy } from "./api.ts";

/** Claims of one occurrence before it fails, when neither the message nor its topic says. */
const DEFAULT_MAX_ATTEMPTS = 20;
const MAX_ATTEMPTS_LIMIT = 1_000_000;

/** Checks a policy input; returns it as stored (ms). @throws PitstopError `invalid_request` naming the field. */
export function storedPolicyOf(input: unknown): StoredPolicy {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw invalid("a policy must be a JSON object", []);
  const { maxAttempts, lockTime, backoff, ordered, ...rest } = input as PolicyInput & Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw invalid(`unknown field "${unknown}"`, [unknown]);
  const policy: StoredPolicy = {};
  if (maxAttempts !== undefined) policy.maxAttempts = checkMaxAttempts(maxAttempts, "maxAttempts");
  if (lockTime !== undefined) policy.lockTimeMs = durationMs(parseDuration(lockTime, "lockTime"), "lockTime");
  if (ordered !== undefined) {
    if (typeof ordered !== "boolean") throw invalid("ordered must be true or false", ["ordered"]);
    policy.ordered = ordered;
  }
  if (backoff !== undefined) {
    if (typeof backoff !== "object" || backoff === null || Array.isArray(backoff)) throw invalid("backoff must be an object", ["backoff"]);
    const { base, factor, max, ...other } = backoff as Record<string, unknown>;
    const extra = Object.keys(other)[0];
    if (extra !== undefined) throw invalid(`unknown field "backoff.${extra}"`, ["backoff", extra]);
    policy.backoff = {};
    if (base !== undefined) policy.backoff.baseMs = delayMs(base, "backoff.base");
    if (max !== undefined) policy.backoff.maxMs = delayMs(max, "backoff.max");
    if (factor !== undefined) {
      if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1 || factor > 100) {
        throw invalid("backoff.factor must be a number from 1 to 100", ["backoff", "factor"]);
      }
      policy.backoff.factor = factor;
    }
  }
  return policy;
}

/** Checks a `maxAttempts` (topic policy or message override). */
export function checkMaxAttempts(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_ATTEMPTS_LIMIT) {
    throw invalid(`${field} must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT}`, [field]);
  }
  return value;
}

/** The policy in effect: the stored one over the defaults (`lockTimeMs` the engine's lock time). */
export function effectivePolicy(stored: StoredPolicy | undefined, lockTimeMs: number) {
  const lock = stored?.lockTimeMs ?? lockTimeMs;
  return {
    maxAttempts: stored?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    lockTimeMs: lock,
    baseMs: stored?.backoff?.baseMs ?? 1000,
    factor: stored?.backoff?.factor ?? 2,
    maxMs: stored?.backoff?.maxMs ?? lock,
    ordered: stored?.ordered ?? false,
  };
}

export type EffectivePolicy = ReturnType<typeof effectivePolicy>;

/** Milliseconds as an ISO-8601 duration (`0` as `"PT0S"`). */
const formatDuration = (ms: number) => (ms === 0 ? "PT0S" : parseDuration(ms, "duration"));

/** The policy as the API shows it. */
export function policyView(policy: EffectivePolicy): TopicPolicy {
  return {
    maxAttempts: policy.maxAttempts,
    lockTime: formatDuration(policy.lockTimeMs),
    backoff: { base: formatDuration(policy.baseMs), factor: policy.factor, max: formatDuration(policy.maxMs) },
    ordered: policy.ordered,
  };
}

/** Retry delay after the `attempt`-th failure (from 1) under `policy`. */
export function backoffDelay(policy: EffectivePolicy, attempt: number): number {
  return Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
}

/**
 * The stored policies, read from the store at most once per `ttlMs` (a policy set by another
 * process is seen within it; one set here at once).
 */
export class PolicyCache {
  private policies = new Map<string, StoredPolicy>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly ttlMs: number,
  ) {}

  /** The topic's stored policy, refreshed first when the cache is older than the TTL. */
  async get(topic: string): Promise<StoredPolicy | undefined> {
    if (this.now() - this.loadedAt >= this.ttlMs) await this.refresh();
    return this.policies.get(topic);
  }

  /** Every stored policy, freshly read. */
  async all(): Promise<Map<string, StoredPolicy>> {
    await this.refresh(true);
    return this.policies;
  }

  async set(topic: string, policy: StoredPolicy | undefined): Promise<void> {
    await this.store.setPolicy(topic, policy);
    if (policy === undefined) this.policies.delete(topic);
    else this.policies.set(topic, policy);
  }

  private refresh(force = false): Promise<void> {
    if (this.loading && !force) return this.loading;
    // One promise, kept and returned: a second copy (from `finally`) would reject unhandled when
    // the store fails, and would never equal `loading`, so the slot would never clear.
    const loading: Promise<void> = this.store
      .policies()
      .then((policies) => {
        this.policies = policies;
        this.loadedAt = this.now();
      })
      .finally(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    this.loading = loading;
    return loading;
  }
}
