import { DeadLetters } from "./dead.tsx";
import { LatenessHistogram } from "./histogram.tsx";
import type { Snapshot } from "./snapshot.ts";
import { NextDue, Timeline } from "./timeline.tsx";
import { TopicsTable } from "./topics.tsx";

/** The live part of the dashboard: what the stats stream re-sends on every change. */
export function Panels(props: { snapshot: Snapshot }) {
  const s = props.snapshot;
  return (
    <>
      <section>
        <h2>Topics</h2>
        <TopicsTable topics={s.topics} hidden={s.hiddenTopics} />
      </section>
      <section>
        <h2>Due in the next hour</h2>
        <Timeline due={s.due} now={s.now} />
        <NextDue due={s.due} now={s.now} limit={10} />
      </section>
      <section>
        <h2>Delivery lateness</h2>
        <LatenessHistogram totals={s.lateness} />
      </section>
      <section>
        <h2>Dead letters</h2>
        <DeadLetters dead={s.dead} now={s.now} />
      </section>
    </>
  );
}
