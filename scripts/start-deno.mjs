// `npm run start:deno`: runs pitstop on Deno (fetched with npx from the npm registry) and passes
// SIGINT and SIGTERM on to it. Started through npx alone, Deno outlived a SIGTERM sent to npm.
// The Deno version and its arguments live in package.json ("config"), where the tests read them.
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";

const root = new URL("..", import.meta.url);
const { deno, denoArgs } = JSON.parse(readFileSync(new URL("package.json", root), "utf8")).config;

const { stdout } = await promisify(execFile)("npx", ["-y", deno, "eval", "console.log(Deno.execPath())"], {
  cwd: root,
  env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
}).catch((error) => {
  console.error(`pitstop: cannot fetch ${deno} with npx: ${error.message.split("\n")[0]}`);
  process.exit(1);
});
const child = spawn(stdout.trim().split("\n").at(-1), denoArgs.split(" "), { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
