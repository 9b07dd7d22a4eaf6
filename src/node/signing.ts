import type { ServiceCurve } from "../crypto/index.ts";
import type { LedgerState } from "../ledger/index.ts";
import type { CommitTrace } from "./commit-trace.ts";
import type { Environment } from "./env.ts";

export interface SigningSettings {
  /** Sign after this many transactions without a signature. */
  maxTransactions: number;
  /** Sign before the oldest unsigned transaction is this old. */
  maxIntervalMs: number;
  /**
   * Signatures in flight (emitted, not yet committed) at most, for waiters and the interval
   * (see SignatureScheduler). 1 is strict pacing: one signature per commit round. Default 2 here;
   * a node passes its curve's (`defaultMaxInFlight`) unless configured.
   */
  maxInFlight?: number;
}

export interface SigningHost {
  readonly state: LedgerState;
  readonly env: Environment;
  readonly isPrimary: boolean;
  readonly closing: boolean;
  /** A signature was emitted at `seqno` (snapshots are taken at signatures). */
  signed(seqno: number): void;
  /** Benchmarks only: the commit rounds' time line (commit-trace.ts). */
  readonly trace?: CommitTrace | undefined;
}

/**
 * `maxInFlight` when the configuration leaves it out: 2 (pipelined) on P-256, whose signatures
 * cost tens of microseconds, 1 (strict pacing) on P-384, where each extra signature transaction is
 * about 1.6 ms of the primary's CPU and measured slower under load (BENCHMARKS.md, "Session 10").
 */
export function defaultMaxInFlight(curve: ServiceCurve): number {
  return curve === "secp256r1" ? 2 : 1;
}

/**
 * A signature may join one in flight once the newest in flight is this share of a commit round old
 * (see SignatureScheduler).
 */
export const PIPELINE_SHARE = 0.5;

/**
 * When the primary emits signature transactions: after `maxTransactions`, before the oldest
 * unsigned transaction is `maxIntervalMs` old, and at the end of a write batch that a client is
 * waiting on (respond-on-commit).
 *
 * Paced and pipelined. A lone write finds nothing in flight and is signed at the end of its own
 * batch. Under load, a signature in flight (emitted, not yet committed) holds the next one back
 * for half a commit round (PIPELINE_SHARE of the recent emission-to-commit time), and at most
 * `maxInFlight` signatures are in flight at once; the transactions that arrive meanwhile share the
 * next signature. Holding back keeps the signatures few (each is two P-384 signatures on the
 * primary and a verification on every backup); not waiting for the commit keeps the latency down.
 * Within a view a later signature cannot commit before an earlier one (commit needs the whole
 * prefix on a majority), but the entries it covers were replicated as they were appended, so its
 * writes no longer wait for the earlier one to commit and then for a whole round of their own
 * (measured in BENCHMARKS.md, "Session 10": worth it where signatures are cheap, so the node's
 * default follows its curve, `defaultMaxInFlight`).
 *
 * A committed write is still durable on a majority, in the Merkle tree and under a signature:
 * pacing only changes how many writes one signature covers and when it goes out. The
 * `maxTransactions` bound is not paced. A signature of an earlier view holds nothing back.
 */
export class SignatureScheduler {
  /** A client waits for commit of a transaction that no signature covers yet. */
  private commitWanted = false;
  private timer: NodeJS.Timeout | undefined;
  /** A check once the newest signature in flight is old enough to be joined by another. */
  private joinTimer: NodeJS.Timeout | undefined;
  /** Signatures emitted that the commit point has not reached, oldest first (`at`: env.now()). */
  private readonly inFlight: Array<{ seqno: number; view: number; at: number }> = [];
  /** Emission to commit of recent signatures (ms, a moving average); undefined until one commits. */
  private roundMs: number | undefined;
  /** A check after the commit point moved is queued. */
  private afterCommitQueued = false;
  /**
   * Signatures emitted, how many of them the count bound forced, and how many joined another in
   * flight (for tests and benchmarks).
   */
  readonly stats = { signatures: 0, byCount: 0, pipelined: 0 };
  private readonly maxInFlight: number;

  constructor(
    private readonly host: SigningHost,
    private readonly settings: SigningSettings,
  ) {
    this.maxInFlight = Math.max(1, settings.maxInFlight ?? 2);
  }

