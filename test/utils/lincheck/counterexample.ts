/** Turns a failed search into a counter-example a person can read. */
import type { Entry } from "./entries.ts";
import type { CounterExample, Model, Operation } from "./types.ts";

export function buildCounterExample<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  where: { partition: number; partitions: number },
  failure: { stuck: Entry; byPos: Entry[]; longest: number[]; state: S },
): CounterExample<S, I, O> {
  const prefix = failure.byPos.filter((e) => e.isCall && e.pos < failure.stuck.pos).map((e) => ops[e.id]!);
  const stuck = ops[failure.stuck.id]!;
  const order = failure.longest.map((id) => ops[id]!);
  const text = render(model, where, ops.length, prefix, stuck, order, failure.state);
  return {
    partition: where.partition,
    partitionSize: ops.length,
    operations: prefix,
    stuck,
    longest: { order, state: failure.state },
    text,
  };
}

function render<S, I, O>(
  model: Model<S, I, O>,
  where: { partition: number; partitions: number },
  size: number,
  prefix: Operation<I, O>[],
  stuck: Operation<I, O>,
  order: Operation<I, O>[],
  state: S,
): string {
  const describe = (op: Operation<I, O>) =>
    model.describeOperation?.(op.input, op.output) ?? `${json(op.input)} -> ${json(op.output)}`;
  const describeState = (s: S) => model.describeState?.(s) ?? json(s);
  const cut = stuck.return;
  const scope =
    where.partitions > 1
      ? `partition ${where.partition + 1} of ${where.partitions} (${plural(size, "operation")})`
      : `the history (${plural(size, "operation")})`;
  const lines = [
    `In ${scope}, the first ${plural(prefix.length, "operation")} by call time cannot be linearized:`,
    "      call   return  client  operation",
  ];
  for (const op of prefix) {
    const mark = op === stuck ? ">" : " ";
    const note = op.return > cut ? "   (still running at the cut: may or may not have taken effect)" : "";
    lines.push(
      `${mark} ${time(op.call).padStart(8)} ${time(op.return).padStart(8)}  ${String(op.clientId).padStart(6)}  ${describe(op)}${note}`,
    );
  }
  lines.push(
    `> marks the operation returning at ${time(cut)}: no legal order of the operations above gets past it.`,
    `Longest legal order found (${plural(order.length, "operation")}), ending in state ${describeState(state)}:`,
  );
  order.forEach((op, i) => {
    lines.push(`  ${String(i + 1).padStart(3)}. client ${op.clientId}: ${describe(op)}`);
  });
  if (order.length === 0) lines.push("  (none: not even the first operation fits)");
  return lines.join("\n");
}

function time(t: number): string {
  return t === Number.POSITIVE_INFINITY ? "open" : String(t);
}

function json(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
