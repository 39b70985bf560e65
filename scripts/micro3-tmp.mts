const root = process.argv[2];
const before = root.includes("before");
const { createApp } = await import(`${root}/src/${before ? "app.ts" : "http/app.ts"}`);
const { createPitstop } = await import(`${root}/src/${before ? "pitstop.ts" : "index.ts"}`);
const N = 20000;
for (let round = 0; round < 3; round++) {
  const p = createPitstop();
  const app = createApp(p);
  for (let i = 0; i < N; i++) await p.store({ id: `m${i}`, n: i });
  const t = performance.now();
  const controller = new AbortController();
  const res = await app.request("/events", { signal: controller.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let acked = 0;
  let pending: { id: string; token: string }[] = [];
  let inFlight: Promise<unknown> | undefined;
  const flush = () => {
    if (inFlight || pending.length === 0) return;
    const acks = pending; pending = [];
    inFlight = app.request("/acks", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ acks }) })
      .then((r: Response) => r.json()).then((b: { acked: number }) => { acked += b.acked; inFlight = undefined; flush(); });
  };
  let seen = 0;
  while (seen < N) {
    const { value } = await reader.read();
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const m = /data: (.*)/.exec(frame);
      if (!m) continue;
      const d = JSON.parse(m[1]); seen++;
      pending.push({ id: d.id, token: d.token });
    }
    flush();
  }
  while (acked < N) { flush(); await (inFlight ?? new Promise((r) => setTimeout(r, 1))); }
  console.log(`${root.split("/").pop()} in-process SSE drain + /acks: ${Math.round(N / ((performance.now() - t) / 1000))}/s`);
  controller.abort();
  await p.close();
}
process.exit(0);
