/**
 * A hosted server's HTTP answer, read no further than `maxBytes`: a `content-length` over
 * it is refused before anything is read; a JSON body is cut off once it passes it; an SSE
 * stream (which may rightly run for hours) once a single event passes it. Past the cap the
 * body errors with `tooLarge()`'s error, and the rest of the stream is cancelled, not read.
 */
export function cappedResponse(
  response: Response,
  maxBytes: number,
  tooLarge: (what: "answer" | "event") => Error,
): Response {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    void response.body?.cancel().catch(() => undefined);
    throw tooLarge("answer");
  }
  const source = response.body;
  if (!source) return response;
  const count = /text\/event-stream/i.test(response.headers.get("content-type") ?? "")
    ? eventCounter(maxBytes)
    : (() => {
        let total = 0;
        return (chunk: Uint8Array) =>
          (total += chunk.byteLength) > maxBytes ? ("answer" as const) : undefined;
      })();
  const reader = source.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      const over = count(value);
      if (over) {
        const error = tooLarge(over);
        controller.error(error);
        await reader.cancel(error).catch(() => undefined);
        return;
      }
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Counts the bytes of the SSE event under way (an event ends at a blank line; a line at
 * LF, CR or CRLF); "event" once one passes `maxBytes`.
 */
function eventCounter(maxBytes: number): (chunk: Uint8Array) => "event" | undefined {
  let event = 0;
  let line = 0;
  let afterCR = false;
  return (chunk) => {
    for (const byte of chunk) {
      if (byte === 0x0a && afterCR) {
        afterCR = false;
        continue;
      }
      afterCR = byte === 0x0d;
      if (byte === 0x0a || byte === 0x0d) {
        if (line === 0) event = 0;
        line = 0;
        continue;
      }
      line += 1;
      if ((event += 1) > maxBytes) return "event";
    }
    return undefined;
  };
}
