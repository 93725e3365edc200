import type { Logger } from "../log.js";
import type { BotStateStore } from "../store/store.js";
import { StoreRetry, storeFault, type StoreHealth } from "../store/store-health.js";

const deleted = Symbol("deleted");

/**
 * Conversation state in the database, with a memory in front of it for when the database
 * does not answer: a write that fails is kept here (and read from here) and written once
 * the store answers again, so a draft is never lost to a locked or full database.
 */
export function conversationStorage(
  state: BotStateStore["conversations"],
  health: StoreHealth,
  log: Logger,
): {
  read(key: string): Promise<unknown>;
  write(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
} {
  const waiting = new Map<string, unknown>();
  const retry = new StoreRetry("conversation state", health, log);
  const attempt = async (key: string, value: unknown): Promise<boolean> => {
    // While the store is known to be down, memory only: each try would wait out the lock.
    if (!health.state.ok && waiting.size > 0) {
      waiting.set(key, value);
      return false;
    }
    try {
      if (value === deleted) await state.delete(key);
      else await state.write(key, value);
      waiting.delete(key);
      retry.succeeded();
      return true;
    } catch (error) {
      if (!storeFault(error)) throw error;
      waiting.set(key, value);
      retry.failed(error);
      return false;
    }
  };
  // Once the store answers, what waits in memory is written, in order, until one fails.
  health.on("change", (s) => {
    if (!s.ok) return;
    void (async () => {
      for (const [key, value] of [...waiting]) if (!(await attempt(key, value))) return;
    })().catch((error: unknown) => log.error({ err: error }, "could not write conversation state"));
  });
  return {
    async read(key) {
      if (waiting.has(key)) {
        const value = waiting.get(key);
        return value === deleted ? undefined : value;
      }
      return state.read(key);
    },
    async write(key, value) {
      await attempt(key, value);
    },
    async delete(key) {
      await attempt(key, deleted);
    },
  };
}
