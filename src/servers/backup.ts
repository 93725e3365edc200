/**
 * A local MCP server with MCP-Backup-Server's surface (backup_folder_create,
 * backup_folder_list, backup_folder_restore, backup_list_all) plus backup_delete and
 * backup_sources. A backup is a copy of the matching files and a metadata file under
 * DATA_DIR. It backs up, and restores into, only the folders BACKUP_SOURCES names (paths
 * separated as in PATH) and what lies under them; `backup_sources` lists them, so a client
 * on another machine knows what to ask for.
 */
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { dataDirFromEnv } from "./json-file.js";
import { json, ToolSet, toolError, serve } from "./run-server.js";

interface BackupMeta {
  timestamp: string;
  folder_path: string;
  backup_path: string;
  include_pattern: string | null;
  exclude_pattern: string | null;
  agent_context: string | null;
  files: string[];
  created_at: string;
}

const root = path.join(dataDirFromEnv(), "backups");
const allowedSources = (process.env.BACKUP_SOURCES ?? "")
  .split(path.delimiter)
  .filter((p) => path.isAbsolute(p))
  .map((p) => path.resolve(p));

/** Why a folder may not be backed up or restored into; undefined when it may. */
function refused(folder: string): string | undefined {
  if (!path.isAbsolute(folder)) return "folder_path must be absolute";
  const resolved = path.resolve(folder);
  const inside = allowedSources.some((s) => resolved === s || resolved.startsWith(s + path.sep));
  if (inside) return undefined;
  return allowedSources.length === 0
    ? "this server backs up no folder (BACKUP_SOURCES is not set)"
    : `${folder} is outside the folders this server backs up (see backup_sources)`;
}
mkdirSync(root, { recursive: true });
const server = new ToolSet({ name: "backup", version: "0.1.0" });

function folderKey(folder: string): string {
  return folder.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+/, "");
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

function listBackups(folder?: string): BackupMeta[] {
  const keys = folder ? [folderKey(folder)] : existsSync(root) ? readdirSync(root) : [];
  const out: BackupMeta[] = [];
  for (const key of keys) {
    const dir = path.join(root, key);
    if (!existsSync(dir)) continue;
    for (const stamp of readdirSync(dir).sort()) {
      const meta = path.join(dir, stamp, "backup-metadata.json");
      if (existsSync(meta)) out.push(JSON.parse(readFileSync(meta, "utf8")) as BackupMeta);
    }
  }
  return out;
}

server.registerTool(
  "backup_folder_create",
  {
    description: "Back up a folder (matching files only, when a pattern is given).",
    inputSchema: {
      folder_path: z.string(),
      include_pattern: z.string().optional(),
      exclude_pattern: z.string().optional(),
      agent_context: z.string().optional(),
    },
  },
  ({ folder_path, include_pattern, exclude_pattern, agent_context }) => {
    const refusal = refused(folder_path);
    if (refusal) return toolError(refusal);
    const include = include_pattern ? globToRegExp(include_pattern) : undefined;
    const exclude = exclude_pattern ? globToRegExp(exclude_pattern) : undefined;
    const timestamp = `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(3).toString("hex")}`;
    const target = path.join(root, folderKey(folder_path), timestamp);
    mkdirSync(path.join(target, "files"), { recursive: true });
    const files = existsSync(folder_path)
      ? readdirSync(folder_path).filter((f) => (!include || include.test(f)) && !exclude?.test(f))
      : [];
    for (const f of files)
      cpSync(path.join(folder_path, f), path.join(target, "files", f), { recursive: true });
    const meta: BackupMeta = {
      timestamp,
      folder_path,
      backup_path: target,
      include_pattern: include_pattern ?? null,
      exclude_pattern: exclude_pattern ?? null,
      agent_context: agent_context ?? null,
      files,
      created_at: new Date().toISOString(),
    };
    writeFileSync(path.join(target, "backup-metadata.json"), JSON.stringify(meta, null, 2));
    return json(meta);
  },
);

server.registerTool(
  "backup_folder_list",
  { description: "List the backups of a folder.", inputSchema: { folder_path: z.string() } },
  ({ folder_path }) => json({ backups: listBackups(folder_path) }),
);

server.registerTool(
  "backup_sources",
  { description: "The folders this server backs up (and what lies under them).", inputSchema: {} },
  () => json({ sources: allowedSources }),
);

server.registerTool("backup_list_all", { description: "List every backup.", inputSchema: {} }, () =>
  json({ backups: listBackups() }),
);

server.registerTool(
  "backup_folder_restore",
  {
    description: "Restore a folder's files from one backup.",
    inputSchema: { folder_path: z.string(), timestamp: z.string() },
  },
  ({ folder_path, timestamp }) => {
    const refusal = refused(folder_path);
    if (refusal) return toolError(refusal);
    const meta = listBackups(folder_path).find((b) => b.timestamp === timestamp);
    if (!meta) return toolError(`No backup ${timestamp} of ${folder_path}`);
    mkdirSync(folder_path, { recursive: true });
    for (const f of meta.files)
      cpSync(path.join(meta.backup_path, "files", f), path.join(folder_path, f), { recursive: true });
    return json({ success: true, restored: meta.files });
  },
);

server.registerTool(
  "backup_delete",
  { description: "Delete one backup.", inputSchema: { folder_path: z.string(), timestamp: z.string() } },
  ({ folder_path, timestamp }) => {
    const meta = listBackups(folder_path).find((b) => b.timestamp === timestamp);
    if (!meta) return toolError(`No backup ${timestamp} of ${folder_path}`);
    rmSync(meta.backup_path, { recursive: true, force: true });
    return json({ success: true });
  },
);

await serve(server);
