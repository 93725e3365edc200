import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { newTaskId, validateNewTask } from "../../src/domain/task.js";
import { deriveTaskStatus } from "../../src/orchestrator/status.js";
import type { Operation } from "../../src/domain/task.js";

const now = Date.parse("2026-11-25T12:00:00Z");

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }
  throw new Error("expected a ValidationError");
}

describe("validateNewTask", () => {
  it("normalises a good task", () => {
    expect(
      validateNewTask(
        {
          title: "  Plan  ",
          priority: 2,
          deadline: "2026-12-01T12:00:00+03:00",
          tags: ["#work", "work", "q4"],
        },
        now,
      ),
    ).toEqual({
      title: "Plan",
      description: "",
      priority: 2,
      deadline: "2026-12-01T09:00:00.000Z",
      tags: ["work", "q4"],
    });
  });

  it.each([
    [{ title: "" }, "title"],
    [{ title: "x".repeat(201) }, "title"],
    [{ title: "t", priority: 0 }, "priority"],
    [{ title: "t", priority: 2.5 }, "priority"],
    [{ title: "t", deadline: "tomorrow" }, "deadline"],
    [{ title: "t", deadline: "2026-11-24T12:00:00Z" }, "deadline"],
    [{ title: "t", deadline: "2026-13-45" }, "deadline"],
    [{ title: "t", tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }, "tags"],
    [{ title: "t", tags: ["two words"] }, "tags"],
  ])("rejects %j naming %s", (input, field) => {
    expect(fieldOf(() => validateNewTask(input, now))).toBe(field);
  });

  it("makes short, distinct ids", () => {
    const ids = new Set(Array.from({ length: 1000 }, newTaskId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-hjkmnp-tv-z]{10}$/);
  });
});

describe("deriveTaskStatus", () => {
  const op = (status: Operation["status"], waiting: string | null = null) =>
    ({ kind: "create", status, waiting, attempts: 1, server: status }) as Operation;

  it("follows the operations", () => {
    expect(deriveTaskStatus([op("done"), op("skipped")])).toMatchObject({ status: "done", settled: true });
    expect(deriveTaskStatus([op("done"), op("running")])).toMatchObject({
      status: "running",
      settled: false,
    });
    expect(deriveTaskStatus([op("done"), op("failed")])).toMatchObject({ status: "partial", settled: true });
    expect(deriveTaskStatus([op("failed"), op("failed")])).toMatchObject({ status: "failed", settled: true });
    expect(deriveTaskStatus([op("done"), op("pending", "circuit open")])).toMatchObject({
      status: "partial",
      settled: true,
      reason: "waiting for pending",
    });
  });
});
