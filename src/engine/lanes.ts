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
