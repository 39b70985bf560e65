import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";

/**
 * Headless Debian Chromium driven by playwright-core (never a downloaded browser). `.ci/run`
 * installs the `chromium` package when it is missing; where it cannot be had, browser tests skip
 * and say why through {@link browserSkipReason}.
 */
export const chromiumPath = process.env.PITSTOP_CHROMIUM ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export const browserSkipReason: string | undefined = existsSync(chromiumPath)
  ? undefined
  : `no Chromium at ${chromiumPath} (apt-get install -y chromium, or set PITSTOP_CHROMIUM)`;

if (browserSkipReason) console.warn(`browser tests skipped: ${browserSkipReason}`);

/** The flags this closed network needs: no background connections that would be refused. */
const flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Launches headless Chromium (playwright gives it a new empty profile, removed on close). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: flags });
}

/** Where browser tests save screenshots: `test-output/` at the repository root (git-ignored). */
export function screenshotPath(name: string): string {
  const dir = join(process.cwd(), "test-output");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
