const root = process.argv[2];
const before = root.includes("before");
const { createPitstop } = await import(`${root}/src/${before ? "pitstop.ts" : "index.ts"}`);
for (let round = 0; round < 5; round++) {
  const p = createPitstop();
  for (let i = 0; i < 5000; i++) await p.store({ id: `due-${i}` }, 0);
  const t = performance.now();
  for (let i = 0; i < 5000; i++) {
    const [d] = before ? await p.claimDue("topic:default", 1) : await p.claim({ limit: 1 });
    await d.ack();
  }
  if (round >= 3) console.log(`${root.split("/").pop()} claim+ack ${(((performance.now() - t) * 1000) / 5000).toFixed(2)} µs`);
}
