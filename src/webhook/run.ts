import type { Delivery, Listener, Pitstop } from "../engine/index.ts";
import { consoleLogger } from "../log.ts";
import { reportTo, webhookDeliverer, type WebhookOptions, type WebhookOutcome } from "./deliver.ts";

/** Consumer name the webhook runners claim with, shown as `lockedBy`. */
const CONSUMER = "webhooks";

/** Options of {@link tickWebhooks}. */
export interface TickOptions extends WebhookOptions {
  /** Most messages claimed by one call; the rest wait for the next. @default 500 */
  maxMessages?: number;
}

/** Counts of one {@link tickWebhooks} call. */
export type TickResult = Record<WebhookOutcome, number>;

/** A running {@link startWebhookLoop}. */
export interface WebhookLoop {
  /** Stops claiming, waits for the requests in flight (each bounded by the timeout), releases the rest. */
  stop(): Promise<void>;
}

/**
 * Delivers the due webhook messages once, for runtimes that cannot keep a loop (Workers
 * `scheduled`): claims in batches of `concurrency`, at most `maxMessages` in all, and POSTs them
 * with at most `concurrency` requests in flight. Resolves when every claimed one is settled.
 * @throws what the store threw on a claim, after the messages already claimed are delivered.
 */
export async function tickWebhooks(pitstop: Pitstop, options: TickOptions = {}): Promise<TickResult> {
  const deliver = webhookDeliverer(pitstop, options);
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const maxMessages = options.maxMessages ?? 500;
  const counts: TickResult = { delivered: 0, failed: 0, removed: 0 };
  const queue: Delivery[] = [];
  let claimed = 0;
  let exhausted = maxMessages <= 0;
  let claimError: { error: unknown } | undefined;
  let refilling: Promise<void> | undefined;

  const refill = () =>
    (refilling ??= (async () => {
      try {
        const batch = await pitstop.claim({ webhooks: true, consumer: CONSUMER, limit: Math.min(concurrency, maxMessages - claimed) });
        claimed += batch.length;
        queue.push(...batch);
        exhausted = batch.length === 0 || claimed >= maxMessages;
      } catch (error) {
        claimError = { error };
        exhausted = true;
      } finally {
        refilling = undefined;
      }
    })());

  const worker = async () => {
    for (;;) {
      const delivery = queue.shift();
      if (delivery) counts[await deliver(delivery)]++;
      else if (exhausted) return;
      else await refill();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (claimError) throw claimError.error;
  return counts;
}

/**
 * Delivers webhook messages as they fall due, for long-lived runtimes (Node, Deno): one
 * `listen({ webhooks: true })` whose prefetch is the concurrency bound. A failing store is
 * reported to `onError` and listened to again after `retryDelayMs`.
 */
export function startWebhookLoop(pitstop: Pitstop, options: WebhookOptions & { retryDelayMs?: number } = {}): WebhookLoop {
  const deliver = webhookDeliverer(pitstop, options);
  const onError = options.onError ?? reportTo(options.log ?? consoleLogger);
  const inFlight = new Set<Promise<void>>();
  let listener: Listener | undefined;
  let stopping = false;
  let wakeDelay = () => {};

  const drain = async () => {
    while (inFlight.size > 0) await Promise.all(inFlight);
  };
  const start = (delivery: Delivery) => {
    const done: Promise<void> = deliver(delivery)
      .then(() => {}, (error: unknown) => onError(error, delivery))
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };

  const running = (async () => {
    while (!stopping) {
      const current = (listener = pitstop.listen({ webhooks: true, consumer: CONSUMER, prefetch: Math.max(1, options.concurrency ?? 16) }));
      try {
        const deliveries = current[Symbol.asyncIterator]();
        for (;;) {
          const next = await deliveries.next();
          // Done means the listener was stopped (by `stop()` or `pitstop.close()`): do not listen again.
          if (next.done || stopping) return;
          start(next.value);
        }
      } catch (error) {
        onError(error);
        await drain();
        await current.stop().catch(() => {});
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.retryDelayMs ?? 1000);
          wakeDelay = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wakeDelay();
      await drain();
      await listener?.stop();
      await running;
    },
  };
}
