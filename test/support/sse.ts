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
}

/** A real SSE client over fetch that parses frames as they arrive. */
export interface SseClient {
  /** The next frame, comments included; rejects after `timeoutMs`. */
  nextFrame(timeoutMs?: number): Promise<SseFrame>;
  /** The next `message` frame's data, skipping comments; rejects after `timeoutMs`. */
  nextDelivery(timeoutMs?: number): Promise<DeliveryFrame>;
  close(): void;
  response: Response;
}

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

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal });
  const frames: SseFrame[] = [];
  const waiters: (() => void)[] = [];
  let ended: Error | undefined;
  const notify = () => waiters.splice(0).forEach((w) => w());

  void (async () => {
    if (!response.ok || !response.body) {
      ended = new Error(`SSE request failed with HTTP ${response.status}`);
      notify();
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          frames.push(parseFrame(buffer.slice(0, cut)));
          buffer = buffer.slice(cut + 2);
        }
        notify();
      }
      ended = new Error("SSE stream ended");
    } catch (error) {
      ended = error as Error;
    }
    notify();
  })();

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
    response,
    nextFrame,
    async nextDelivery(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const frame = await nextFrame(Math.max(1, deadline - Date.now()));
        if (frame.event === "message") return JSON.parse(frame.data!) as DeliveryFrame;
      }
    },
    close: () => controller.abort(),
  };
}
