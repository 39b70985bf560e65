/**
 * A button the page's script turns into an API call (with the CSRF header), e.g. a redrive. The
 * live panels show the outcome with the next snapshot.
 */
function ActionButton(props: { method: "POST" | "DELETE"; url: string; label: string; confirm?: string }) {
  return (
    <button type="button" class={props.method === "DELETE" ? "danger" : ""} data-method={props.method} data-url={props.url} data-confirm={props.confirm}>
      {props.label}
    </button>
  );
}

const path = (kind: "messages" | "topics", name: string) => `/${kind}/${encodeURIComponent(name)}`;

/** Redrive and Delete of one dead letter. */
export function MessageActions(props: { id: string }) {
  return (
    <span class="actions">
      <ActionButton method="POST" url={`${path("messages", props.id)}/redrive`} label="Redrive" />
      <ActionButton method="DELETE" url={path("messages", props.id)} label="Delete" confirm={`Delete message "${props.id}" for good?`} />
    </span>
  );
}

/** Redrive and Delete of every dead letter of a topic. */
export function TopicActions(props: { topic: string }) {
  return (
    <span class="actions">
      <ActionButton method="POST" url={`${path("topics", props.topic)}/redrive`} label="Redrive all" />
      <ActionButton method="DELETE" url={`${path("topics", props.topic)}/dead`} label="Delete dead" confirm={`Delete every dead letter of topic "${props.topic}"?`} />
    </span>
  );
}
