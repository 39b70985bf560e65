import type { Pitstop } from "../engine/index.ts";
import { Histogram, Registry, Scalar, type HistogramTotals } from "./registry.ts";

export type { HistogramTotals } from "./registry.ts";

/** Lateness buckets in seconds: 1 ms to 60 s. */
const LATENESS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Webhook call buckets in seconds: 5 ms to 30 s. */
const WEBHOOK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** How long the message counts read from the store are reused. @default 5000 */
  countsCacheMs?: number;
  /** Time source (epoch ms), for the cache. @default the engine's clock */
  now?: () => number;
}

/**
 * Pitstop's metrics over one engine. Counters and histograms are this process's (an isolate's on
 * Workers); `pitstop_messages` is read from the store, so it is global.
 */
export interface Metrics {
  /** A webhook call ended: its HTTP status (`"error"` when none came back) and its duration. */
  webhookCall(code: string, seconds: number): void;
  /** An SSE delivery stream opened (+1) or closed (−1). */
  sseStreams(delta: 1 | -1): void;
  /** Delivery lateness (seconds) per bucket, over every topic and transport: what the dashboard draws. */
  latenessTotals(): HistogramTotals;
  /** The exposition text. Reads the counts from the store at most once per cache period. */
  render(): Promise<string>;
}

/** Metrics wired to the engine's events. */
export function createMetrics(pitstop: Pitstop, options: MetricsOptions = {}): Metrics {
  const now = options.now ?? (() => pitstop.now());
  const cacheMs = options.countsCacheMs ?? 5000;
  const registry = new Registry();
  const messages = registry.add(new Scalar("pitstop_messages", "Messages by topic and state, from the store (cached a few seconds).", "gauge", ["topic", "state"]));
  const deliveries = registry.add(new Scalar("pitstop_deliveries_total", "Deliveries handed out by this process.", "counter", ["topic", "transport"]));
  const acks = registry.add(new Scalar("pitstop_acks_total", "Deliveries acked through this process.", "counter"));
  const nacks = registry.add(new Scalar("pitstop_nacks_total", "Deliveries nacked through this process.", "counter"));
  const expired = registry.add(new Scalar("pitstop_expired_total", "Locks held by this process's listeners that expired without an ack or nack.", "counter"));
  const dead = registry.add(new Scalar("pitstop_dead_total", "Messages that became dead letters in this process.", "counter"));
  const lateness = registry.add(new Histogram("pitstop_delivery_lateness_seconds", "Emit time minus scheduled time of each delivery.", LATENESS_BUCKETS, ["topic", "transport"]));
  const webhook = registry.add(new Histogram("pitstop_webhook_duration_seconds", "Duration of webhook calls by HTTP status.", WEBHOOK_BUCKETS, ["code"]));
  const streams = registry.add(new Scalar("pitstop_sse_streams", "Open SSE delivery streams in this process.", "gauge"));
  const storeErrors = registry.add(new Scalar("pitstop_store_errors_total", "Store calls that failed.", "counter"));
  streams.set({}, 0);

  pitstop.addEventListener("lateness", ({ detail }) => {
    const labels = { topic: detail.topic, transport: detail.transport };
    deliveries.inc(labels);
    lateness.observe(labels, detail.lateMs / 1000);
  });
  pitstop.addEventListener("acked", () => acks.inc());
  pitstop.addEventListener("nacked", () => nacks.inc());
  pitstop.addEventListener("expired", () => expired.inc());
  pitstop.addEventListener("dead", () => dead.inc());
  pitstop.addEventListener("store-error", () => storeErrors.inc());

  let countsReadAt = -Infinity;
  let reading: Promise<void> | undefined;
  // A store that does not answer keeps the last counts (its errors are counted), so a scrape
  // still shows the counters; it is asked again after the cache period.
  const readCounts = async () => {
    const topics = await pitstop.topics().catch(() => undefined);
    countsReadAt = now();
    if (!topics) return;
    messages.reset();
    for (const t of topics) for (const [state, n] of Object.entries(t.counts)) messages.set({ topic: t.name, state }, n);
  };

  return {
    webhookCall: (code, seconds) => webhook.observe({ code }, seconds),
    sseStreams: (delta) => streams.inc({}, delta),
    latenessTotals: () => lateness.totals(),
    async render() {
      if (now() - countsReadAt >= cacheMs) {
        reading ??= readCounts().finally(() => (reading = undefined));
        await reading;
      }
      return registry.render();
    },
  };
}
