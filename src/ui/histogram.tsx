import type { HistogramTotals } from "../metrics/index.ts";
import { formatBound } from "./format.ts";

const BAR = 48;
const HEIGHT = 120;

/** Delivery lateness per bucket (this process's deliveries since it started), as SVG bars. */
export function LatenessHistogram(props: { totals?: HistogramTotals }) {
  if (!props.totals) return <p class="empty">No metrics in this app.</p>;
  const { bounds, counts } = props.totals;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return <p class="empty">No deliveries yet.</p>;
  const top = Math.max(...counts);
  const labels = [...bounds.map((b) => `≤${formatBound(b)}`), `>${formatBound(bounds.at(-1)!)}`];
  const width = counts.length * BAR;
  return (
    <svg id="histogram" viewBox={`0 0 ${width} ${HEIGHT + 34}`} width={width} height={HEIGHT + 34} role="img" aria-label={`Lateness of ${total} deliveries`}>
      {counts.map((n, i) => {
        const h = n === 0 ? 0 : Math.max(2, (n / top) * HEIGHT);
        return (
          <g class="bar">
            <rect x={i * BAR + 4} y={HEIGHT + 14 - h} width={BAR - 8} height={h}>
              <title>{`${labels[i]}: ${n}`}</title>
            </rect>
            {n > 0 && (
              <text x={i * BAR + BAR / 2} y={HEIGHT + 10 - h} text-anchor="middle">{n}</text>
            )}
            <text class="bound" x={i * BAR + BAR / 2} y={HEIGHT + 28} text-anchor="middle">{labels[i]}</text>
          </g>
        );
      })}
    </svg>
  );
}
