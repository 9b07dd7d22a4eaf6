/**
 * The doubly linked list of call and return entries that Wing & Gong's search walks (Lowe's
 * representation). Linearizing an operation "lifts" its two entries out of the list; backtracking
 * "unlifts" them back into the very same places, which is O(1) because the neighbours they
 * pointed to are restored in reverse order.
 */
import { compareTimePoints } from "./history.ts";
import type { Operation } from "./types.ts";

export interface Entry {
  isCall: boolean;
  /** Index of the operation in the partition being checked. */
  id: number;
  /** Position in the original time order (the sentinel head is -1). */
  pos: number;
  /** A call's return entry (a return's own match is unused). */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** Builds the list for `ops` in time order; returns its sentinel head and the entries by position. */
export function buildEntries<I, O>(ops: readonly Operation<I, O>[]): { head: Entry; byPos: Entry[] } {
  const points: { time: number; isCall: boolean; id: number }[] = [];
  ops.forEach((op, id) => {
    points.push({ time: op.call, isCall: true, id }, { time: op.return, isCall: false, id });
  });
  points.sort(compareTimePoints);
  const head: Entry = { isCall: false, id: -1, pos: -1, match: null, prev: null, next: null };
  const byPos: Entry[] = [];
  const callOf: Entry[] = [];
  let prev = head;
  points.forEach((p, pos) => {
    const entry: Entry = { isCall: p.isCall, id: p.id, pos, match: null, prev, next: null };
    if (p.isCall) callOf[p.id] = entry;
    else callOf[p.id]!.match = entry;
    prev.next = entry;
    prev = entry;
    byPos.push(entry);
  });
  return { head, byPos };
}

/** Removes a call entry and its return entry from the list. */
export function lift(call: Entry): void {
  const ret = call.match!;
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts back what `lift(call)` removed; must undo lifts in reverse order. */
export function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}
