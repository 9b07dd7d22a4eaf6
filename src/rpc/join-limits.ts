/**
 * Bounds on `POST /node/join`, which anyone may call: each new join costs an attestation check
 * and, if admitted, a ledger entry and a Pending node that stays until members remove it. Kept
 * in memory on the node that admits joins (the primary); a new primary starts afresh, which
 * costs an attacker at most one more burst per election.
 */

export interface RateLimit {
  /** Requests allowed at once. */
  burst: number;
  /** One more request is allowed per this many milliseconds. */
  everyMs: number;
}

export interface JoinLimits {
  perAddress: RateLimit;
  overall: RateLimit;
  /** Pending nodes one address may have joined; a further join waits until members decide. */
  maxPendingPerAddress: number;
}

/**
 * A few new joins a minute per address, thirty overall: a service adds nodes one at a time, and
 * a joiner polling for its trust is not a new join (it is answered without writing).
 */
export const DEFAULT_JOIN_LIMITS: JoinLimits = {
  perAddress: { burst: 5, everyMs: 12_000 },
  overall: { burst: 30, everyMs: 2_000 },
  maxPendingPerAddress: 4,
};

/** Addresses remembered before idle (full) buckets are dropped. */
const MAX_TRACKED_ADDRESSES = 10_000;
/** What a refusal for too many Pending nodes asks the joiner to wait: members decide at their pace. */
const PENDING_RETRY_SECONDS = 10;

class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    private readonly limit: RateLimit,
    now: number,
  ) {
    this.#tokens = limit.burst;
    this.#last = now;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#last);
    this.#tokens = Math.min(this.limit.burst, this.#tokens + elapsed / this.limit.everyMs);
    this.#last = now;
  }

  /** Milliseconds until a token is there (0: there is one now). */
  waitMs(now: number): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * this.limit.everyMs);
  }

  take(now: number): void {
    this.#refill(now);
    this.#tokens -= 1;
  }

  isFull(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.limit.burst;
  }
}

export interface JoinRefusal {
  code: "TooManyJoinRequests" | "TooManyPendingJoins";
  message: string;
  retryAfterSeconds: number;
}

export class JoinLimiter {
  readonly #limits: JoinLimits;
  readonly #now: () => number;
  readonly #perAddress = new Map<string, TokenBucket>();
  readonly #overall: TokenBucket;
  readonly #pendingBy = new Map<string, Set<string>>();

  constructor(limits: JoinLimits = DEFAULT_JOIN_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#overall = new TokenBucket(limits.overall, now());
  }

  /**
   * Whether a new join from `address` may go ahead; if so, it is counted. `isPending` says
   * whether a node this address joined earlier is still Pending.
   */
  admit(address: string, isPending: (nodeId: string) => boolean): JoinRefusal | undefined {
    const now = this.#now();
    const pending = this.#pendingBy.get(address);
    if (pending) {
      for (const id of pending) if (!isPending(id)) pending.delete(id);
      if (pending.size === 0) this.#pendingBy.delete(address);
      else if (pending.size >= this.#limits.maxPendingPerAddress) {
        return {
          code: "TooManyPendingJoins",
          message: `${pending.size} nodes joined from this address are still Pending (at most ${this.#limits.maxPendingPerAddress}): members must trust or remove them first`,
          retryAfterSeconds: PENDING_RETRY_SECONDS,
        };
      }
    }
    const bucket = this.#bucketFor(address, now);
    const waitAddress = bucket.waitMs(now);
    const waitOverall = this.#overall.waitMs(now);
    if (waitAddress > 0 || waitOverall > 0) {
      const wait = Math.max(waitAddress, waitOverall);
      return {
        code: "TooManyJoinRequests",
        message:
          waitAddress > 0
            ? `too many join requests from this address: at most ${this.#limits.perAddress.burst} at once, then one per ${this.#limits.perAddress.everyMs / 1000} s`
            : `too many join requests: at most ${this.#limits.overall.burst} at once, then one per ${this.#limits.overall.everyMs / 1000} s`,
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
      };
    }
    bucket.take(now);
    this.#overall.take(now);
    return undefined;
  }

  /** Remembers that `address` joined `nodeId` as Pending. */
  recordPending(address: string, nodeId: string): void {
    let set = this.#pendingBy.get(address);
    if (!set) {
      set = new Set();
      this.#pendingBy.set(address, set);
    }
    set.add(nodeId);
  }

  #bucketFor(address: string, now: number): TokenBucket {
    let bucket = this.#perAddress.get(address);
    if (!bucket) {
      if (this.#perAddress.size >= MAX_TRACKED_ADDRESSES) {
        // A full bucket holds no information: forgetting it changes nothing.
        for (const [key, b] of this.#perAddress) if (b.isFull(now)) this.#perAddress.delete(key);
      }
      bucket = new TokenBucket(this.#limits.perAddress, now);
      this.#perAddress.set(address, bucket);
    }
    return bucket;
  }
}
