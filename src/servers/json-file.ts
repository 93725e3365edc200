import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";

/** A JSON document kept in one file, rewritten atomically (temp file, fsync, rename). */
export class JsonFile<T> {
  private value: T;

  constructor(
    readonly file: string,
    initial: () => T,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    try {
      this.value = JSON.parse(readFileSync(file, "utf8")) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.value = initial();
    }
  }

  get data(): T {
    return this.value;
  }

  /** Applies a change and writes it before returning. */
  update<R>(change: (data: T) => R): R {
    const result = change(this.value);
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, JSON.stringify(this.value));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    return result;
  }
}

/** The folder a local server keeps its data in: `DATA_DIR`, which must be absolute. */
export function dataDirFromEnv(): string {
  const dir = process.env.DATA_DIR;
  if (!dir || !path.isAbsolute(dir)) {
    process.stderr.write("DATA_DIR must be set to an absolute path\n");
    process.exit(2);
  }
  return dir;
}
