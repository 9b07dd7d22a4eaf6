import { decodeEntry } from "../../src/ledger/index.ts";
import { check, kvModel } from "../utils/lincheck/index.ts";
import type { WriteRegistry } from "./app.ts";
import type { HistoryOp } from "./client.ts";
import type { SimNode } from "./node.ts";

export interface HistoryCheckInput {
  /** What the clients saw, and each operation's key (`operationOf` of its request ids). */
  history: HistoryOp[];
  historyKeys: string[];
  /** Every node of the run, whose disks say which writes were logged. */
  nodes: Iterable<SimNode>;
  writes: WriteRegistry;
  /** When each committed write committed (the checker's `writeCommitTimes`). */
  writeCommitTimes: Map<string, number>;
  /** Search budget (steps, so verdicts do not depend on the machine). */
  maxSteps: number;
  count(key: string): void;
}

/**
 * Checks the client history. A write whose client timed out is indeterminate to the client, but
 * the simulator knows more. If it committed, it took effect by then (any later linearizable
 * read must see it): its return time becomes its commit time. If no node's log holds it at the
 * end, it never took effect and never will: it leaves the history (a read that saw it would
 * then fail the check, as it should). Only the rest stay open-ended. This keeps the search
 * small without weakening the check.
 */
export function checkHistory(input: HistoryCheckInput): {
  result: "ok" | "illegal" | "unknown";
  counterExample: string;
} {
  const logged = new Set<string>();
  for (const node of input.nodes) {
    for (const entry of node.disk.written().entries) {
      if (entry.isSignature || entry.config) continue;
      const operation = input.writes.operationFor(decodeEntry(entry.data).claimsDigest);
      if (operation !== undefined) logged.add(operation);
    }
  }
  const history: HistoryOp[] = [];
  for (const [i, op] of input.history.entries()) {
    const key = input.historyKeys[i]!;
    const committedAt = op.output.status === "unknown" ? input.writeCommitTimes.get(key) : undefined;
    if (op.output.status !== "unknown") history.push(op);
    else if (committedAt !== undefined)
      history.push({ ...op, output: { status: "ok" }, return: committedAt });
    else if (logged.has(key)) history.push(op);
    else input.count("writes_never_applied");
  }
  const result = check(kvModel, history, { maxSteps: input.maxSteps });
  const counterExample =
    result.result === "illegal" ? (result.counterExample?.text ?? "not linearizable") : "";
  return { result: result.result, counterExample };
}
