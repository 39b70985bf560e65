import type { TopicView } from "../engine/index.ts";
import { TopicActions } from "./actions.tsx";
import { formatMs } from "./format.ts";

function Policy(props: { topic: TopicView }) {
  const { maxAttempts, lockTime, backoff, ordered } = props.topic.policy;
  return (
    <span class="policy">
      {maxAttempts} {maxAttempts === 1 ? "attempt" : "attempts"} · lock {lockTime} · backoff {backoff.base}×{backoff.factor}≤{backoff.max}
      {ordered ? " · ordered" : ""}
    </span>
  );
}

/** Every topic: counts by state, lateness p50/p99 (this process's), policy, dead-letter actions. */
export function TopicsTable(props: { topics: TopicView[]; hidden: number }) {
  if (props.topics.length === 0) return <p class="empty">No topics yet: store a message.</p>;
  return (
    <table id="topics">
      <thead>
        <tr>
          <th>Topic</th>
          <th class="num">Pending</th>
          <th class="num">Locked</th>
          <th class="num">Dead</th>
          <th class="num">p50</th>
          <th class="num">p99</th>
          <th>Policy</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.topics.map((t) => (
          <tr data-topic={t.name}>
            <td>{t.name}</td>
            <td class="num" data-state="pending">{t.counts.pending}</td>
            <td class="num" data-state="locked">{t.counts.locked}</td>
            <td class={t.counts.dead > 0 ? "num bad" : "num"} data-state="dead">{t.counts.dead}</td>
            <td class="num">{t.lateness ? formatMs(t.lateness.p50) : "–"}</td>
            <td class="num">{t.lateness ? formatMs(t.lateness.p99) : "–"}</td>
            <td>
              <Policy topic={t} />
            </td>
            <td>{t.counts.dead > 0 && <TopicActions topic={t.name} />}</td>
          </tr>
        ))}
      </tbody>
      {props.hidden > 0 && <caption>and {props.hidden} more topics, not shown</caption>}
    </table>
  );
}
