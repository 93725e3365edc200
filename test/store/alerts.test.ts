import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteStore as createStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../helpers.js";

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function store() {
  let now = 1_000;
  const { dir, remove } = tempDir();
  const s = createStore(path.join(dir, "a.db"), () => now);
  cleanups.push(remove);
  cleanups.unshift(() => s.close());
  return { s, tick: (ms: number) => (now += ms) };
}

describe("alert outbox", () => {
  it("folds repeats of an open condition into one row", async () => {
    const { s, tick } = store();
    const first = await s.alerts.raise("breaker_open", "git", { error: "timeout" });
    tick(500);
    const again = await s.alerts.raise("breaker_open", "git", { error: "timeout again" });
    expect(again).toMatchObject({ id: first.id, count: 2, firstSeen: 1000, lastSeen: 1500 });
    expect(again.details).toEqual({ error: "timeout again" });
    expect((await s.alerts.raise("breaker_open", "memory")).id).not.toBe(first.id);
    expect(await s.alerts.open()).toHaveLength(2);
  });

  it("closes a server's alerts on recovery; the next failure opens a new row", async () => {
    const { s } = store();
    const a = await s.alerts.raise("error", "git");
    expect((await s.alerts.resolve("git")).map((x) => x.id)).toEqual([a.id]);
    expect((await s.alerts.get(a.id))?.status).toBe("closed");
    expect((await s.alerts.raise("error", "git")).id).not.toBe(a.id);
  });

  it("hands each undelivered alert to one deliverer, and again when it changed", async () => {
    const { s, tick } = store();
    const a = await s.alerts.raise("degraded", "shrimp-task-manager");
    const notice = await s.alerts.notice("rolled_back", "", "task1", { reason: "deltatask failed for good" });
    expect(notice.status).toBe("closed");
    const claimed = await s.alerts.claimUndelivered("bot-1", 10, 30_000);
    expect(claimed.map((x) => x.id)).toEqual([a.id, notice.id]);
    expect(await s.alerts.claimUndelivered("bot-2", 10, 30_000)).toEqual([]);
    expect(await s.alerts.markDelivered(a.id, "bot-2", 1)).toBe(false);
    expect(await s.alerts.markDelivered(a.id, "bot-1", 1)).toBe(true);
    await s.alerts.releaseClaim(notice.id, "bot-1"); // Telegram refused: try again later
    expect((await s.alerts.claimUndelivered("bot-2", 10, 30_000)).map((x) => x.id)).toEqual([notice.id]);
    // A repeat of the delivered alert makes it due again, to update the sent message.
    await s.alerts.raise("degraded", "shrimp-task-manager");
    tick(1);
    expect(await s.alerts.claimUndelivered("bot-1", 10, 30_000)).toEqual([
      expect.objectContaining({ id: a.id, count: 2, deliveredCount: 1 }),
    ]);
  });
});
