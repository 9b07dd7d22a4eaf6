import { GovRequestError } from "./signed-request.ts";

/**
 * Remembers the signed governance requests accepted in a recent window, so that sending the same
 * request again is refused. Pure: the caller passes the time (seconds) to every call.
 *
 * The rule that keeps memory bounded and the guard sound: a `horizon` only ever moves forward
 * (to `now - windowSeconds`, or further when the guard is full), every request created before it
 * is refused as Stale, and only entries created before it are forgotten. So a forgotten request
 * can never come back as new, even if the clock passed in later steps backwards, and the horizon
 * is driven by the verifier's clock, never by a created_at a member chose. This needs the digest
 * to cover the request's created_at, so that a replay carries the same created_at as the original:
 * verifyGovRequest's replayDigest (over the COSE signed content) does.
 */

export const DEFAULT_REPLAY_WINDOW_SECONDS = 600;
export const DEFAULT_REPLAY_MAX_ENTRIES = 10_000;

/** The guard as plain JSON, for persisting it in the KV. */
export interface ReplayGuardState {
  windowSeconds: number;
  maxEntries: number;
  /** Requests created before this time (seconds) are refused. */
  horizon: number;
  /** [digest, createdAt], sorted by digest. */
  entries: [string, number][];
}

export interface ReplayGuardOptions {
  windowSeconds?: number;
  maxEntries?: number;
}

const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

function checkDigest(digest: unknown): string {
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    throw new GovRequestError("InvalidInput", "replay digest must be 64 lowercase hex digits (SHA-256)");
  }
  return digest;
}

function checkSeconds(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new GovRequestError("InvalidInput", `${what} must be a finite number of seconds`);
  }
  return value;
}

/** created_at is whole seconds, as in the COSE header. */
function checkCreatedAt(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new GovRequestError("InvalidInput", `${what} must be a non-negative integer number of seconds`);
  }
  return value;
}

function checkPositiveInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new GovRequestError("InvalidInput", `${what} must be a positive integer`);
  }
  return value;
}

export class ReplayGuard {
  readonly windowSeconds: number;
  readonly maxEntries: number;
  #horizon = 0;
  readonly #entries = new Map<string, number>();

  constructor(opts: ReplayGuardOptions = {}) {
    this.windowSeconds = checkPositiveInteger(
      opts.windowSeconds ?? DEFAULT_REPLAY_WINDOW_SECONDS,
      "windowSeconds",
    );
    this.maxEntries = checkPositiveInteger(opts.maxEntries ?? DEFAULT_REPLAY_MAX_ENTRIES, "maxEntries");
  }

  /** Requests created before this time are refused; 0 until the first prune. */
  get horizon(): number {
    return this.#horizon;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(digest: string): boolean {
    return this.#entries.has(checkDigest(digest));
  }

  /** Throws GovRequestError (Replay or Stale) if this request must be refused; changes nothing. */
  check(digest: string, createdAt: number, now: number): void {
    checkDigest(digest);
    checkCreatedAt(createdAt, "createdAt");
    checkSeconds(now, "now");
    if (this.#entries.has(digest)) {
      throw new GovRequestError("Replay", `this request (digest ${digest}) was already accepted`);
    }
    const cutoff = Math.max(this.#horizon, now - this.windowSeconds);
    if (createdAt < cutoff) {
      throw new GovRequestError(
        "Stale",
        `created_at ${createdAt} is older than the replay window, which starts at ${Math.ceil(cutoff)}`,
      );
    }
  }

  /** Checks, then records the request and forgets what has left the window. */
  add(digest: string, createdAt: number, now: number): void {
    this.check(digest, createdAt, now);
    this.#entries.set(digest, createdAt);
    this.prune(now);
  }

  /** Moves the horizon to `now - windowSeconds` (never back) and forgets entries before it. */
  prune(now: number): void {
    checkSeconds(now, "now");
    this.#raiseHorizon(now - this.windowSeconds);
    if (this.#entries.size > this.maxEntries) this.#evictOldest();
  }

  #raiseHorizon(to: number): void {
    if (to <= this.#horizon) return;
    this.#horizon = to;
    for (const [digest, createdAt] of this.#entries) {
      if (createdAt < to) this.#entries.delete(digest);
    }
  }

  /**
   * Over capacity (a flood of requests inside one window), the horizon moves past the oldest
   * entries: memory stays bounded and soundness holds, at the cost of refusing requests as old
   * as those forgotten.
   */
  #evictOldest(): void {
    const times = [...this.#entries.values()].sort((a, b) => a - b);
    const excess = times.length - this.maxEntries;
    const newestForgotten = times[excess - 1];
    if (newestForgotten !== undefined) this.#raiseHorizon(newestForgotten + 1);
  }

  toJSON(): ReplayGuardState {
    const entries = [...this.#entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      windowSeconds: this.windowSeconds,
      maxEntries: this.maxEntries,
      horizon: this.#horizon,
      entries,
    };
  }

  /** Restores a guard from toJSON()'s output, refusing anything malformed. */
  static fromJSON(value: unknown): ReplayGuard {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new GovRequestError("InvalidInput", "replay guard state must be a JSON object");
    }
    const state = value as Partial<Record<keyof ReplayGuardState, unknown>>;
    const guard = new ReplayGuard({
      windowSeconds: checkPositiveInteger(state.windowSeconds, "replay guard state: windowSeconds"),
      maxEntries: checkPositiveInteger(state.maxEntries, "replay guard state: maxEntries"),
    });
    const horizon = checkSeconds(state.horizon, "replay guard state: horizon");
    if (!Array.isArray(state.entries)) {
      throw new GovRequestError("InvalidInput", "replay guard state: entries must be an array");
    }
    if (state.entries.length > guard.maxEntries) {
      throw new GovRequestError(
        "InvalidInput",
        `replay guard state: ${state.entries.length} entries, more than maxEntries ${guard.maxEntries}`,
      );
    }
    state.entries.forEach((entry: unknown, i) => {
      if (!Array.isArray(entry) || entry.length !== 2) {
        throw new GovRequestError(
          "InvalidInput",
          `replay guard state: entries[${i}] must be [digest, createdAt]`,
        );
      }
      const digest = checkDigest(entry[0]);
      const createdAt = checkCreatedAt(entry[1], `replay guard state: entries[${i}] createdAt`);
      if (guard.#entries.has(digest)) {
        throw new GovRequestError("InvalidInput", `replay guard state: digest ${digest} appears twice`);
      }
      if (createdAt >= horizon) guard.#entries.set(digest, createdAt);
    });
    guard.#horizon = horizon;
    return guard;
  }
}
