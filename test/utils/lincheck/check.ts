/** The checker's entry point: validate, split by P-compositionality, search each part. */
import { Budget } from "./budget.ts";
import { buildCounterExample } from "./counterexample.ts";
import { eventsToOperations, isEventHistory, validateOperations } from "./history.ts";
import { searchPartition } from "./search.ts";
import type { CheckOptions, CheckResult, History, Model, Operation } from "./types.ts";

/**
 * Decides whether `history` is linearizable with respect to `model`.
 *
 * "ok": it is. "illegal": it is not, and `counterExample` shows the shortest failing prefix of the
 * smallest failing partition. "unknown": the budget ran out first (no partition was found illegal).
 */
export function check<S, I, O>(
  model: Model<S, I, O>,
  history: History<I, O>,
  options: CheckOptions = {},
): CheckResult<S, I, O> {
  const ops: readonly Operation<I, O>[] = isEventHistory(history)
    ? eventsToOperations(history)
    : (history as readonly Operation<I, O>[]);
  validateOperations(ops);
  const budget = new Budget(options);
  const parts = model.partition ? model.partition(ops) : [ops];
  // Smallest first: the first part found illegal is then the smallest, the easiest to read.
  const order = parts.map((_, i) => i).sort((a, b) => parts[a]!.length - parts[b]!.length || a - b);
  let timedOut = false;
  for (const i of order) {
    const part = parts[i]!;
    const outcome = searchPartition(model, part, budget);
    if (outcome.result === "illegal") {
      const counterExample = buildCounterExample(
        model,
        part,
        { partition: i, partitions: parts.length },
        outcome,
      );
      return { result: "illegal", counterExample, partitions: parts.length, steps: budget.steps };
    }
    if (outcome.result === "unknown") {
      // The budget is shared, so the parts not yet searched would give up at once too.
      timedOut = true;
      break;
    }
  }
  return { result: timedOut ? "unknown" : "ok", partitions: parts.length, steps: budget.steps };
}
