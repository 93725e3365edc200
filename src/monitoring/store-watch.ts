import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";

/**
 * While the store is unavailable, probes it with a real write (1 s, doubling up to 30 s),
 * so it is seen to answer again even when nothing else writes; says so in the log.
 */
export function watchStore(
  store: Pick<Store, "health" | "probe">,
  log: Logger,
  options: { firstDelayMs?: number; maxDelayMs?: number } = {},
): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let delay = 0;
  const first = options.firstDelayMs ?? 1000;
  let stopped = false;
  const probe = async () => {
    timer = undefined;
    if (store.health.state.ok || (await store.probe()) || stopped || timer) return;
    delay = Math.min(delay * 2, options.maxDelayMs ?? 30_000);
    timer = setTimeout(() => void probe(), delay);
    timer.unref();
  };
  const onChange = (state: typeof store.health.state) => {
    if (state.ok) {
      clearTimeout(timer);
      timer = undefined;
      log.info("storage answers again");
      return;
    }
    log.error({ code: state.code, reason: state.reason }, `storage unavailable: ${state.reason}`);
    if (timer) return;
    delay = first;
    timer = setTimeout(() => void probe(), delay);
    timer.unref();
  };
  store.health.on("change", onChange);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      store.health.off("change", onChange);
    },
  };
}
