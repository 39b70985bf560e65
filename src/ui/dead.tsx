import type { MessageView } from "../engine/index.ts";
import { MessageActions } from "./actions.tsx";
import { messageHref, relativeTime } from "./format.ts";

/** Dead letters with their last error, each with Redrive and Delete. */
export function DeadLetters(props: { dead: MessageView[]; now: number }) {
  if (props.dead.length === 0) return <p class="empty">No dead letters.</p>;
  return (
    <table id="dead">
      <thead>
        <tr>
          <th>Message</th>
          <th>Topic</th>
          <th>Died</th>
          <th class="num">Attempts</th>
          <th>Last error</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.dead.map((m) => (
          <tr data-id={m.id}>
            <td>
              <a href={messageHref(m.id)}>{m.id}</a>
            </td>
            <td>{m.topic}</td>
            <td title={m.failedAt}>{m.failedAt ? relativeTime(m.failedAt, props.now) : ""}</td>
            <td class="num">{m.attempts}</td>
            <td class="error">{m.lastError ?? ""}</td>
            <td>
              <MessageActions id={m.id} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
