import type { Child } from "hono/jsx";
import { SCRIPT } from "./script.ts";

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2430; --muted: #6b7280; --line: #d9dee7; --bg: #f7f8fa; --card: #fff; --accent: #2f6fde; --bad: #c2352b; --ok: #1f8a4c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e4e7ec; --muted: #9aa3b2; --line: #333b47; --bg: #15181d; --card: #1d2129; --accent: #6aa1ff; --bad: #ff7b72; --ok: #56d48a; } }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.1rem; margin: 0; } header a { color: inherit; text-decoration: none; }
header form { margin-left: auto; }
main { padding: 0 1.5rem 2rem; max-width: 1100px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem 1rem; margin-top: 1rem; overflow-x: auto; }
h2 { font-size: .95rem; margin: .3rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; margin-top: .4rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; } .policy { white-space: nowrap; }
.bad, .error { color: var(--bad); } .ok { color: var(--ok); } .empty, .policy, caption { color: var(--muted); }
a { color: var(--accent); }
button { font: inherit; font-size: .8rem; padding: .15rem .6rem; border: 1px solid var(--line); border-radius: 4px; background: var(--card); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); } button.danger:hover { border-color: var(--bad); color: var(--bad); }
.actions { display: inline-flex; gap: .4rem; white-space: nowrap; }
svg text { fill: var(--muted); font-size: 11px; } svg .lane text { fill: var(--fg); }
svg .axis line { stroke: var(--line); } svg rect { fill: var(--accent); }
pre { background: var(--bg); padding: .6rem; border-radius: 4px; overflow-x: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; } dt { color: var(--muted); } dd { margin: 0; }
input { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--card); color: var(--fg); }
`;

/** The HTML shell of every dashboard page: styles, header, and the script (with the CSP nonce). */
export function Page(props: { title: string; nonce?: string; loggedIn?: boolean; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title}</title>
        <style dangerouslySetInnerHTML={{ __html: STYLE }} />
      </head>
      <body>
        <header>
          <h1>
            <a href="/ui">pitstop</a>
          </h1>
          <span id="status" />
          {props.loggedIn && (
            <form method="post" action="/ui/logout">
              <button type="submit">Log out</button>
            </form>
          )}
        </header>
        <main>{props.children}</main>
        <script nonce={props.nonce} dangerouslySetInnerHTML={{ __html: SCRIPT }} />
      </body>
    </html>
  );
}
