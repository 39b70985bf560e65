/** Levels of {@link Logger} lines, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Every level, least severe first. */
export const logLevels = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];

/**
 * Where pitstop writes what an operator should see: a failing webhook, a store error, an expired
 * lock that re-emits a message. One call is one line; `detail` is an error or extra context (a
 * plain object's fields become fields of a JSON line).
 */
export type Logger = (level: LogLevel, message: string, detail?: unknown) => void;

const consoleMethod = { debug: "debug", info: "log", warn: "warn", error: "error" } as const;

/** The default logger: one `pitstop: …` line on the console, the error's message appended. */
export const consoleLogger: Logger = (level, message, detail) => {
  const suffix = detail === undefined ? "" : `: ${detail instanceof Error ? detail.message : typeof detail === "object" ? JSON.stringify(detail) : String(detail)}`;
  console[consoleMethod[level]](`pitstop: ${message}${suffix}`);
};

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** `json`: one JSON object a line, `{"time","level","msg",…}`; `pretty`: `time LEVEL msg key=value…`. */
  format: "json" | "pretty";
  /** Lines below this level are dropped. @default "info" */
  level?: LogLevel;
  /** Where a line goes. @default the console (`console.log`, or `console.error` for warn and error) */
  write?: (line: string, level: LogLevel) => void;
  /** Time source (epoch ms). @default Date.now */
  now?: () => number;
}

/** The fields a detail adds to a line: an error's message (and code), an object's own fields, else `detail`. */
function fieldsOf(detail: unknown): Record<string, unknown> {
  if (detail === undefined) return {};
  if (detail instanceof Error) {
    const code = (detail as { code?: unknown }).code;
    return { error: detail.message, ...(typeof code === "string" && { code }) };
  }
  if (typeof detail === "object" && detail !== null && !Array.isArray(detail)) return { ...detail };
  return { detail };
}

const consoleWrite = (line: string, level: LogLevel) => (level === "warn" || level === "error" ? console.error(line) : console.log(line));

/** A leveled logger writing JSON lines or readable ones. Runs on every runtime (console only). */
export function createLogger(options: LoggerOptions): Logger {
  const min = logLevels.indexOf(options.level ?? "info");
  const write = options.write ?? consoleWrite;
  const now = options.now ?? Date.now;
  return (level, message, detail) => {
    if (logLevels.indexOf(level) < min) return;
    const time = new Date(now()).toISOString();
    const fields = fieldsOf(detail);
    if (options.format === "json") {
      write(JSON.stringify({ time, level, msg: message, ...fields }), level);
      return;
    }
    const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === "string" && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`);
    write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${extra.join("")}`, level);
  };
}
