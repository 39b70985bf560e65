import { Worker } from "node:worker_threads";

/**
 * A worker thread running the TypeScript module at `module`. Worker threads do not inherit tsx's
 * loader on Node 20, so the worker registers it first.
 */
export function tsWorker(module: URL, workerData?: unknown): Worker {
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
