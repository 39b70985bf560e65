/**
 * `npm run bundle-size`
 *
 * Bundles the worker as `wrangler deploy` would (`wrangler deploy --dry-run --outdir .wrangler/bundle`),
 * prints its size raw and gzipped (Cloudflare's limit is 3 MB gzipped on the free plan, 10 MB
 * paid), the largest packages in it, how long it takes to start in the local workerd, and its size
 * without the MongoDB driver (what a Worker on the Durable Object store alone would need).
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { jsonClient } from "../test/support/http.ts";
import { bundleWorker, startWorkerd } from "../test/support/workerd.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

const bundle = await bundleWorker({ outdir: join(root, ".wrangler/bundle") });
console.log(relative(root, bundle.scriptPath));
console.log(`  raw  ${kib(bundle.bytes)}`);
console.log(`  gzip ${kib(bundle.gzipBytes)}`);

const [, output] = Object.entries(bundle.metafile.outputs).find(([name]) => name.endsWith("workers.js"))!;
const byPackage = new Map<string, number>();
for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
  const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? (input.startsWith("src/") ? "pitstop (src)" : input);
  byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
}
console.log("largest parts (raw):");
for (const [name, bytes] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 6)) {
  console.log(`  ${name.padEnd(24)} ${kib(bytes).padStart(10)}`);
}

// The MongoDB store imports its driver lazily, so a stub in its place (an [alias] in a copy
// of wrangler.toml: wrangler 4.86's `deploy --alias` is ignored) leaves the rest intact.
const noMongoConfig = "wrangler.no-mongodb.tmp.toml";
const toml = await readFile(join(root, "wrangler.toml"), "utf8");
await writeFile(join(root, noMongoConfig), `${toml}\n[alias]\n"mongodb" = "./scripts/no-driver-stub.ts"\n`);
try {
  const withoutMongo = await bundleWorker({ config: noMongoConfig });
  console.log(`without the MongoDB driver: raw ${kib(withoutMongo.bytes)}, gzip ${kib(withoutMongo.gzipBytes)}`);
  await withoutMongo.remove();
} finally {
  await rm(join(root, noMongoConfig));
}

let started = performance.now();
const server = await startWorkerd(bundle, {});
const readyMs = performance.now() - started;
started = performance.now();
await jsonClient(server.url)("GET", "/health");
const firstMs = performance.now() - started;
await server.stop();
console.log(`workerd start ${readyMs.toFixed(0)} ms, first request ${firstMs.toFixed(0)} ms (local, not Cloudflare's edge)`);
