import type { LedgerState } from "../ledger/index.ts";
import type { Environment } from "./env.ts";

export interface SigningSettings {
  /** Sign after this many transactions without a signature. */
  maxTransactions: number;
  /** Sign before the oldest unsigned transaction is this old. */
  maxIntervalMs: number;
}

export interface SigningHost {
  readonly state: LedgerState;
  readonly env: Environment;
  readonly isPrimary: boolean;
  readonly closing: boolean;
  /** A signature was emitted at `seqno` (snapshots are taken at signatures). */
  signed(seqno: number): void;
}

/**
 * When the primary emits signature transactions: after `maxTransactions`, before the oldest
 * unsigned transaction is `maxIntervalMs` old, and at the end of a write batch that a client is
 * waiting on (respond-on-commit).
 *
 * Paced: while a signature is in flight (emitted, not yet committed) no other is emitted for
 * waiters or the interval; the transactions that arrive meanwhile share the next signature,
 * emitted as soon as the one in flight commits. A lone write finds nothing in flight and is
 * signed at the end of its own batch, as before; under load there is about one signature per
 * commit round trip instead of one per write batch (each is two P-384 signatures on the primary
 * and a verification on every backup). A committed write is still durable on a majority, in the
 * Merkle tree and under a signature: pacing only changes how many writes one signature covers.
 * The `maxTransactions` bound is not paced. Nothing else bounds the wait: within a view, a later
 * signature cannot commit before an earlier one (commit needs the whole prefix on a majority),
 * so a second signature in flight would never commit anything sooner; a signature of an earlier
 * view holds nothing back.
 */
export class SignatureScheduler {
  /** A client waits for commit of a transaction that no signature covers yet. */
  private commitWanted = false;
  private timer: NodeJS.Timeout | undefined;
  /** The newest signature emitted, while the commit point has not reached it. */
  private inFlight: { seqno: number; view: number } | undefined;
  /** A check after the commit point moved is queued. */
  private afterCommitQueued = false;
  /** Signatures emitted, and how many of them the count bound forced (for tests and benchmarks). */
  readonly stats = { signatures: 0, byCount: 0 };

  constructor(
    private readonly host: SigningHost,
    private readonly settings: SigningSettings,
  ) {}

  /** Starts the interval bound and the pacing. */
  start(): void {
    this.host.state.onCommit((commit) => this.committed(commit));
    this.timer = setInterval(() => this.signIfDue(), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** How often the timer looks at the age of unsigned transactions (see signIfDue). */
  private get checkMs(): number {
    return Math.max(1, Math.floor(this.settings.maxIntervalMs / 4));
  }

  /** After each commit: the count bound. */
  afterCommit(): void {
    if (this.host.state.txSinceSignature >= this.settings.maxTransactions) {
      this.stats.byCount++;
      this.sign();
    }
  }

  /**
   * The commit point moved: once it covers the signature in flight, the waiters and the interval
   * may sign again. Deferred to a microtask, since the commit point moves inside a consensus step,
   * where appending a signature must not happen.
   */
  private committed(commit: number): void {
    if (this.inFlight === undefined || commit < this.inFlight.seqno) return;
    this.inFlight = undefined;
    if (this.afterCommitQueued) return;
    this.afterCommitQueued = true;
    queueMicrotask(() => {
      this.afterCommitQueued = false;
      this.signForWaiters();
      this.signIfDue();
    });
  }

  /** True while a signature is in flight (see the class comment). */
  private get paced(): boolean {
    const flight = this.inFlight;
    if (flight === undefined) return false;
    if (this.host.state.commitSeqno >= flight.seqno || this.host.state.view !== flight.view) {
      this.inFlight = undefined;
      return false;
    }
    return true;
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
    if (!this.commitWanted || this.paced) return;
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
    if (this.paced) return;
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
    const seqno = this.host.state.emitSignature();
    this.stats.signatures++;
    this.inFlight = { seqno, view: this.host.state.view };
    this.host.signed(seqno);
  }
}
