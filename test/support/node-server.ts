import { runServerToExit, startServerProcess, type ServerCommand, type ServerProcess } from "./server-process.ts";

/** A pitstop Node server started from source as `npm start` starts it built, on a free port. */
export type NodeServer = ServerProcess;

const nodeServer = (env: Record<string, string>): ServerCommand => ({
  command: process.execPath,
  args: ["--import", "tsx", "src/runtimes/cli.ts"],
  env,
});

/** Runs the `pitstop` command (`src/runtimes/cli.ts`) with `env` and waits for its "listening on" line. */
export function startNodeServer(env: Record<string, string>, timeoutMs = 60_000): Promise<NodeServer> {
  return startServerProcess(nodeServer(env), timeoutMs);
}

/** Runs the Node runtime expecting it to fail at start; resolves with its exit code and output. */
export function runNodeServerToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return runServerToExit(nodeServer(env));
}
