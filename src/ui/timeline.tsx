import type { MessageView } from "../engine/index.ts";
import { messageHref, relativeTime } from "./format.ts";
import { HORIZON_MS, type DueLane } from "./snapshot.ts";

const LABEL = 140;
const WIDTH = 720;
const ROW = 22;
const MINUTES = [0, 15, 30, 45, 60];

/** One mark per message due within the hour, a row per topic (and one for webhooks). */
export function Timeline(props: { due: DueLane[]; now: number }) {
  if (props.due.length === 0) return <p class="empty">Nothing falls due in the next hour.</p>;
  const plot = WIDTH - LABEL - 30;
  const x = (time: string) => LABEL + Math.max(0, Math.min(1, (Date.parse(time) - props.now) / HORIZON_MS)) * plot;
  const height = props.due.length * ROW + 18;
  return (
    <svg id="timeline" viewBox={`0 0 ${WIDTH} ${height}`} width={WIDTH} height={height} role="img" aria-label="Messages due in the next hour by topic">
      {MINUTES.map((m) => (
        <g class="axis">
          <line x1={LABEL + (m / 60) * plot} x2={LABEL + (m / 60) * plot} y1={0} y2={height - 16} />
          <text x={LABEL + (m / 60) * plot} y={height - 4} text-anchor="middle">{m === 0 ? "now" : `+${m} min`}</text>
        </g>
      ))}
      {props.due.map((lane, row) => (
        <g class="lane" data-lane={lane.name}>
          <text x={LABEL - 8} y={row * ROW + 15} text-anchor="end">
            {lane.name} ({lane.items.length}{lane.more ? "+" : ""})
          </text>
          {lane.items.map((m) => (
            <rect x={x(m.at) - 1.5} y={row * ROW + 4} width={3} height={ROW - 8}>
              <title>{`${m.id} ${m.at}`}</title>
            </rect>
          ))}
        </g>
      ))}
    </svg>
  );
}

/** The soonest messages due within the hour, over every lane, each linking to its detail. */
export function NextDue(props: { due: DueLane[]; now: number; limit: number }) {
  const soonest: MessageView[] = props.due
    .flatMap((lane) => lane.items)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
    .slice(0, props.limit);
  if (soonest.length === 0) return null;
  return (
    <table id="next">
      <thead>
        <tr>
          <th>Message</th>
          <th>Topic</th>
          <th>Due</th>
          <th>State</th>
          <th class="num">Attempts</th>
        </tr>
      </thead>
      <tbody>
        {soonest.map((m) => (
          <tr data-id={m.id}>
            <td>
              <a href={messageHref(m.id)}>{m.id}</a>
            </td>
            <td>{m.callback ? `${m.topic} (webhook)` : m.topic}</td>
            <td title={m.at}>{relativeTime(m.at, props.now)}</td>
            <td class="state">{m.state}</td>
            <td class="num">{m.attempts}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
