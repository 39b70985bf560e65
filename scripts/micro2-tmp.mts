const root = process.argv[2];
const { createPitstop } = await import(`${root}/src/${root.includes("before") ? "pitstop.ts" : "index.ts"}`);
const p = createPitstop();
const N = 100000;
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  for (let i = 0; i < N; i++) await p.schedule({ message: { id: `m${i}`, n: i }, at: Date.now() + 3600_000 });
  console.log(`${root.split("/").pop()} schedule(): ${Math.round(N / ((performance.now() - t) / 1000))}/s`);
}
