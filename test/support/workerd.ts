import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wranglerCli = join(root, "node_modules/wrangler/bin/wrangler.js");

/** The worker as `wrangler deploy` would upload it. */
export interface WorkerBundle {
  dir: string;
  /** The bundled entry module. */
  scriptPath: string;
  bytes: number;
  gzipBytes: number;
  /** esbuild's metafile: which inputs make up the bundle. */
  metafile: { outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }> };
  remove(): Promise<void>;
}

/** What {@link bundleWorker} bundles. */
export interface BundleOptions {
  /** Output directory. @default a fresh temporary directory */
  outdir?: string;
  /** The wrangler configuration, relative to the repository. @default "wrangler.toml" */
  config?: string;
}

/** Bundles a wrangler configuration's worker with `wrangler deploy --dry-run`. */
export async function bundleWorker(options: BundleOptions = {}): Promise<WorkerBundle> {
  const dir = options.outdir ?? (await mkdtemp(join(tmpdir(), "pitstop-worker-")));
  const config = options.config ?? "wrangler.toml";
  const metafilePath = join(dir, "meta.json");
  await promisify(execFile)(process.execPath, [wranglerCli, "deploy", "--dry-run", "--config", config, "--outdir", dir, "--metafile", metafilePath], {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
  });
  const metafile: WorkerBundle["metafile"] = JSON.parse(await readFile(metafilePath, "utf8"));
  const entry = Object.keys(metafile.outputs).find((name) => name.endsWith(".js"))!;
  const scriptPath = join(dir, basename(entry));
  const script = await readFile(scriptPath);
  return {
    dir,
    scriptPath,
    bytes: script.byteLength,
    gzipBytes: gzipSync(script).byteLength,
    metafile,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A bundled worker running in workerd under Miniflare, with wrangler.toml's date, flags and vars. */
export interface WorkerdServer {
  url: string;
  mf: Miniflare;
  /** Runs the worker's `scheduled` handler once, as its cron would. */
  scheduled(): Promise<{ outcome: string }>;
  stop(): Promise<void>;
}

/** How {@link startWorkerd} runs a bundle. */
export interface StartOptions {
  /** The wrangler configuration the bundle was made from. @default "wrangler.toml" */
  config?: string;
  /** A directory that keeps the Durable Objects' storage (and alarms) across restarts; in memory without it. */
  persistDir?: string;
}

/**
 * Starts the bundle with its configuration's date, flags, vars and Durable Objects; `vars`
 * override the [vars] (secrets go here too).
 */
export async function startWorkerd(bundle: WorkerBundle, vars: Record<string, string>, options: StartOptions = {}): Promise<WorkerdServer> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, options.config ?? "wrangler.toml"));
  const mf = new Miniflare({
    modules: true,
    scriptPath: bundle.scriptPath,
    modulesRoot: bundle.dir,
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    bindings: { ...workerOptions.bindings, ...vars },
    durableObjects: workerOptions.durableObjects,
    durableObjectsPersist: options.persistDir ?? false,
    host: "127.0.0.1",
    port: 0,
    // No request to workers.cloudflare.com for a real `request.cf`: the worker reads none.
    cf: false,
  });
  const url = (await mf.ready).origin;
  return {
    url,
    mf,
    async scheduled() {
      // Typed by hand: miniflare types its Fetcher with @cloudflare/workers-types, which this project does not load.
      const worker = (await mf.getWorker()) as unknown as { scheduled(options: { cron: string; scheduledTime: Date }): Promise<{ outcome: string }> };
      return worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    },
    stop: () => mf.dispose(),
  };
}
