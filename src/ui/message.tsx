import type { MessageView } from "../engine/index.ts";
import { MessageActions } from "./actions.tsx";
import { formatMs, relativeTime } from "./format.ts";

function Schedule(props: { m: MessageView }) {
  const { m } = props;
  const rule = m.cron ? `cron ${m.cron}` : m.interval ? `every ${m.interval}` : "once";
  return (
    <>
      <dt>Schedule</dt>
      <dd>
        {rule}
        {m.tz && ` · ${m.tz}`}
        {m.missed && ` · missed: ${m.missed}`}
        {m.end && ` · until ${m.end}`}
      </dd>
      <dt>Next due</dt>
      <dd>{m.at}</dd>
      {m.upcoming && (
        <>
          <dt>Upcoming</dt>
          <dd>{m.upcoming.join(", ")}</dd>
        </>
      )}
    </>
  );
}

function Delivery(props: { m: MessageView; now: number }) {
  const d = props.m.lastDelivery;
  if (!d) return null;
  return (
    <>
      <dt>Last delivery</dt>
      <dd>
        attempt {d.attempt} at {d.emittedAt} ({relativeTime(d.emittedAt, props.now)}), {formatMs(d.lateMs)} late{d.consumer && `, to ${d.consumer}`}
      </dd>
    </>
  );
}

/** One message: body, schedule, upcoming occurrences, attempts, last error and last delivery. */
export function MessageDetail(props: { m: MessageView; now: number }) {
  const { m } = props;
  return (
    <section id="message" data-id={m.id}>
      <h2>
        Message {m.id} {m.state === "dead" && <MessageActions id={m.id} />}
      </h2>
      <dl>
        <dt>State</dt>
        <dd class={m.state === "dead" ? "bad" : ""}>
          {m.state}
          {m.lockedBy && ` by ${m.lockedBy}`}
          {m.lockedUntil && ` until ${m.lockedUntil}`}
          {m.failedAt && ` since ${m.failedAt}`}
        </dd>
        <dt>Topic</dt>
        <dd>{m.callback ? `${m.topic}, webhook to ${m.callback}` : m.topic}</dd>
        <Schedule m={m} />
        <dt>Attempts</dt>
        <dd>
          {m.attempts}
          {m.maxAttempts !== undefined && ` of ${m.maxAttempts}`}
          {m.failures !== undefined && ` · ${m.failures} failed occurrences`}
        </dd>
        {m.lastError !== undefined && (
          <>
            <dt>Last error</dt>
            <dd class="error">{m.lastError}</dd>
          </>
        )}
        <Delivery m={m} now={props.now} />
      </dl>
      <h2>Body</h2>
      <pre>{JSON.stringify(m.message, null, 2)}</pre>
    </section>
  );
}
