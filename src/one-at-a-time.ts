/** A slow action that runs once at a time: a call while it runs shares that run. */
export interface OneAtATime<T> {
  (): Promise<T>;
  /** The run under way, if any. */
  readonly running: Promise<T> | undefined;
  /** Resolves when no run is under way (whatever its outcome). */
  settled(): Promise<void>;
}

export function oneAtATime<T>(action: () => Promise<T>): OneAtATime<T> {
  let running: Promise<T> | undefined;
  const run = (() => {
    running ??= action().finally(() => {
      running = undefined;
    });
    return running;
  }) as OneAtATime<T>;
  Object.defineProperty(run, "running", { get: () => running });
  run.settled = async () => {
    await running?.catch(() => undefined);
  };
  return run;
}
