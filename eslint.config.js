import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The boundaries of the design: who may import what.
const mcpClient = {
  group: ["@modelcontextprotocol/sdk/client/*"],
  message: "Only src/fleet/ talks to MCP servers as a client.",
};
const grammy = { group: ["grammy", "@grammyjs/*"], message: "The core never imports grammY." };
const sqlite = { group: ["better-sqlite3", "pg"], message: "Only src/store/ writes SQL." };
const restrict = (...patterns) => ({ "no-restricted-imports": ["error", { patterns }] });

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "data/", "logs/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", ignoreRestSiblings: true }],
      "no-console": "error",
    },
  },
  // The store answers with promises: none may be dropped or tested as a value by mistake.
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/await-thenable": "error",
    },
  },
  { files: ["src/**/*.ts"], rules: restrict(mcpClient, grammy, sqlite) },
  { files: ["src/fleet/**/*.ts"], rules: restrict(grammy, sqlite) },
  // The bridge that serves a stdio server over HTTP for `servers serve` is its one client.
  { files: ["src/servers/stdio-bridge.ts"], rules: restrict(grammy, sqlite) },
  { files: ["src/bot/**/*.ts", "handlers/**/*.ts", "scenes/**/*.ts"], rules: restrict(mcpClient, sqlite) },
  // handlers/ and scenes/ build on src/bot; only the bot's assembly (create-bot.ts) looks the other way.
  {
    files: ["src/bot/**/*.ts"],
    ignores: ["src/bot/create-bot.ts"],
    rules: restrict(mcpClient, sqlite, {
      group: ["**/handlers/*", "**/scenes/*"],
      message: "src/bot does not import handlers/ or scenes/ (create-bot.ts assembles them).",
    }),
  },
  // The domain types depend on nothing of ours but the errors.
  {
    files: ["src/domain/**/*.ts"],
    rules: restrict(mcpClient, grammy, sqlite, {
      group: ["**/store/*", "**/orchestrator/*", "**/fleet/*", "**/integrations/*", "**/bot/*"],
      message: "src/domain depends on no other part of taskfan.",
    }),
  },
  {
    files: ["src/store/**/*.ts"],
    rules: restrict(mcpClient, grammy, {
      group: ["**/orchestrator/*", "**/fleet/*", "**/integrations/*", "**/bot/*"],
      message: "The store serves the core; it imports the domain, not the orchestrator.",
    }),
  },
);
