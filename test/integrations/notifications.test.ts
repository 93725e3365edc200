import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taskMarker } from "../../src/domain/task.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers } from "../helpers.js";

// A stand-in ntfy server on loopback: records each publish, answers 500 for topic "broken".
const received: Array<Record<string, unknown>> = [];
const authorizations: Array<string | undefined> = [];
let ntfy: Server;
let base: string;

beforeAll(async () => {
  ntfy = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const message = JSON.parse(body) as Record<string, unknown>;
    received.push(message);
    authorizations.push(req.headers.authorization);
    res.writeHead(message.topic === "broken" ? 500 : 200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: "x", event: "message" }));
  });
  await new Promise<void>((r) => ntfy.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(ntfy.address() as { port: number }).port}/`;
});
afterAll(() => new Promise((r) => ntfy.close(r)));

async function withTopic(topic: string, url = base): Promise<Harness> {
  return startHarness({
    servers: onlyServers(["notifications"], {
      notifications: {
        env: { DATA_DIR: "${DATA_DIR}/notifications", NTFY_BASE_URL: url },
        settings: { topic },
      },
    }),
  });
}

describe("notifications forwarded to ntfy", () => {
  it("publishes the task to the configured ntfy server", async () => {
    const h = await withTopic("team");
    try {
      const id = await h.core.orchestrator.createTask({
        title: "Call the printer",
        priority: 1,
        tags: ["office"],
      });
      const view = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(view?.task.status).toBe("done");
      expect(view!.operations[0]!.remoteId).toBe(taskMarker(id));
      expect(received).toContainEqual(
        expect.objectContaining({ topic: "team", message: "Call the printer · #office", priority: 5 }),
      );
    } finally {
      await h.stop();
    }
  });

  it("sends the credentials of NTFY_BASE_URL as Basic authorization, never inside an error", async () => {
    const h = await withTopic("private", base.replace("http://", "http://alice:s3cret-pw@"));
    try {
      const id = await h.core.orchestrator.createTask({ title: "Behind a password" });
      const view = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(view?.task.status, view?.operations[0]?.lastError ?? "").toBe("done");
      expect(authorizations.at(-1)).toBe(`Basic ${Buffer.from("alice:s3cret-pw").toString("base64")}`);
    } finally {
      await h.stop();
    }
  });

  it("records the ntfy server's refusal as the operation's error", async () => {
    const h = await withTopic("broken");
    try {
      const id = await h.core.orchestrator.createTask({ title: "Nobody hears this" });
      const view = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(view?.task.status).toBe("failed");
      expect(view!.operations[0]!.lastError).toBe(
        "notifications: ntfy_publish_message failed: publish failed: ntfy answered HTTP 500",
      );
    } finally {
      await h.stop();
    }
  });
});
