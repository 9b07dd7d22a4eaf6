import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

/**
 * The time line of commit rounds, for benchmarks only (bench/commit-trace.ts reads it). Off unless
 * the environment variable COCO_COMMIT_TRACE names a directory: then each node appends JSON lines
 * to `<dir>/<nodeId>.jsonl`, about once a second. When it is off, `createCommitTrace` returns
 * undefined and nothing is wrapped, so the hot path pays one `undefined` check per signature.
 *
 * Every event is keyed by the seqno of a signature transaction and stamped with the wall clock in
 * milliseconds (`performance.timeOrigin + performance.now()`), which all processes of one machine
 * share, so a backup's events line up with the primary's.
 *
 * - primary: `sig` (emitted: writes covered, their mean and longest wait since they were
 *   appended, signatures in flight before it), `send` (the AppendEntries carrying it, per backup),
 *   `ack` (a backup's acknowledgement that covers it, durable there), `durable` (its own durable
 *   write covers it), `commit` (the commit point reached it).
 * - backup: `recv` (the AppendEntries carrying it arrived), `durable`, `acked` (the
 *   acknowledgement covering it was handed to the channel).
 * - both: `eld`, the event loop's delay over the last second (ms: mean, p50, p99, max).
 */
export class CommitTrace {
  private lines: string[] = [];
  private readonly file: string;
  /** Signatures seen and not yet covered by each kind of event (few: about one per commit round). */
  private readonly pending = new Map<string, number[]>();
  private unsigned: number[] = [];
  private readonly delay = monitorEventLoopDelay({ resolution: 1 });
  private readonly timer: NodeJS.Timeout;

  constructor(dir: string, nodeId: string) {
    this.file = join(dir, `${nodeId}.jsonl`);
    this.delay.enable();
    this.timer = setInterval(() => this.flush(), 1000);
    this.timer.unref();
    process.once("exit", () => this.flush());
  }

  static now(): number {
    return performance.timeOrigin + performance.now();
  }

  private emit(event: Record<string, unknown>): void {
    this.lines.push(JSON.stringify({ ...event, t: CommitTrace.now() }));
  }

  private flush(): void {
    const d = this.delay;
    if (d.count > 0) {
      this.emit({
        k: "eld",
        mean: d.mean / 1e6,
        p50: d.percentile(50) / 1e6,
        p99: d.percentile(99) / 1e6,
        max: d.max / 1e6,
      });
      d.reset();
    }
    if (this.lines.length === 0) return;
    const text = `${this.lines.join("\n")}\n`;
    this.lines = [];
    try {
      appendFileSync(this.file, text);
    } catch {
      // A benchmark's trace is not worth stopping a node for.
    }
  }

  /** A transaction was appended on the primary (its wait for a signature starts). */
  appended(): void {
    this.unsigned.push(CommitTrace.now());
  }

  /**
   * The primary emitted the signature at `seqno` with `inFlight` others not yet committed; making
   * it (both signatures, the transaction, its entry) held the event loop `busyMs`.
   */
  signed(seqno: number, inFlight: number, busyMs: number): void {
    const now = CommitTrace.now();
    let sum = 0;
    let max = 0;
    for (const t of this.unsigned) {
      sum += now - t;
      max = Math.max(max, now - t);
    }
    const n = this.unsigned.length;
    this.unsigned = [];
    this.emit({ k: "sig", s: seqno, n, wait: n > 0 ? sum / n : 0, waitMax: max, inFlight, busyMs });
    for (const kind of ["durable", "commit"]) this.watch(kind, seqno);
  }

  private watch(kind: string, seqno: number): void {
    const list = this.pending.get(kind);
    if (list) list.push(seqno);
    else this.pending.set(kind, [seqno]);
  }

  /** Emits `kind` for every watched signature at or below `seqno`. */
  private reach(kind: string, seqno: number, from?: string): void {
    const list = this.pending.get(from === undefined ? kind : `${kind}:${from}`);
    if (!list || list.length === 0 || list[0]! > seqno) return;
    let i = 0;
    while (i < list.length && list[i]! <= seqno)
      this.emit({ k: kind, s: list[i++]!, ...(from ? { from } : {}) });
    list.splice(0, i);
  }

  committed(seqno: number): void {
    this.reach("commit", seqno);
  }

  durable(seqno: number): void {
    this.reach("durable", seqno);
  }

  /** A consensus message is handed to the channel to `to`. */
  sent(to: string, message: unknown): void {
    const m = message as {
      type?: string;
      entries?: Array<{ seqno: number; isSignature: boolean }>;
      durableSeqno?: number;
    };
    if (m.type === "append_entries" && m.entries) {
      for (const e of m.entries) {
        if (!e.isSignature) continue;
        this.emit({ k: "send", s: e.seqno, to });
        this.watch(`ack:${to}`, e.seqno);
      }
    } else if (m.type === "append_entries_response" && typeof m.durableSeqno === "number") {
      this.reach("acked", m.durableSeqno);
    }
  }

  /** A consensus message arrived from `from`. */
  received(from: string, message: unknown): void {
    const m = message as {
      type?: string;
      entries?: Array<{ seqno: number; isSignature: boolean }>;
      durableSeqno?: number;
      success?: boolean;
    };
    if (m.type === "append_entries" && m.entries) {
      for (const e of m.entries) {
        if (!e.isSignature) continue;
        this.emit({ k: "recv", s: e.seqno, from });
        this.watch("durable", e.seqno);
        this.watch("acked", e.seqno);
      }
    } else if (
      (m.type === "append_entries_response" || m.type === "heartbeat_response") &&
      typeof m.durableSeqno === "number"
    ) {
      this.reach("ack", m.durableSeqno, from);
    }
  }
}

/** The node's trace when COCO_COMMIT_TRACE is set, else undefined (see CommitTrace). */
export function createCommitTrace(nodeId: string): CommitTrace | undefined {
  const dir = process.env.COCO_COMMIT_TRACE;
  return dir ? new CommitTrace(dir, nodeId) : undefined;
}
