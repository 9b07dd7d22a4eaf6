import { GovRequestError } from "./signed-request.ts";

/**
 * Replay windows for signed governance requests: one window per member, ordered by when each
 * request arrived (the verifier's clock), never by the `created_at` the member chose. Pure: the
 * caller passes the time (seconds) to every call; the service keeps the windows in the KV.
 *
 * Why per member and by arrival: with one shared window ordered by created_at, a member could
 * date a burst of requests in the future, fill the window, and every other member's fresh
 * request would then look older than the window and be refused as Stale. Here a member's
 * requests only ever occupy and move that member's own window.
 *
 * The rule that keeps memory bounded and the guard sound: each window has a `horizon` that only
 * moves forward; a request created before it is refused as Stale, and an entry is forgotten only
 * after the horizon has moved past its created_at. So a forgotten request can never come back as
 * new, whatever the clock does later. Entries are forgotten when they are `keepSeconds` old by
 * arrival (then their created_at is already outside the clock allowance, so moving the horizon
 * past it costs an honest request nothing), or, the oldest first, when a member has more than
 * `maxEntries` in its window (that moves only that member's horizon). The digest must cover the
 * request's created_at, so that a replay carries the original created_at: verifyGovRequest's
 * replayDigest (over the COSE signed content) does.
 */

export const DEFAULT_REPLAY_MAX_ENTRIES = 100;
/** Largest per-member window the service keeps, whatever governance sets. */
export const MAX_REPLAY_MAX_ENTRIES = 10_000;

/** One accepted request in a member's window. */
export interface WindowEntry {
  /** Hex SHA-256 of the signed content (the replay digest). */
  digest: string;
  /** When the request was accepted, by the verifier's clock (seconds). */
  arrival: number;
  /** The request's `ccf.gov.msg.created_at` (seconds). */
  createdAt: number;
  /** The request's `ccf.gov.msg.type`. */
  type: string;
}

export interface WindowLimits {
  /** Entries older than this by arrival are forgotten: the past plus future clock allowance. */
  keepSeconds: number;
  /** Most entries kept per member; beyond it the oldest by arrival are forgotten. */
  maxEntries: number;
}

/** What admitting a request changed, for a caller that stores windows entry by entry. */
export interface WindowChange {
  added: WindowEntry;
  forgotten: WindowEntry[];
  /** Set when the horizon moved. */
  horizon?: number;
}

const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

function checkDigest(digest: unknown): string {
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    throw new GovRequestError("InvalidInput", "replay digest must be 64 lowercase hex digits (SHA-256)");
  }
  return digest;
}

function checkSeconds(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new GovRequestError("InvalidInput", `${what} must be a non-negative integer number of seconds`);
  }
  return value;
}

export function checkLimits(limits: WindowLimits): WindowLimits {
  const { keepSeconds, maxEntries } = limits;
  if (!Number.isSafeInteger(keepSeconds) || keepSeconds < 1) {
    throw new GovRequestError("InvalidInput", "keepSeconds must be a positive integer");
  }
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_REPLAY_MAX_ENTRIES) {
    throw new GovRequestError(
      "InvalidInput",
      `maxEntries must be an integer from 1 to ${MAX_REPLAY_MAX_ENTRIES}`,
    );
  }
  return limits;
}

/** Orders entries by arrival, then digest (a total order, so every node stores the same keys). */
function byArrival(a: WindowEntry, b: WindowEntry): number {
  return a.arrival - b.arrival || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
}

/** One member's window. */
export class MemberReplayWindow {
  #horizon: number;
  #entries: WindowEntry[];

  constructor(horizon = 0, entries: WindowEntry[] = []) {
    this.#horizon = checkSeconds(horizon, "horizon");
    const seen = new Set<string>();
    for (const entry of entries) {
      checkDigest(entry.digest);
      checkSeconds(entry.arrival, "arrival");
      checkSeconds(entry.createdAt, "createdAt");
      if (seen.has(entry.digest)) {
        throw new GovRequestError("InvalidInput", `replay window: digest ${entry.digest} appears twice`);
      }
      seen.add(entry.digest);
    }
    this.#entries = [...entries].sort(byArrival);
  }

  /** Requests created before this time are refused. */
  get horizon(): number {
    return this.#horizon;
  }

  get entries(): readonly WindowEntry[] {
    return this.#entries;
  }

  /** Throws GovRequestError (Replay or Stale) if this request must be refused; changes nothing. */
  check(digest: string, createdAt: number): void {
    checkDigest(digest);
    checkSeconds(createdAt, "createdAt");
    if (this.#entries.some((e) => e.digest === digest)) {
      throw new GovRequestError("Replay", `this request (digest ${digest}) was already accepted`);
    }
    if (createdAt < this.#horizon) {
      throw new GovRequestError(
        "Stale",
        `created_at ${createdAt} is before this member's replay window, which starts at ${this.#horizon}: sign a new request`,
      );
    }
  }

  /** Checks, records the request, and forgets what has left the window. */
  admit(request: Omit<WindowEntry, "arrival">, now: number, limits: WindowLimits): WindowChange {
    const { keepSeconds, maxEntries } = checkLimits(limits);
    checkSeconds(now, "now");
    this.check(request.digest, request.createdAt);
    const added: WindowEntry = { ...request, arrival: now };
    const before = this.#horizon;
    const kept = [...this.#entries, added].sort(byArrival);
    const forgotten: WindowEntry[] = [];
    // Expired by arrival; then the oldest arrivals beyond the cap. Whatever is forgotten moves the
    // horizon past its created_at, so a replay of it is refused as Stale.
    while (kept.length > 0 && kept[0]!.arrival < now - keepSeconds) forgotten.push(kept.shift()!);
    while (kept.length > maxEntries) forgotten.push(kept.shift()!);
    for (const entry of forgotten) this.#horizon = Math.max(this.#horizon, entry.createdAt + 1);
    // Entries created before the new horizon are refused by it anyway: no need to keep them.
    for (let i = kept.length - 1; i >= 0; i--) {
      const entry = kept[i]!;
      if (entry.createdAt < this.#horizon && entry !== added) forgotten.push(...kept.splice(i, 1));
    }
    this.#entries = kept;
    return this.#horizon === before ? { added, forgotten } : { added, forgotten, horizon: this.#horizon };
  }

  /** Entries of `type` that arrived at or after `since`. */
  recent(type: string, since: number): WindowEntry[] {
    return this.#entries.filter((e) => e.type === type && e.arrival >= since);
  }
}

/**
 * Every member's window in memory: the same rule as the service's KV-held windows, for callers
 * that verify requests outside a service (tools, tests).
 */
export class ReplayGuard {
  readonly limits: WindowLimits;
  readonly #windows = new Map<string, MemberReplayWindow>();

  constructor(limits: Partial<WindowLimits> = {}) {
    this.limits = checkLimits({
      keepSeconds: limits.keepSeconds ?? 630,
      maxEntries: limits.maxEntries ?? DEFAULT_REPLAY_MAX_ENTRIES,
    });
  }

  window(memberId: string): MemberReplayWindow {
    let window = this.#windows.get(memberId);
    if (!window) {
      window = new MemberReplayWindow();
      this.#windows.set(memberId, window);
    }
    return window;
  }

  /** Entries held across all members. */
  get size(): number {
    let n = 0;
    for (const w of this.#windows.values()) n += w.entries.length;
    return n;
  }

  add(memberId: string, request: Omit<WindowEntry, "arrival">, now: number): WindowChange {
    return this.window(memberId).admit(request, now, this.limits);
  }
}
