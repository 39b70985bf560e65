import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { root, runServerToExit, startServerProcess, type ServerCommand, type ServerProcess } from "./server-process.ts";
/** The Deno version and arguments `npm run start:deno` uses (package.json "config"). */
const { deno: DENO, denoArgs: DENO_ARGS }: { deno: string; denoArgs: string } = JSON.parse(readFileSync(`${root}/package.json`, "utf8")).config;

/**
 * The Deno binary `npx -y deno@2.9.6` runs (fetched from the npm registry on first use), or why
 * there is none. Tests spawn the binary itself so signals reach Deno rather than npx.
 */
export async function findDeno(timeoutMs = 170_000): Promise<{ path: string } | { reason: string }> {
  try {
    const { stdout } = await promisify(execFile)("npx", ["-y", DENO, "eval", "console.log(Deno.execPath())"], {
      cwd: root,
      timeout: timeoutMs,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
    });
    return { path: stdout.trim().split("\n").at(-1)! };
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    // npm's first error lines say what failed (code, then message); Deno's own error is its last line.
    const lines = (stderr || message).split("\n").filter((line) => line.trim() && !/npm warn/i.test(line));
    const npmErrors = lines.filter((line) => /^npm error (code|[A-Za-z]*Error)\b/.test(line));
    const detail = npmErrors.length > 0 ? npmErrors.slice(0, 2) : lines.slice(-2);
    return { reason: `npx -y ${DENO} cannot run here: ${detail.join(" | ")}` };
  }
}

/** A pitstop Deno server started as `npm run start:deno` would, on a free port. */
export type DenoServer = ServerProcess;

/** `npm run start:deno`'s Deno arguments (so tests start Deno exactly so), `flags` put after its `run`. */
const denoServer = (deno: string, env: Record<string, string>, flags: string[] = []): ServerCommand => ({
  command: deno,
  args: DENO_ARGS.split(" ").flatMap((arg, i) => (i === 0 ? [arg, ...flags] : [arg])),
  env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
});

/** Runs `src/runtimes/deno.ts` with `env` (and `flags` after `run`, e.g. more permissions) and waits for its "listening on" line. */
export function startDenoServer(deno: string, env: Record<string, string>, timeoutMs = 60_000, flags: string[] = []): Promise<DenoServer> {
  return startServerProcess(denoServer(deno, env, flags), timeoutMs);
}

/** Runs the Deno runtime expecting it to fail at start; resolves with its exit code and output. */
export function runDenoToExit(deno: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return runServerToExit(denoServer(deno, env));
}
