import { PitstopError } from "../errors.ts";
import { parseTime } from "../schedule.ts";
import type { Store, TimeInput } from "../types.ts";
import type { LatenessSummary, MessageView, PolicyInput, TopicPolicy, TopicView } from "./api.ts";
import { checkName } from "./checks.ts";
import { deadLaneOf, laneOf, topicOfLane } from "./lanes.ts";
import { PolicyCache, effectivePolicy, policyView, storedPolicyOf } from "./policies.ts";
import { messageView } from "./records.ts";

/** What the topic operations need from the engine. */
interface TopicContext {
  store: Store;
  policies: PolicyCache;
  lockTimeMs: number;
  now(): number;
  /** Tells listeners of `lane` something may be due at `dueAt`. */
  wake(lane: string, dueAt: number): void;
  /** The topic's lateness summary in this process, if it delivered any. */
  lateness(topic: string): LatenessSummary | undefined;
}

/** Dead letters, redrives and topic policies: the engine's methods for them. */
export function topicOperations(ctx: TopicContext) {
  const { store, policies } = ctx;

  const views = async (only?: string): Promise<TopicView[]> => {
    const [counts, stored] = await Promise.all([store.countLanes(ctx.now()), policies.all()]);
    const topics = new Map<string, TopicView["counts"]>();
    const countsOf = (topic: string) => {
      let c = topics.get(topic);
      if (!c) topics.set(topic, (c = { pending: 0, locked: 0, dead: 0 }));
      return c;
    };
    for (const [lane, { total, locked }] of counts) {
      const of = topicOfLane(lane);
      if (!of || (only !== undefined && of.topic !== only)) continue;
      const c = countsOf(of.topic);
      if (of.dead) c.dead += total;
      else {
        c.pending += total - locked;
        c.locked += locked;
      }
    }
    for (const topic of stored.keys()) if (only === undefined || topic === only) countsOf(topic);
    return [...topics]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, c]) => {
        const lateness = ctx.lateness(name);
        return { name, policy: policyView(effectivePolicy(stored.get(name), ctx.lockTimeMs)), counts: c, ...(lateness && { lateness }) };
      });
  };

  const redrive = async (id: string, at?: TimeInput): Promise<MessageView> => {
    const due = at === undefined ? ctx.now() : parseTime(at, "at");
    const record = await store.get(checkName(id, "id"));
    if (!record) throw new PitstopError("not_found", `No message with id "${id}".`);
    const lane = laneOf(record.topic, record.callback);
    if (record.deadAt === undefined || !(await store.move(id, deadLaneOf(record.topic), { lane, dueAt: due }))) {
      throw new PitstopError("invalid_state", `Message "${id}" is not dead; only dead messages can be redriven.`);
    }
    ctx.wake(lane, due);
    return messageView({ ...record, lane, dueAt: due, attempts: 0, deadAt: undefined }, ctx.now());
  };

  return {
    redrive,

    async topic(name: string): Promise<TopicView | undefined> {
      return (await views(checkName(name, "topic")))[0];
    },

    topics: () => views(),

    async setPolicy(name: string, input: PolicyInput): Promise<TopicPolicy> {
      const topic = checkName(name, "topic");
      const policy = storedPolicyOf(input);
      await policies.set(topic, policy);
      return policyView(effectivePolicy(policy, ctx.lockTimeMs));
    },

    async resetPolicy(name: string): Promise<void> {
      await policies.set(checkName(name, "topic"), undefined);
    },

    async redriveTopic(name: string): Promise<number> {
      const ids = await store.laneIds(deadLaneOf(checkName(name, "topic")));
      let redriven = 0;
      for (const id of ids) {
        try {
          await redrive(id);
          redriven++;
        } catch (error) {
          // Removed or redriven by someone else meanwhile.
          if (!(error instanceof PitstopError && (error.code === "not_found" || error.code === "invalid_state"))) throw error;
        }
      }
      return redriven;
    },

    async purgeDead(name: string): Promise<number> {
      const ids = await store.laneIds(deadLaneOf(checkName(name, "topic")));
      let removed = 0;
      for (const id of ids) {
        const record = await store.get(id);
        if (record?.deadAt !== undefined && (await store.remove(id))) removed++;
      }
      return removed;
    },
  };
}
