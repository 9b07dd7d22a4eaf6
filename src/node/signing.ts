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
 * waiting on (respond-on-commit), so under load there is one signature per batch.
 */
export class SignatureScheduler {
  /** A client waits for commit of a transaction that no signature covers yet. */
  private commitWanted = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: SigningHost,
    private readonly settings: SigningSettings,
  ) {}

  /** Starts the interval bound. */
  start(): void {
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
    if (this.host.state.txSinceSignature >= this.settings.maxTransactions) this.sign();
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
    this.host.signed(this.host.state.emitSignature());
  }
}
