import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { startHarness } from "../core-harness.js";
import { onlyServers, stopSpawned, tempDir, terminate } from "../helpers.js";
import { hop, memoryProxied } from "../hops.js";

afterAll(() => stopSpawned());

const MB = 1024 * 1024;

type Flood = "endless SSE event" | "endless JSON" | "declared 450 MB";

/**
 * A hop before a real server that answers the first `times` requests of `method` with a
 * flood instead, as fast as the reader takes it, until the reader hangs up (or 512 MB);
 * the rest it passes on. It counts what it wrote.
 */
async function floodingHop(target: string, method: string, flood: Flood, times = Infinity) {
  let written = 0;
  let floods = 0;
  const chunk = Buffer.alloc(64 * 1024, "x");
  const pour = (res: ServerResponse, head: string) => {
    res.write(head);
    const more = () => {
      while (!res.destroyed && written < 512 * MB) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", more);
      }
      res.end();
    };
    more();
  };
  const h = await hop(target, (req, body, res) => {
    if (floods >= times || !body.toString().includes(`"method":"${method}"`)) return false;
    floods += 1;
    const id = (JSON.parse(body.toString()) as { id: number }).id;
    const json = `{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"`;
    if (flood === "endless SSE event") {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "mcp-session-id": String(req.headers["mcp-session-id"] ?? ""),
      });
      pour(res, `event: message\ndata: ${json}`);
      return true;
    }
    res.writeHead(200, {
      "content-type": "application/json",
      ...(flood === "declared 450 MB" ? { "content-length": String(450 * MB) } : {}),
    });
    pour(res, json);
    return true;
  });
  return { ...h, written: () => written, floods: () => floods };
}

describe("a hostile hosted server", () => {
  it(
    "answering tools/list with an endless SSE event: read up to its cap (8 MB by default) and no further, every reconnect; the server is ERROR, taskfan lives",
    { timeout: 60_000 },
    async () => {
      const { dir, remove } = tempDir();
      const served = await memoryProxied("stream", path.join(dir, "data"));
      const hop = await floodingHop(served.url, "tools/list", "endless SSE event");
      const h = await startHarness(
        {
          servers: onlyServers(["memory"], { memory: { url: hop.url, required: false } }),
          restart: { max_delay: 1 },
        },
        dir,
      );
      try {
        const [memory] = h.core.started;
        expect(memory).toMatchObject({ server: "memory", ok: false });
        expect(memory!.error).toMatch(
          /memory sent an event over 8 MB \(servers\.memory\.max_response_size\)/,
        );
        // It is tried again on its backoff; each try reads no more than the cap (and what
        // the sockets held when the reader hung up).
        await vi.waitFor(() => expect(hop.floods()).toBeGreaterThanOrEqual(3), {
          timeout: 30_000,
          interval: 100,
        });
        expect(hop.written() / hop.floods()).toBeLessThan(8 * MB + 8 * MB);
        const [rating] = await h.core.checkHealth();
        expect(rating).toMatchObject({ server: "memory", status: "ERROR" });
        expect(rating!.lastError).toMatch(/over 8 MB/);
      } finally {
        await h.stop();
        hop.close();
        await terminate(served.child);
        remove();
      }
    },
  );

  it.each([
    ["endless JSON", "an answer with no end"],
    ["declared 450 MB", "an answer that says it is 450 MB"],
  ] as const)(
    "%s to a call (%s): refused past servers.<role>.max_response_size, recorded as that server's error; the next try makes the record once",
    { timeout: 60_000 },
    async (flood, _what) => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const served = await memoryProxied("stream", dataDir);
      const hop = await floodingHop(served.url, "tools/call", flood, 1);
      const h = await startHarness(
        {
          servers: onlyServers(["memory"], {
            memory: { url: hop.url, required: false, max_response_size: "1m" },
          }),
          restart: { max_delay: 1 },
        },
        dir,
      );
      try {
        const errors: string[] = [];
        h.core.orchestrator.on("operation.waiting", (e) => errors.push(e.error ?? ""));
        h.core.orchestrator.on("operation.failed", (e) => errors.push(e.error ?? ""));
        const id = await h.core.orchestrator.createTask({ title: `flooded with ${flood}` });
        await h.doneOn(id, "memory", 30_000);
        expect(hop.floods()).toBe(1);
        expect(hop.written()).toBeLessThan(1 * MB + 8 * MB);
        expect(errors.join("\n")).toMatch(
          /memory sent an answer over 1 MB \(servers\.memory\.max_response_size\)/,
        );
        const entities = readFileSync(path.join(dataDir, "memory", "memory.jsonl"), "utf8")
          .split("\n")
          .filter((l) => l.includes(`"taskfan-task-${id}"`) && l.includes('"type":"entity"'));
        expect(entities).toHaveLength(1);
      } finally {
        await h.stop();
        hop.close();
        await terminate(served.child);
        remove();
      }
    },
  );
});
