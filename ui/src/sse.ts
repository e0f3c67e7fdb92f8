// Server-sent events read from a fetch response: unlike EventSource, fetch can send the
// reader's key as a header, and the page decides itself when and where to reconnect.

/** One event of a text/event-stream. */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** A line longer than the page accepts (cards are at most 64 KiB by default). */
export class SseTooLarge extends Error {}

/** The longest line accepted; an event carries one card. */
export const MAX_LINE_CHARS = 1 << 20;

/**
 * The events of `body`, as the HTML standard parses event streams (comments skipped, `data`
 * lines joined); `onBytes` is called whenever bytes arrive. Ends when the stream ends; throws
 * `SseTooLarge` on a line over the bound.
 */
export async function* sseEvents(
  body: ReadableStream<Uint8Array>,
  onBytes: () => void = () => {},
  maxLine: number = MAX_LINE_CHARS,
): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | null = null;
  let event = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onBytes(); // pings (comment lines) count: the connection is alive
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const end = nextBreak(buffer, start);
        if (end < 0) break;
        const line = buffer.slice(start, end);
        start = end + (buffer[end] === "\r" && buffer[end + 1] === "\n" ? 2 : 1);
        if (line === "") {
          if (data.length > 0) yield { id, event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
        else if (field === "id" && !text.includes("\0")) id = text;
      }
      buffer = buffer.slice(start);
      // a lone "\r" at the end may be the first half of "\r\n": keep it for the next chunk
      if (buffer.length > maxLine) throw new SseTooLarge(`an event line over ${maxLine} characters`);
    }
  } finally {
    reader.releaseLock();
  }
}

function nextBreak(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === "\n") return i;
    if (c === "\r") return i + 1 < text.length ? i : -1;
  }
  return -1;
}
