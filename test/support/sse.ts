import { request } from "node:http";

/** One parsed Server-Sent Events frame. Comment-only frames have `comment` set. */
export interface SseFrame {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
  raw: string;
}

/** Pitstop's `message` frame data. */
export interface DeliveryFrame {
  id: string;
  message: Record<string, unknown>;
  attempt: number;
  token: string;
  at: string;
  /** When the lock expires. */
  deadline: string;
}

/** A real SSE client that parses frames as they arrive. */
export interface SseClient {
  /** The next frame, comments included; rejects after `timeoutMs`. */
  nextFrame(timeoutMs?: number): Promise<SseFrame>;
  /** The next `message` frame's data, skipping comments; rejects after `timeoutMs`. */
  nextDelivery(timeoutMs?: number): Promise<DeliveryFrame>;
  close(): void;
  /** The response's status and headers. */
  response: { status: number; headers: Headers };
}

/** Options of {@link openSse}. */
export interface SseOptions {
  /**
   * How the stream is read: `"fetch"` as any client would, or `"node"` (node:http), lighter per
   * frame, for the bench. @default "fetch"
   */
  transport?: "fetch" | "node";
}

/** Parses one frame (the text between blank lines); the one SSE frame parser of tests and scripts. */
export function parseFrame(raw: string): SseFrame {
  const frame: SseFrame = { raw };
  for (const line of raw.split("\n")) {
    if (line.startsWith(":")) frame.comment = line.slice(1).trim();
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") frame.event = value;
    else if (field === "id") frame.id = value;
    else if (field === "data") frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
  }
  return frame;
}

/** What a transport hands over: the response head, then text chunks until the stream ends. */
interface Stream {
  status: number;
  headers: Headers;
  /** Calls `onChunk` with each chunk of text, then `onEnd` once with why the stream ended. */
  read(onChunk: (text: string) => void, onEnd: (error: Error) => void): void;
  close(): void;
}

async function fetchStream(url: string, headers: Record<string, string>): Promise<Stream> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  return {
    status: response.status,
    headers: response.headers,
    read(onChunk, onEnd) {
      void (async () => {
        if (!response.ok || !response.body) return onEnd(new Error(`SSE request failed with HTTP ${response.status}`));
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            onChunk(value);
          }
          onEnd(new Error("SSE stream ended"));
        } catch (error) {
          onEnd(error as Error);
        }
      })();
    },
    close: () => controller.abort(),
  };
}

function nodeStream(url: string, headers: Record<string, string>): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      const status = res.statusCode!;
      const head = new Headers();
      for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) head.set(name, String(value));
      resolve({
        status,
        headers: head,
        read(onChunk, onEnd) {
          if (status < 200 || status > 299) {
            res.resume();
            return onEnd(new Error(`SSE request failed with HTTP ${status}`));
          }
          res.setEncoding("utf8");
          res.on("data", onChunk);
          res.on("end", () => onEnd(new Error("SSE stream ended")));
          res.on("error", onEnd);
          res.on("close", () => onEnd(new Error("SSE stream aborted")));
        },
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** The one SSE reader of tests and scripts: opens `url` and parses its frames as they arrive. */
export async function openSse(url: string, headers: Record<string, string> = {}, options: SseOptions = {}): Promise<SseClient> {
  const open = options.transport === "node" ? nodeStream : fetchStream;
  const stream = await open(url, { accept: "text/event-stream", ...headers });
  const frames: SseFrame[] = [];
  const waiters: (() => void)[] = [];
  let ended: Error | undefined;
  const notify = () => waiters.splice(0).forEach((w) => w());

  let buffer = "";
  stream.read(
    (chunk) => {
      buffer += chunk.replace(/\r\n/g, "\n");
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        frames.push(parseFrame(buffer.slice(0, cut)));
        buffer = buffer.slice(cut + 2);
      }
      notify();
    },
    (error) => {
      ended ??= error;
      notify();
    },
  );

  const nextFrame = async (timeoutMs = 10_000): Promise<SseFrame> => {
    const deadline = Date.now() + timeoutMs;
    while (frames.length === 0) {
      if (ended) throw ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SSE frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return frames.shift()!;
  };

  return {
    response: { status: stream.status, headers: stream.headers },
    nextFrame,
    async nextDelivery(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const frame = await nextFrame(Math.max(1, deadline - Date.now()));
        if (frame.event === "message") return JSON.parse(frame.data!) as DeliveryFrame;
      }
    },
    close: () => stream.close(),
  };
}
