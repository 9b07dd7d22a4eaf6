import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** A file or directory that a running node removed between listing and reading (a temporary file renamed into place). */
function gone(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === "ENOENT";
}

/** Every regular file below `dir`, recursively. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (e) {
      if (gone(e)) continue;
      throw e;
    }
    if (isDirectory) out.push(...allFiles(path));
    else out.push(path);
  }
  return out;
}

/**
 * Files below `dir` whose bytes contain `marker`. Nodes may still be running: a file that
 * disappears before it is read (an atomic write's temporary file, renamed into place) is skipped,
 * since its bytes are read under its final name.
 */
export function filesContaining(dir: string, marker: string): string[] {
  const needle = Buffer.from(marker);
  return allFiles(dir).filter((f) => {
    try {
      return readFileSync(f).includes(needle);
    } catch (e) {
      if (gone(e)) return false;
      throw e;
    }
  });
}
