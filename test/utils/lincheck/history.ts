/** Validation of histories and conversion between the operation and event forms. */
import { LincheckError } from "./errors.ts";
import type { Event, History, Operation } from "./types.ts";

/** True if `history` is in event form (its elements have a `kind`). An empty history is neither: []. */
export function isEventHistory<I, O>(history: History<I, O>): history is readonly Event<I, O>[] {
  const first = history[0];
  return first !== undefined && "kind" in first;
}

/** Throws a LincheckError naming the first operation whose timestamps make no sense. */
export function validateOperations<I, O>(history: readonly Operation<I, O>[]): void {
  history.forEach((op, i) => {
    if (typeof op !== "object" || op === null) throw new LincheckError(`operation ${i}: not an object`);
    if (typeof op.call !== "number" || !Number.isFinite(op.call)) {
      throw new LincheckError(`operation ${i}: call time must be a finite number, got ${String(op.call)}`);
    }
    if (typeof op.return !== "number" || Number.isNaN(op.return)) {
      throw new LincheckError(
        `operation ${i}: return time must be a number or Infinity, got ${String(op.return)}`,
      );
    }
    if (op.return < op.call) {
      throw new LincheckError(`operation ${i}: returns at ${op.return}, before its call at ${op.call}`);
    }
  });
}

/**
 * Turns an event list into operations, using each event's position as its timestamp. Every call must
 * have exactly one later return with the same id; for an operation whose outcome is unknown, give it a
 * return event at the end carrying an output the model reads as "unknown".
 */
export function eventsToOperations<I, O>(events: readonly Event<I, O>[]): Operation<I, O>[] {
  const open = new Map<number, { clientId: number; input: I; call: number }>();
  const seen = new Set<number>();
  const ops: Operation<I, O>[] = [];
  events.forEach((ev, i) => {
    if (ev.kind === "call") {
      if (seen.has(ev.id)) throw new LincheckError(`event ${i}: id ${ev.id} is called twice`);
      seen.add(ev.id);
      open.set(ev.id, { clientId: ev.clientId, input: ev.value, call: i });
    } else if (ev.kind === "return") {
      const call = open.get(ev.id);
      if (call === undefined)
        throw new LincheckError(`event ${i}: return for id ${ev.id} has no open call before it`);
      open.delete(ev.id);
      ops.push({ clientId: call.clientId, input: call.input, output: ev.value, call: call.call, return: i });
    } else {
      throw new LincheckError(`event ${i}: kind must be "call" or "return"`);
    }
  });
  const [id] = open.keys();
  if (id !== undefined) throw new LincheckError(`call for id ${id} has no return event`);
  return ops.sort((a, b) => a.call - b.call);
}

/** Turns operations into an event list (ids are indexes into `history`); open operations return last. */
export function operationsToEvents<I, O>(history: readonly Operation<I, O>[]): Event<I, O>[] {
  validateOperations(history);
  const points: { time: number; isCall: boolean; id: number }[] = [];
  history.forEach((op, id) => {
    points.push({ time: op.call, isCall: true, id }, { time: op.return, isCall: false, id });
  });
  points.sort(compareTimePoints);
  return points.map(({ isCall, id }) => {
    const op = history[id]!;
    return isCall
      ? { kind: "call", clientId: op.clientId, id, value: op.input }
      : { kind: "return", clientId: op.clientId, id, value: op.output };
  });
}

/**
 * Order of call and return points. At equal times a call comes before a return, so operations that
 * merely touch (one returns at the instant another is called) count as concurrent: the lenient
 * reading, which never reports a violation that a finer clock could explain away.
 */
export function compareTimePoints(
  a: { time: number; isCall: boolean; id: number },
  b: { time: number; isCall: boolean; id: number },
): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
  return a.id - b.id;
}
