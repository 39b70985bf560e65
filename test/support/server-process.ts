import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, where servers are started from. */
export const root = fileURLToPath(new URL("../..", import.meta.url));

/** A pitstop server running in a child process. */
export interface ServerProcess {
  url: string;
  process: ChildProcess;
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The command that starts a server: executable, arguments, and environment on top of ours. */
export interface ServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Where it runs. @default the repository root */
  cwd?: string;
  /**
   * Runs it in its own process group and signals the whole group, for a wrapper that does not
   * pass signals on to the server it starts (`npx`). @default false
   */
  group?: boolean;
}

function spawnServer({ command, args, env, cwd = root, group = false }: ServerCommand): ChildProcess {
  return spawn(command, args, {
    cwd,
    detached: group,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Signals a process group; one already gone (ESRCH) is no error, as `child.kill` says nothing then. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Starts a server and waits for its "listening on <url>" line. */
export function startServerProcess(server: ServerCommand, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawnServer(server);
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running behind the failed test.
      if (server.group) signalGroup(child.pid!, "SIGKILL");
      else child.kill("SIGKILL");
      reject(new Error(`${server.command} did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1],
          process: child,
          output: () => output,
          stop: (signal = "SIGTERM") => {
            if (server.group) signalGroup(child.pid!, signal);
            else child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${server.command} exited with ${code} before listening:\n${output}`));
    });
  });
}

/** Runs a server expecting it to fail at start; resolves with its exit code and output. */
export function runServerToExit(server: ServerCommand): Promise<{ code: number | null; output: string }> {
  const child = spawnServer(server);
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}
