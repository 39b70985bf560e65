/** Small text formats shared by the dashboard's components. */

/** A duration in ms as the dashboard prints it: `0.4 ms`, `12 ms`, `3.2 s`, `4 min`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** How far `time` (ISO-8601) is from `now`: `in 4 min`, `now`, `12 s ago`. */
export function relativeTime(time: string, now: number): string {
  const delta = Date.parse(time) - now;
  if (Math.abs(delta) < 1000) return "now";
  return delta > 0 ? `in ${formatMs(delta)}` : `${formatMs(-delta)} ago`;
}

/** A bucket bound in seconds as a label: `1ms`, `250ms`, `2.5s`. */
export function formatBound(seconds: number): string {
  return seconds < 1 ? `${Math.round(seconds * 10_000) / 10}ms` : `${seconds}s`;
}

/** A message's address under `/ui`. */
export const messageHref = (id: string) => `/ui/messages/${encodeURIComponent(id)}`;
