/** Levels of {@link Logger} lines. */
export type LogLevel = "info" | "warn" | "error";

/**
 * Where pitstop writes what an operator should see: a failing webhook, a store error, an expired
 * lock that re-emits a message. One call is one line; `detail` is an error or extra context.
 */
export type Logger = (level: LogLevel, message: string, detail?: unknown) => void;

/** The default logger: one `pitstop: …` line on the console, the error's message appended. */
export const consoleLogger: Logger = (level, message, detail) => {
  const suffix = detail === undefined ? "" : `: ${detail instanceof Error ? detail.message : String(detail)}`;
  console[level === "info" ? "log" : level](`pitstop: ${message}${suffix}`);
};
