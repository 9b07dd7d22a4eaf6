/**
 * Wing & Gong's search for a linearization of one partition, with Lowe's improvements:
 * the entries list with lift/unlift, and a memo of (set of linearized operations, model state)
 * pairs already explored, so that no configuration is searched twice.
 *
 * The search always tries to linearize next some operation whose call comes before the first
 * return still in the list. Hitting that return means the current prefix cannot be extended, so
 * it backtracks. The furthest return it ever reaches marks the shortest prefix of the history
 * that cannot be linearized, which makes a good counter-example.
 */
import type { Budget } from "./budget.ts";
import { buildEntries, type Entry, lift, unlift } from "./entries.ts";
import type { Model, Operation } from "./types.ts";

export type SearchOutcome<S> =
  | { result: "ok" | "unknown" }
  | {
      result: "illegal";
      /** Position (in time order) of the return entry that no explored order could get past. */
      stuck: Entry;
      /** All entries in time order. */
      byPos: Entry[];
      /** Operation ids of a longest legal order found, and the state after it. */
      longest: number[];
      state: S;
    };

export function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  budget: Budget,
): SearchOutcome<S> {
  const { head, byPos } = buildEntries(ops);
  const bits = new Uint32Array((ops.length + 31) >>> 5);
  const memo = new Memo(model);
  const stack: { entry: Entry; state: S }[] = [];
  let state = model.init();
  let setHash = 0;
  let entry = head.next;
  let furthest: { stuck: Entry; longest: number[]; state: S } | undefined;

  while (entry !== null) {
    if (budget.spend()) return { result: "unknown" };
    if (entry.isCall) {
      const op = ops[entry.id]!;
      const next = model.step(state, op.input, op.output);
      if (next.ok) {
        const id = entry.id;
        const word = id >>> 5;
        const mask = 1 << (id & 31);
        bits[word]! |= mask;
        const nextHash = (setHash ^ mixId(id)) >>> 0;
        if (memo.add(nextHash, bits, next.state)) {
          stack.push({ entry, state });
          state = next.state;
          setHash = nextHash;
          lift(entry);
          entry = head.next;
          continue;
        }
        bits[word]! &= ~mask;
      }
      entry = entry.next;
    } else {
      // The first return still listed: whatever is linearized now cannot be extended past it.
      if (furthest === undefined || entry.pos > furthest.stuck.pos) {
        furthest = { stuck: entry, longest: stack.map((f) => f.entry.id), state };
      }
      const top = stack.pop();
      if (top === undefined) return { result: "illegal", byPos, ...furthest };
      const id = top.entry.id;
      bits[id >>> 5]! &= ~(1 << (id & 31));
      setHash = (setHash ^ mixId(id)) >>> 0;
      state = top.state;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { result: "ok" };
}

/** A well-mixed 32-bit value per operation id; XOR of these hashes a set of ids incrementally. */
function mixId(id: number): number {
  let h = Math.imul(id + 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Configurations already explored, bucketed by set hash (and the model's state hash, if any). */
class Memo<S, I, O> {
  private readonly buckets = new Map<string, { bits: Uint32Array; state: S }[]>();
  constructor(private readonly model: Model<S, I, O>) {}

  /** Records (bits, state); false if it was already there. */
  add(setHash: number, bits: Uint32Array, state: S): boolean {
    const key = this.model.hash === undefined ? `${setHash}` : `${setHash}|${this.model.hash(state)}`;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(key, bucket);
    }
    for (const seen of bucket) {
      if (sameBits(seen.bits, bits) && this.model.equal(seen.state, state)) return false;
    }
    bucket.push({ bits: bits.slice(), state });
    return true;
  }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
