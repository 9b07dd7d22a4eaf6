import { NetError } from "./errors.ts";

/** Reconnect delays: exponential from `initialMs`, capped at `maxMs`. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 5_000 };

export function validateBackoff(backoff: Backoff): Backoff {
  const { initialMs, maxMs } = backoff;
  if (!Number.isFinite(initialMs) || initialMs <= 0) {
    throw new NetError("config", `backoff.initialMs must be a positive number of ms, got ${initialMs}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new NetError("config", `backoff.maxMs must be a number >= initialMs (${initialMs}), got ${maxMs}`);
  }
  return { initialMs, maxMs };
}

/**
 * The wait before reconnect attempt number `attempt` (0 for the first retry). The ceiling doubles
 * per attempt up to `maxMs`; the actual wait is uniform in [ceiling/2, ceiling] ("equal jitter"),
 * so nodes that lost a peer at the same moment do not all redial in lockstep, yet no wait is
 * ever near zero. `random` is a number in [0, 1), passed in so this stays a pure function.
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: number): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52);
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** exponent);
  const r = Math.min(Math.max(random, 0), 1);
  return ceiling / 2 + (ceiling / 2) * r;
}
