import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";

export const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `coco <args>` to completion. */
export function coco(args: string[], cwd?: string): CliResult {
  const result = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 60_000,
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

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
