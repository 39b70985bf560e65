const root = process.argv[2];
const { createApp } = await import(`${root}/src/${root.includes("before") ? "app.ts" : "http/app.ts"}`);
const { createPitstop } = await import(`${root}/src/${root.includes("before") ? "pitstop.ts" : "index.ts"}`);
const app = createApp(createPitstop());
const N = 20000;
const post = (i: number) => app.request("/messages", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message: { id: `m${i}`, n: i }, at: Date.now() + 3600_000 }) });
for (let i = 0; i < 2000; i++) await post(i);
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  for (let i = 0; i < N; i++) await post(i);
  console.log(`${root.split("/").pop()} POST /messages in-process: ${Math.round(N / ((performance.now() - t) / 1000))}/s`);
}
