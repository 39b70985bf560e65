import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { configVariables } from "../src/runtimes/config.ts";
import { root, runServerToExit, startServerProcess } from "./support/server-process.ts";

/**
 * The package as a new user gets it: `npm pack`, then a fresh project installs the tarball (its
 * dependencies from the registry) and uses it from plain Node, from a strict TypeScript project,
 * and through `npx pitstop`.
 */

const run = promisify(execFile);
/** The environment of the npm and node commands run here, without what `npm test` adds for its own script. */
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_")));
const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  const result = await step();
  console.log(`[package] ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

/** A Node script as a user would write it: store a message due now, listen, ack it; then serve. */
const nodeScript = `
import { createPitstop } from "pitstop-edge";
import { startServer } from "pitstop-edge/node";
const pitstop = createPitstop();
await pitstop.store({ id: "hello", text: "hi" }, Date.now());
let acked;
for await (const delivery of pitstop.listen()) {
  await delivery.ack();
  acked = { id: delivery.id, message: delivery.message, after: await pitstop.get("hello") ?? null };
  break;
}
await pitstop.close();
const server = await startServer({ PORT: "0", PITSTOP_LOG_LEVEL: "warn" });
const health = await fetch(server.url + "/health");
await server.close();
console.log(JSON.stringify({ acked, health: health.status }));
`;

/** A strict TypeScript consumer of every entry point (the runtimes' only type-checked, never run). */
const consumerSource = `
import { createApp, createPitstop, memoryStore, PitstopError, type Delivery, type MessageView } from "pitstop-edge";
import { createClient, PitstopClientError, type ClientDelivery } from "pitstop-edge/client";
import worker from "pitstop-edge/workers";
import { startServer as startNode, type NodeServer } from "pitstop-edge/node";
import { startServer as startDeno } from "pitstop-edge/deno";

const pitstop = createPitstop({ store: memoryStore(), lockTime: "PT1M" });
// @ts-expect-error the types are real, not any: lockTime takes a duration
createPitstop({ lockTime: true });
const app = createApp(pitstop, { token: "secret", corsOrigins: ["https://app.example.com"] });
const stored = await pitstop.schedule({ message: { id: "a", n: 1 }, cron: "0 9 * * MON-FRI", tz: "Europe/Berlin" });
const view: MessageView | null | undefined = await pitstop.get(stored.id);
const handle = async (delivery: Delivery | ClientDelivery): Promise<void> => {
  const first: string | undefined = Object.keys(delivery.message)[0];
  if (first === undefined) await delivery.nack({ error: "empty", retryIn: "PT30S" });
  else await delivery.ack();
};
for await (const delivery of pitstop.listen({ topic: "default", prefetch: 10 })) await handle(delivery);

const client = createClient({ baseUrl: "http://127.0.0.1:8787", token: "secret" });
await client.schedule({ message: { text: "hi" }, at: new Date().toISOString(), topic: "emails" });
const page = await client.list({ topic: "emails", limit: 10 });
const next: string | null = page.next;
for await (const delivery of client.listen({ topic: "emails", signal: AbortSignal.timeout(1000) })) await handle(delivery);
try {
  await client.ack("a", "token");
} catch (error) {
  if (error instanceof PitstopClientError) console.log(error.code, error.status);
  if (error instanceof PitstopError) console.log(error.code);
}
const response: Response = await worker.fetch(new Request("http://localhost/health"), {}, { waitUntil: () => {} });
const starters: ((env: Record<string, string | undefined>) => Promise<{ url: string; close(): Promise<void> }>)[] = [startNode, startDeno];
const server: NodeServer | undefined = undefined;
console.log(app.fetch, view, next, response.status, starters, server);
`;

const consumerTsconfig = {
  compilerOptions: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2022",
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noEmit: true,
  },
  files: ["consumer.ts"],
};

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

describe("the packed package, installed in a fresh project", () => {
  let dir: string;
  let project: string;
  let packed: PackResult;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pitstop-package-"));
    project = join(dir, "consumer");
    const { stdout } = await timed("npm pack (builds dist/ through prepare)", () =>
      run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root, env, timeout: 280_000, maxBuffer: 1 << 24 }),
    );
    packed = (JSON.parse(stdout) as PackResult[])[0]!;
    console.log(`[package] ${packed.filename}: ${(packed.size / 1024).toFixed(1)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(1)} KiB unpacked, ${packed.files.length} files`);
    await mkdir(project);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    await timed("npm install of the tarball", () =>
      run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, packed.filename)], { cwd: project, env, timeout: 280_000 }),
    );
  }, 600_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("ships dist/, README and LICENSE only (no sources, tests, scripts or CI files)", () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths.filter((path) => !/^(dist\/.*\.(js|d\.ts|js\.map)|package\.json|README\.md|LICENSE)$/.test(path))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(["LICENSE", "README.md", "dist/index.js", "dist/index.d.ts", "dist/runtimes/cli.js"]));
  });

  it("installs only the run-time dependencies: no tsx, esbuild, MongoDB driver or better-sqlite3", async () => {
    const installed = await readdir(join(project, "node_modules"));
    console.log(`[package] installed: ${installed.filter((name) => !name.startsWith(".")).join(", ")}`);
    expect(installed).toContain("pitstop-edge");
    for (const absent of ["tsx", "esbuild", "mongodb", "better-sqlite3", "typescript"]) expect(installed).not.toContain(absent);
  });

  it("plain node imports it, stores a message due now, listens and acks it", async () => {
    await writeFile(join(project, "store-listen-ack.mjs"), nodeScript);
    const { stdout } = await run(process.execPath, ["store-listen-ack.mjs"], { cwd: project, env, timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual({ acked: { id: "hello", message: { id: "hello", text: "hi" }, after: null }, health: 200 });
  }, 90_000);

  it("a strict TypeScript consumer (NodeNext, exactOptionalPropertyTypes, noUncheckedIndexedAccess, no skipLibCheck) type-checks with zero errors", async () => {
    await writeFile(join(project, "consumer.ts"), consumerSource);
    await writeFile(join(project, "tsconfig.json"), JSON.stringify(consumerTsconfig));
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const result = await timed("tsc of the strict consumer", () =>
      run(process.execPath, [tsc, "-p", "."], { cwd: project, env, timeout: 170_000 }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
      ),
    );
    expect(result).toEqual({ code: 0, stdout: "" });
  }, 200_000);

  it("`npx pitstop` serves /health on PORT, and stops on SIGTERM", async () => {
    const port = await freePort();
    // npx does not pass SIGTERM on to the server it starts: the test signals both (one process group).
    const server = await startServerProcess({ command: "npx", args: ["pitstop"], env: { PORT: String(port) }, cwd: project, group: true });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${port}`);
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
    } finally {
      await server.stop();
    }
    await vi.waitFor(() => expect(server.output()).toMatch(/SIGTERM, shutting down[\s\S]*stopped/), { timeout: 30_000, interval: 100 });
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  }, 90_000);

  it("`npx pitstop --help` and `npx pitstop-edge --help` list every variable the configuration reads and exit 0", async () => {
    for (const command of ["pitstop", "pitstop-edge"]) {
      const { stdout } = await run("npx", [command, "--help"], { cwd: project, env, timeout: 60_000 });
      expect(stdout).toMatch(/^Usage: pitstop/);
      for (const { name } of configVariables()) expect(stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    }
  }, 90_000);

  it("without the optional drivers, PITSTOP_STORE=mongodb or sqlite stops with one line saying what to install", async () => {
    const cases: { vars: Record<string, string>; line: string }[] = [
      { vars: { PITSTOP_STORE: "mongodb", MONGODB_URI: "mongodb://127.0.0.1:1" }, line: "pitstop: cannot open the mongodb store: install mongodb to use PITSTOP_STORE=mongodb" },
      { vars: { PITSTOP_STORE: "sqlite", PITSTOP_SQLITE_PATH: join(dir, "unused.db") }, line: "pitstop: cannot open the sqlite store: install better-sqlite3@12 to use PITSTOP_STORE=sqlite" },
    ];
    for (const { vars, line } of cases) {
      const { code, output } = await runServerToExit({ command: "npx", args: ["pitstop"], env: vars, cwd: project });
      expect({ code, output: output.trim() }).toEqual({ code: 1, output: line });
    }
  }, 90_000);

  // Last: it installs the MongoDB driver, which the checks above expect absent.
  it("a Worker whose main module re-exports `pitstop-edge/workers` bundles with wrangler once mongodb is installed", async () => {
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "mongodb@7"], { cwd: project, env, timeout: 170_000 });
    await writeFile(join(project, "worker.ts"), `export { default } from "pitstop-edge/workers";\n`);
    await writeFile(
      join(project, "wrangler.toml"),
      ['name = "consumer"', 'main = "worker.ts"', 'compatibility_date = "2026-04-26"', 'compatibility_flags = ["nodejs_compat", "enable_request_signal"]'].join("\n"),
    );
    const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
    const { stdout } = await timed("wrangler bundle of the consumer's Worker", () =>
      run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", join(dir, "worker")], { cwd: project, env: { ...env, WRANGLER_SEND_METRICS: "false" }, timeout: 170_000 }),
    );
    const size = /Total Upload: .*/.exec(stdout)?.[0];
    console.log(`[package] consumer Worker: ${size}`);
    expect(size).toBeDefined();
    expect(await readdir(join(dir, "worker"))).toContain("worker.js");
  }, 360_000);
});
