/**
 * The shapes shared by the checker, the models and the parsers.
 *
 * A history is what clients saw: each operation was called at some time and returned at some later
 * time (or never, for an operation whose outcome is unknown: its return time is `Infinity`).
 */

/** One completed (or indeterminate) operation, with its call and return timestamps. */
export interface Operation<Input, Output> {
  /** The client that issued it. Only used for display: the checker relies on the timestamps. */
  clientId: number;
  input: Input;
  output: Output;
  /** When the client sent the request. Finite. */
  call: number;
  /** When the client saw the answer; `Infinity` if it never did (the operation may or may not have taken effect). */
  return: number;
}

/** The event-list form: call and return events in real-time order, matched by `id`. */
export type Event<Input, Output> =
  | { kind: "call"; clientId: number; id: number; value: Input }
  | { kind: "return"; clientId: number; id: number; value: Output };

/** A history in either form. */
export type History<Input, Output> = readonly Operation<Input, Output>[] | readonly Event<Input, Output>[];

/**
 * A sequential specification. `step` must be a pure function: it may not change `state`.
 *
 * An operation whose output is unknown (a time-out) must be accepted by `step` in any state where it
 * could have run; if it has an effect, `step` applies it. Leaving it out altogether ("it never took
 * effect") is the same as placing it last, which the checker always may do since its return is `Infinity`.
 */
export interface Model<State, Input, Output> {
  init(): State;
  step(state: State, input: Input, output: Output): { ok: boolean; state: State };
  equal(a: State, b: State): boolean;
  /** A string that is the same for equal states; speeds up the search's memo. Distinct states may share one. */
  hash?(state: State): string;
  /**
   * P-compositionality: split a history into parts that can be checked on their own (for example by
   * key), each against a fresh `init()`. Only correct when the parts never interact in the model.
   */
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /** How to print an operation in a counter-example, e.g. `put("k", "v")` or `read() -> 3`. */
  describeOperation?(input: Input, output: Output): string;
  /** How to print a state in a counter-example. */
  describeState?(state: State): string;
}

export interface CheckOptions {
  /** Give up with "unknown" after this many milliseconds of searching (all partitions together). */
  timeoutMs?: number;
  /**
   * Give up with "unknown" after this many search steps (all partitions together). Unlike a
   * time budget this gives the same verdict on every machine, which a seeded simulator wants.
   */
  maxSteps?: number;
  /** The clock behind `timeoutMs`; `performance.now` unless given. */
  now?: () => number;
}

/** Where the search got stuck in the smallest partition that cannot be linearized. */
export interface CounterExample<State, Input, Output> {
  /** Index of the partition (in the model's `partition` order; 0 if the model has none). */
  partition: number;
  /** How many operations that partition has. */
  partitionSize: number;
  /**
   * The shortest prefix of the partition that cannot be linearized: every operation called before
   * `stuck` returned, by call time. Those still running then may or may not have taken effect.
   */
  operations: Operation<Input, Output>[];
  /** The operation at whose return every attempted order failed. */
  stuck: Operation<Input, Output>;
  /** One longest legal order the search found before getting stuck, and the state it leaves. */
  longest: { order: Operation<Input, Output>[]; state: State };
  /** A readable rendering of all of the above. */
  text: string;
}

export type Verdict = "ok" | "illegal" | "unknown";

export interface CheckResult<State, Input, Output> {
  result: Verdict;
  /** Present when `result` is "illegal". */
  counterExample?: CounterExample<State, Input, Output>;
  /** How many partitions were checked and how many search steps it took. */
  partitions: number;
  steps: number;
}
