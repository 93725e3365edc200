import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites spawn real MCP servers: keep the 2-core machine from thrashing.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
