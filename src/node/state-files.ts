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

/** The small files beside the ledger that a node keeps across restarts. */
export class StateFiles {
  private commitToSave = 0;
  private commitSaved = 0;
  /** The commit hint being written, if any (one write at a time: they share a temporary file). */
  private commitHintWrite: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

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

  /** Notes a commit point to remember; `saveCommitHint` writes it. */
  noteCommit(seqno: number): void {
    this.commitToSave = seqno;
  }

  /**
   * Remembers the commit point across restarts, at most once a tick. Any value written was a real
   * commit point, so a stale file only makes a restarted node more cautious, never wrong; hence
   * the write runs in the background (synchronously, its two fsyncs held the event loop for
   * milliseconds every tick) and a failed one is only logged.
   */
  saveCommitHint(): void {
    if (this.commitHintWrite || this.commitToSave <= this.commitSaved) return;
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

  /** Waits for a hint being written, then writes the latest commit point if it is newer. */
  async flushCommitHint(): Promise<void> {
    await this.commitHintWrite;
    this.saveCommitHint();
    await this.commitHintWrite;
  }

  get recovering(): boolean {
    return existsSync(join(this.dir, RECOVERY_FILE));
  }
}
