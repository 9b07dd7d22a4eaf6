/**
 * Waiting in e2e tests: polls with a deadline, and deadlines sized for the machine's load. A test
 * states how long a phase takes on an idle machine; `budget` stretches that by the load at the
 * moment the phase starts, so the same test passes at load average 20 on two cores without
 * waiting longer than it must on an idle one (a wait ends as soon as its condition holds).
 */
import { availableParallelism, loadavg } from "node:os";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The sandbox process ended before it was open: no point in waiting any longer. */
export class SandboxExited extends Error {
  constructor(code: number | null) {
    super(`the sandbox exited (${code}) before it was open`);
  }
}

/**
 * How much slower than idle this machine runs now: the 1-minute load average per core, never
 * below 1 and capped at 8 (past that a wait that fails is a real hang, not a slow machine).
 */
export function loadFactor(): number {
  const perCore = loadavg()[0]! / Math.max(1, availableParallelism());
  return Math.min(8, Math.max(1, perCore));
}

/** A phase's time limit: what it needs on an idle machine, stretched by the load right now. */
export function budget(idleMs: number): number {
  return Math.round(idleMs * loadFactor());
}

/**
 * Polls `probe` until it returns true; throws after `budget(timeoutMs)` (the idle-machine limit,
 * stretched by the load) naming what it waited for.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
  intervalMs = 100,
): Promise<void> {
  const limit = budget(timeoutMs);
  const deadline = Date.now() + limit;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (e) {
      if (e instanceof SandboxExited) throw e;
      lastError = e;
    }
    await sleep(intervalMs);
  }
  const cause = lastError ? ` (last error: ${(lastError as Error).message})` : "";
  throw new Error(
    `timed out after ${limit} ms (load ${loadavg()[0]!.toFixed(1)}) waiting for ${what}${cause}`,
  );
}

export function connectionRefused(e: unknown): boolean {
  for (let err = e as { code?: string; cause?: unknown } | undefined; err; err = err.cause as typeof err) {
    if (err.code === "ECONNREFUSED") return true;
  }
  return false;
}
