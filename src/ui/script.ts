import { CSRF_HEADER } from "../http/auth.ts";

/**
 * The dashboard's one script, inline (with the page's CSP nonce): it swaps in the live panels the
 * stats stream sends, and turns `data-method` buttons into API calls with the CSRF header.
 */
export const SCRIPT = `
const live = document.getElementById("live");
const badge = document.getElementById("status");
if (live) {
  const stream = new EventSource("/ui/stream");
  stream.addEventListener("panels", (e) => { live.innerHTML = e.data; });
  stream.onopen = () => { badge.textContent = "live"; badge.className = "ok"; };
  stream.onerror = () => { badge.textContent = "reconnecting…"; badge.className = "bad"; };
}
document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-method]");
  if (!button || (button.dataset.confirm && !confirm(button.dataset.confirm))) return;
  button.disabled = true;
  const response = await fetch(button.dataset.url, { method: button.dataset.method, headers: { "${CSRF_HEADER}": "1" } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    alert(body.message || "HTTP " + response.status);
    button.disabled = false;
  } else if (!live) {
    location.reload();
  }
});
`;
