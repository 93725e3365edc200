import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import { startHarness, type Harness } from "../core-harness.js";
import { silentLog } from "../helpers.js";

// Debian's Chromium, installed by .ci/run; no browser download.
const executablePath = "/usr/bin/chromium";
let h: Harness;
let http: Awaited<ReturnType<typeof startHttpServer>>;
let browser: Browser;

beforeAll(async () => {
  h = await startHarness({ http: { port: 0 } });
  http = await startHttpServer(h.core, h.core.metrics, silentLog);
  const finished = await h.core.orchestrator.createTask({ title: "Finished before" });
  await h.core.orchestrator.waitForSettled(finished, 20_000);
  await h.core.orchestrator.changeTask(finished, { kind: "complete" }, { source: "test" });
  await h.core.orchestrator.waitForChanges(finished, 20_000);
  const id = await h.core.orchestrator.createTask({ title: "Seen on the status page" });
  await h.core.orchestrator.waitForSettled(id, 20_000);
  await h.core.checkHealth();
  browser = await chromium.launch({
    executablePath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await http?.close();
  await h?.stop();
});

describe("the status page in a browser", () => {
  it("shows the ten servers, the task with its ticks and the latency chart, on a phone-sized screen", async () => {
    expect(existsSync(executablePath)).toBe(true);
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${http.url}/`);
    const rows = page.locator("#servers tbody tr");
    expect(await rows.count()).toBe(10);
    expect(await rows.first().innerText()).toContain("deltatask");
    expect(await page.locator("#servers tbody").innerText()).not.toContain("ERROR");
    const task = page.locator("#tasks tbody tr").first();
    expect(await task.innerText()).toContain("Seen on the status page");
    expect(await task.locator("td").filter({ hasText: "✓" }).count()).toBe(10);
    // A finished task says so under its fan-out status.
    const done = page.locator("#tasks tbody tr").nth(1);
    expect(await done.innerText()).toContain("Finished before");
    expect(await done.locator(".state.done").innerText()).toBe("done");
    expect(await page.locator("svg rect").count()).toBe(20);
    // Every server answered: each has a latency bar of some width.
    const widths = await page
      .locator("svg rect")
      .evaluateAll((rects) => rects.map((r) => Number(r.getAttribute("width"))));
    expect(widths.filter((w) => w > 0)).toHaveLength(20);
    // It fits the phone: only the tables scroll sideways, never the page.
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
  });
});
