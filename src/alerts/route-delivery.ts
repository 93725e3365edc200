import { randomBytes } from "node:crypto";
import type { AlertRouteConfig } from "../config/schema.js";
import { isTaskEvent, type Alert } from "../domain/alert.js";
import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";
import type { Store } from "../store/store.js";

/** An alert as text, in the alert chat's language (the same words as the chat's). */
export type AlertText = (alert: Alert) => string;

/** Why a route did not take an alert: `retry` says whether trying again can help. */
export class RouteFailure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    /** What the route asked for (Retry-After), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "RouteFailure";
  }
}

/** Delivers one alert; throws RouteFailure when the route did not take it. */
export interface RouteSender {
  send(alert: Alert, signal: AbortSignal): Promise<void>;
}

export interface AlertRoutesOptions {
  /** How often the outbox is read. */
  intervalMs?: number;
  now?: () => number;
  metrics?: { alertSent(route: string): void; alertFailed(route: string): void };
}

/** How a route's own mute (`/mute <route> 1h`) is kept among the chat's mutes. */
export function routeMuteKey(route: string): string {
  return `route:${route}`;
}

/** 2 s after the first failure, doubling, at most 5 minutes. */
export function backoffMs(attempts: number): number {
  return Math.min(300_000, 2000 * 2 ** Math.min(attempts, 20));
}

/**
 * Whether `route` takes `alert` (its kinds and servers). Task events (done, reopened,
 * deleted) go only to a route that names them in `kinds`: they are no problems.
 */
export function routeTakes(route: AlertRouteConfig, alert: Alert): boolean {
  if (isTaskEvent(alert.kind)) return route.kinds?.includes(alert.kind) ?? false;
  if (route.kinds && !route.kinds.includes(alert.kind)) return false;
  if (route.servers && !route.servers.includes(alert.server as never)) return false;
  return true;
}

/**
 * Delivers the alert outbox to each route besides the Telegram chat (webhooks, ...). Each
 * route keeps its own delivery state per alert: it takes every alert seen since it was
 * first started, each count once (marked delivered only when the route accepted it; the
 * repeats of a problem someone acknowledged are not sent); a
 * route that fails is tried again with backoff and delays only itself; a refusal for good
 * (a 4xx) is recorded with its reason and not tried again until the alert changes.
 */
export class AlertRoutes {
  private readonly owner = `routes-${randomBytes(4).toString("hex")}`;
  private timer: NodeJS.Timeout | undefined;
  private readonly since = new Map<string, number>();
  private abort = new AbortController();
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly routes: ReadonlyArray<{ config: AlertRouteConfig; sender: RouteSender }>,
    private readonly log: Logger,
    private readonly options: AlertRoutesOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Starts the passes (again after a stop: a singleton may be held, lost and held again). */
  start(): void {
    this.abort = new AbortController();
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.deliver().finally(() => {
        if (this.timer !== undefined) this.schedule(this.options.intervalMs ?? 2000);
      });
    }, delayMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.deliverOnce.settled();
  }

  /** One pass over every route, the routes side by side; returns how many alerts went out. */
  deliver(): Promise<number> {
    return this.deliverOnce();
  }

  private readonly deliverOnce = oneAtATime(async () => {
    const counts = await Promise.all(
      this.routes
        .filter((r) => r.config.enabled)
        .map((r) =>
          this.pass(r.config, r.sender).catch((error: unknown) => {
            // The store did not answer: the outbox waits for the next pass.
            this.log.warn({ err: error, route: r.config.name }, "alert route pass failed");
            return 0;
          }),
        ),
    );
    return counts.reduce((a, b) => a + b, 0);
  });

  private async pass(route: AlertRouteConfig, sender: RouteSender): Promise<number> {
    const { alertRoutes } = this.store;
    const name = route.name;
    let since = this.since.get(name);
    if (since === undefined) {
      since = await alertRoutes.start(name, this.now());
      this.since.set(name, since);
    }
    const leaseMs = (route.timeout * 2 + 30) * 1000;
    const claimed = await alertRoutes.claim(name, this.owner, since, 20, leaseMs, this.now());
    // Muted (`/mute <route>`): what comes meanwhile is dropped, as the chat's mutes drop it.
    const mutes = await this.store.bot.mutes.active();
    const muted = mutes.some((m) => m.server === routeMuteKey(name));
    let delivered = 0;
    for (const [index, { alert, attempts }] of claimed.entries()) {
      // Muted, not this route's, or a repeat of a problem someone said they are on ("I'm on
      // it"): recorded as done, so it is not looked at again.
      const repeatOfAcknowledged = alert.status === "open" && alert.acknowledged !== null && alert.count > 1;
      if (muted || !routeTakes(route, alert) || repeatOfAcknowledged) {
        await alertRoutes.delivered(alert.id, name, this.owner, alert.count, this.now());
        continue;
      }
      try {
        await sender.send(alert, this.abort.signal);
      } catch (error) {
        const failure =
          error instanceof RouteFailure ? error : new RouteFailure((error as Error).message, true);
        this.options.metrics?.alertFailed(name);
        if (!failure.retry) {
          await alertRoutes.refused(alert.id, name, this.owner, alert.count, failure.message);
          this.log.warn(
            { route: name, alertId: alert.id, reason: failure.message },
            "alert refused by route",
          );
          continue;
        }
        // The route is down: this alert and the rest claimed wait for the next attempt.
        const nextAt = this.now() + Math.max(backoffMs(attempts), failure.retryAfterMs ?? 0);
        for (const rest of claimed.slice(index)) {
          await alertRoutes.retryAt(rest.alert.id, name, this.owner, failure.message, nextAt);
        }
        this.log.warn(
          {
            route: name,
            alertId: alert.id,
            reason: failure.message,
            retryAt: new Date(nextAt).toISOString(),
          },
          "alert not delivered to route; will try again",
        );
        break;
      }
      await alertRoutes.delivered(alert.id, name, this.owner, alert.count, this.now());
      this.options.metrics?.alertSent(name);
      delivered += 1;
    }
    return delivered;
  }
}