  /** Starts the interval bound and the pacing. */
  start(): void {
    this.host.state.onCommit((commit) => this.committed(commit));
    this.timer = setInterval(() => this.signIfDue(), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
  }

  /** How often the timer looks at the age of unsigned transactions (see signIfDue). */
  private get checkMs(): number {
    return Math.max(1, Math.floor(this.settings.maxIntervalMs / 4));
  }

  /** After each commit: the count bound. */
  afterCommit(): void {
    this.host.trace?.appended();
    if (this.host.state.txSinceSignature >= this.settings.maxTransactions) {
      this.stats.byCount++;
      this.sign();
    }
  }

  /**
   * The commit point moved: the signatures it covers are no longer in flight, and the waiters and
   * the interval may sign again. Deferred to a microtask, since the commit point moves inside a
   * consensus step, where appending a signature must not happen.
   */
  private committed(commit: number): void {
    this.host.trace?.committed(commit);
    const first = this.inFlight[0];
    if (first === undefined || commit < first.seqno) return;
    const now = this.host.env.now();
    let done = 0;
    while (done < this.inFlight.length && this.inFlight[done]!.seqno <= commit) {
      const round = Math.max(0, now - this.inFlight[done]!.at);
      this.roundMs = this.roundMs === undefined ? round : this.roundMs + (round - this.roundMs) / 8;
      done++;
    }
    this.inFlight.splice(0, done);
    if (this.afterCommitQueued) return;
    this.afterCommitQueued = true;
    queueMicrotask(() => {
      this.afterCommitQueued = false;
      this.signForWaiters();
      this.signIfDue();
    });
  }

  /**
   * How long (ms) a new signature for waiters or the interval must still wait: 0 when none is in
   * flight, Infinity when `maxInFlight` are or no round has been measured yet (strict pacing),
   * else until the newest in flight is PIPELINE_SHARE of a commit round old.
   */
  private holdMs(): number {
    const { commitSeqno, view } = this.host.state;
    // Committed, or of an earlier view (which may never commit in this one): not in flight.
    while (
      this.inFlight.length > 0 &&
      (this.inFlight[0]!.seqno <= commitSeqno || this.inFlight[0]!.view !== view)
    )
      this.inFlight.shift();
    const newest = this.inFlight.at(-1);
    if (newest === undefined) return 0;
    if (this.inFlight.length >= this.maxInFlight || this.roundMs === undefined)
      return Number.POSITIVE_INFINITY;
    const share = this.roundMs * PIPELINE_SHARE;
    // At most `share` from now: a wall clock that went back must not hold a signature longer.
    return Math.min(share, Math.max(0, newest.at + share - this.host.env.now()));
  }

  /** Signatures emitted and not yet committed in the current view. */
  get signaturesInFlight(): number {
    this.holdMs();
    return this.inFlight.length;
  }

  /**
   * Respond-on-commit asks for a signature soon instead of at the next interval: the next
   * group-commit batch ends with one, so the wait is about one fdatasync, and under load there
   * is one signature per batch rather than one per request.
   */
  wantCommit(): void {
    if (!this.host.closing && this.host.state.txSinceSignature > 0) this.commitWanted = true;
  }

  /** Called before each write batch and when one is durable. */
  signForWaiters(): void {
    if (!this.commitWanted) return;
    const hold = this.holdMs();
    if (hold > 0) {
      // Held for a while only: look again when the newest in flight may be joined.
      if (hold !== Number.POSITIVE_INFINITY && this.joinTimer === undefined && !this.host.closing) {
        this.joinTimer = setTimeout(() => {
          this.joinTimer = undefined;
          this.signForWaiters();
        }, Math.ceil(hold));
        this.joinTimer.unref();
      }
      return;
    }
    this.commitWanted = false;
    this.signIfPending();
  }

  /**
   * The interval bound: signs once the oldest unsigned transaction is about to be
   * `maxIntervalMs` old. Checking its age, rather than signing on every timer tick, leaves out
   * the timer's signatures under load, where clients waiting for commit already end every
   * batch with one (the timer's were a third of all signatures, each two P-384 signatures).
   */
  private signIfDue(): void {
    if (this.holdMs() > 0) return;
    const since = this.host.state.unsignedSince;
    if (since === undefined) return;
    const age = this.host.env.now() - since;
    // A negative age means the wall clock went back: the age is unknown, so sign now rather
    // than wait (with nothing committed) until the clock reads `since` again.
    if (age < 0 || age >= this.settings.maxIntervalMs - this.checkMs) this.signIfPending();
  }

  signIfPending(): void {
    if (!this.host.closing && this.host.isPrimary && this.host.state.txSinceSignature > 0) this.sign();
  }

  sign(): void {
    const pending = this.signaturesInFlight;
    const started = this.host.trace ? performance.now() : 0;
    const seqno = this.host.state.emitSignature();
    this.host.trace?.signed(seqno, pending, performance.now() - started);
    this.stats.signatures++;
    if (pending > 0) this.stats.pipelined++;
    this.inFlight.push({ seqno, view: this.host.state.view, at: this.host.env.now() });
    this.host.signed(seqno);
  }
}
