import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { HardState } from "../consensus/index.ts";
import { writeFileAtomic, writeFileAtomicAsync } from "./identity.ts";
import { NodeError } from "./node-error.ts";

/** The last commit point this node saw, so a restart knows which configurations are settled. */
const COMMIT_FILE = "commit.json";
/** The consensus hard state (view and vote), written before any message that depends on it. */
const HARD_STATE_FILE = "consensus.json";
/** Present while a recovering node waits for the recovery members' shares. */
export const RECOVERY_FILE = "recovery.json";

/**
 * How often, at most, the commit hint is written while the node runs (a commit that settles a
 * configuration change is written at the next tick instead; see `saveCommitHint`).
 */
export const COMMIT_HINT_INTERVAL_MS = 1_000;

export interface StateFilesOptions {
  /** At most one commit hint per this many milliseconds (default COMMIT_HINT_INTERVAL_MS). */
  commitHintIntervalMs?: number;
  /** A monotonic clock in milliseconds (default `performance.now`): a wall clock may jump back. */
  now?: () => number;
}

/** The small files beside the ledger that a node keeps across restarts. */
export class StateFiles {
  private commitToSave = 0;
  private commitSaved = 0;
  /** The latest commit point noted that settled a configuration change (written at the next tick). */
  private settlingCommit = 0;
  /** When the last commit hint write started (monotonic ms). */
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** The commit hint being written, if any (one write at a time: they share a temporary file). */
  private commitHintWrite: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    opts: StateFilesOptions = {},
  ) {
    this.intervalMs = opts.commitHintIntervalMs ?? COMMIT_HINT_INTERVAL_MS;
    this.now = opts.now ?? (() => performance.now());
  }

  readHardState(): HardState | undefined {
    const path = join(this.dir, HARD_STATE_FILE);
    if (!existsSync(path)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new NodeError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    const hard = parsed as HardState;
    if (
      typeof parsed !== "object" ||
      parsed === null ||
      !Number.isSafeInteger(hard.view) ||
      hard.view < 0 ||
      !(hard.votedFor === null || typeof hard.votedFor === "string")
    ) {
      throw new NodeError(`${path} does not hold a consensus state {view, votedFor}`);
    }
    return { view: hard.view, votedFor: hard.votedFor };
  }

  /** Synchronous: consensus sends nothing that depends on the hard state before it is durable. */
  saveHardState(hard: HardState): void {
    writeFileAtomic(join(this.dir, HARD_STATE_FILE), JSON.stringify(hard));
  }

  readCommitHint(): number {
    const path = join(this.dir, COMMIT_FILE);
    if (!existsSync(path)) return 0;
    try {
      const value = (JSON.parse(readFileSync(path, "utf8")) as { commit_seqno?: unknown }).commit_seqno;
      return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Notes a commit point to remember; `saveCommitHint` writes it. `settlesConfiguration`: a
   * configuration change lies between the previous commit point noted and this one.
   */
  noteCommit(seqno: number, settlesConfiguration = false): void {
    this.commitToSave = seqno;
    if (settlesConfiguration) this.settlingCommit = Math.max(this.settlingCommit, seqno);
  }

  /**
   * Remembers the commit point across restarts, called once a tick. Any value written was a real
   * commit point, so a stale file only makes a restarted node more cautious, never wrong; hence
   * the write runs in the background (synchronously, its two fsyncs held the event loop for
   * milliseconds every tick) and a failed one is only logged.
   *
   * What a restarted node gets from the hint is the commit point its Raft starts from, and with it
   * which configurations are settled: until a restarted node re-learns the commit point, every
   * configuration change after the hint needs a quorum again. So a commit that settles a
   * configuration change is written at the next tick; any other is written at most once per
   * `commitHintIntervalMs` (1 s), and the hint after a crash is at most that, plus a tick and one
   * write, behind. A stale hint otherwise costs a restarted node only entries it re-learns as
   * committed from the primary's first message. Each write is an atomic replacement (temporary
   * file, fsync, rename, directory fsync: about 1 ms of CPU), which is why it is not made every
   * tick: under load that was 10 a second on every node.
   */
  saveCommitHint(): void {
    if (this.commitHintWrite || this.commitToSave <= this.commitSaved) return;
    const now = this.now();
    if (this.settlingCommit <= this.commitSaved && now - this.lastWriteAt < this.intervalMs) return;
    this.lastWriteAt = now;
    this.writeHint();
  }

  private writeHint(): void {
    const seqno = this.commitToSave;
    this.commitHintWrite = writeFileAtomicAsync(
      join(this.dir, COMMIT_FILE),
      JSON.stringify({ commit_seqno: seqno }),
    )
      .then(
        () => {
          this.commitSaved = Math.max(this.commitSaved, seqno);
        },
        (e) => this.log.warn({ err: e }, "could not save the commit point hint"),
      )
      .finally(() => {
        this.commitHintWrite = undefined;
      });
  }

  /** Resolves once the commit hint being written, if any, is written (or failed). */
  async commitHintSettled(): Promise<void> {
    await this.commitHintWrite;
  }

  /** Waits for a hint being written, then writes the latest commit point if it is newer. */
  async flushCommitHint(): Promise<void> {
    await this.commitHintWrite;
    if (!this.commitHintWrite && this.commitToSave > this.commitSaved) this.writeHint();
    await this.commitHintWrite;
  }

  get recovering(): boolean {
    return existsSync(join(this.dir, RECOVERY_FILE));
  }
}
