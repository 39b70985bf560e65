/**
 * Lanes are how the engine partitions records for claims: callback messages share the `webhook`
 * lane, the others get one lane per topic. They are private to the engine; stores see them as
 * opaque keys (`StoredMessage.lane`).
 */
const topicLanes = new Map<string, string>();

export const WEBHOOK_LANE = "webhook";

/** Lane of a record. */
export function laneOf(topic: string, callback?: string): string {
  if (callback) return WEBHOOK_LANE;
  // One string per topic, not one per message: a million pending messages share a few lanes.
  let lane = topicLanes.get(topic);
  if (lane === undefined) {
    lane = `topic:${topic}`;
    if (topicLanes.size < 10_000) topicLanes.set(topic, lane);
  }
  return lane;
}

/** Where a topic's dead messages (listener and webhook ones alike) wait for a redrive. */
export function deadLaneOf(topic: string): string {
  return `dead:${topic}`;
}

/** The topic of a `topic:<name>` or `dead:<name>` lane; undefined for the webhook lane. */
export function topicOfLane(lane: string): { topic: string; dead: boolean } | undefined {
  if (lane.startsWith("topic:")) return { topic: lane.slice(6), dead: false };
  if (lane.startsWith("dead:")) return { topic: lane.slice(5), dead: true };
  return undefined;
}
