import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { budget } from "../e2e/waits.ts";

export const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `coco <args>` to completion (killed after a minute, stretched by the load: tsx starts slowly then). */
export function coco(args: string[], cwd?: string): CliResult {
  const result = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd,
    encoding: "utf8",
    timeout: budget(60_000),
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts `coco <args>` in the background. */
export function cocoBackground(args: string[], cwd?: string) {
  return spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export { freePort, reservePorts } from "./ports.ts";
