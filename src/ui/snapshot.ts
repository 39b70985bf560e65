import type { MessageView, Pitstop, TopicView } from "../engine/index.ts";
import type { HistogramTotals, Metrics } from "../metrics/index.ts";

/** Most topics the dashboard shows (by name), so a snapshot costs a bounded number of reads. */
const MAX_TOPICS = 50;
/** Most pending messages read per topic for the timeline: one page, soonest first. */
const DUE_PAGE = 200;
/** Most dead letters read per topic. */
const DEAD_PAGE = 20;
/** How far ahead the timeline looks. */
export const HORIZON_MS = 60 * 60_000;

/** What falls due within the horizon on one lane: a topic, or the webhook messages. */
export interface DueLane {
  /** A topic's name, or `webhooks`. */
  name: string;
  /** Pending messages due within the horizon, soonest first (at most {@link DUE_PAGE}). */
  items: MessageView[];
  /** True when the page was full: more may fall due within the horizon. */
  more: boolean;
}

/** Everything the dashboard's live panels show, read without claiming anything. */
export interface Snapshot {
  /** When it was read (epoch ms, the engine's clock). */
  now: number;
  topics: TopicView[];
  /** Topics left out past {@link MAX_TOPICS}. */
  hiddenTopics: number;
  due: DueLane[];
  /** Dead letters by topic name, each topic's in the order they died, at most {@link DEAD_PAGE} per topic. */
  dead: MessageView[];
  /** Delivery lateness per bucket, when the app has metrics. */
  lateness?: HistogramTotals;
}

/** Pending messages of a lane due within the horizon (a retry that is overdue counts as due now). */
async function dueLane(pitstop: Pitstop, name: string, webhooks: boolean, until: number): Promise<DueLane> {
  const page = await pitstop.list({ ...(webhooks ? { webhooks: true } : { topic: name }), state: "pending", limit: DUE_PAGE });
  const items = page.items.filter((m) => Date.parse(m.at) <= until);
  return { name, items, more: items.length === DUE_PAGE && page.next !== null };
}

/**
 * Reads a snapshot: the topics with their counts, policy and lateness, one page of pending
 * messages per topic (and of webhook messages) for the timeline, one page of dead letters per
 * topic that has any, and the metrics' lateness histogram. Only reads: nothing is claimed.
 */
async function readSnapshot(pitstop: Pitstop, metrics?: Metrics): Promise<Snapshot> {
  const now = pitstop.now();
  const all = await pitstop.topics();
  const topics = all.slice(0, MAX_TOPICS);
  const until = now + HORIZON_MS;
  const [due, dead] = await Promise.all([
    Promise.all([...topics.map((t) => dueLane(pitstop, t.name, false, until)), dueLane(pitstop, "webhooks", true, until)]),
    Promise.all(topics.filter((t) => t.counts.dead > 0).map((t) => pitstop.list({ topic: t.name, state: "dead", limit: DEAD_PAGE }))),
  ]);
  return {
    now,
    topics,
    hiddenTopics: all.length - topics.length,
    due: due.filter((lane) => lane.items.length > 0),
    dead: dead.flatMap((page) => page.items),
    lateness: metrics?.latenessTotals(),
  };
}

/**
 * {@link readSnapshot} shared by every open dashboard: read at most once per `maxAgeMs`, so ten
 * open pages cost the store what one does.
 */
export function sharedSnapshot(pitstop: Pitstop, metrics: Metrics | undefined, maxAgeMs = 1000): () => Promise<Snapshot> {
  let last: { at: number; snapshot: Promise<Snapshot> } | undefined;
  return () => {
    const now = pitstop.now();
    if (!last || now - last.at >= maxAgeMs) {
      const snapshot = readSnapshot(pitstop, metrics);
      last = { at: now, snapshot };
      // A failed read is not reused: the next call asks the store again.
      snapshot.catch(() => {
        if (last?.snapshot === snapshot) last = undefined;
      });
    }
    return last.snapshot;
  };
}
