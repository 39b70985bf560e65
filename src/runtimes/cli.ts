#!/usr/bin/env node
// The `pitstop` command (`npx pitstop-edge`, `npm start`): the Node server, configured by the
// environment. `--help` lists the variables from the configuration's own schema.
import { configVariables } from "./config.ts";
import { startServer } from "./node.ts";

function help(): string {
  const variables = configVariables();
  const width = Math.max(...variables.map((v) => v.name.length)) + 2;
  const lines = variables.map((v) => `  ${v.name.padEnd(width)}${v.description}${v.default === undefined ? "" : ` (default: ${v.default})`}`);
  return ["Usage: pitstop [--help]", "", "Starts the pitstop server on Node, configured by these environment variables:", "", ...lines, "", "Durations are ISO-8601 (PT30S, PT15M) or milliseconds.", ""].join("\n");
}

function fail(message: string, code = 1): never {
  console.error(`pitstop: ${message}`);
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(help());
  process.exit(0);
}
if (args.length > 0) fail(`unknown argument "${args[0]}": pitstop takes its configuration from environment variables (pitstop --help lists them)`, 2);

const server = await startServer(process.env).catch((error: Error) => fail(error.message));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void server.close(signal).then(() => process.exit(0)));
}
