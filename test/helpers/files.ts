import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every regular file below `dir`, recursively. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...allFiles(path));
    else out.push(path);
  }
  return out;
}

/** Files below `dir` whose bytes contain `marker`. */
export function filesContaining(dir: string, marker: string): string[] {
  const needle = Buffer.from(marker);
  return allFiles(dir).filter((f) => readFileSync(f).includes(needle));
}
