import fc from "fast-check";

/**
 * A fuzz target: one parser of bytes from outside, the inputs to throw at it, and what it must do
 * with them: answer, or refuse with a clear error of its own kind, never crash, hang or write.
 */
export interface FuzzTarget<T = unknown> {
  name: string;
  /** What reads these bytes, for the report. */
  parser: string;
  input: fc.Arbitrary<T>;
  /** Counts the inputs `check` saw refused (see `clearly`). */
  tally: Tally;
  /** Throws (an assertion) when the parser misbehaves on `input`. */
  check(input: T): void | Promise<void>;
  /** Runs before the first input (a node to start, a corpus to build). */
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
}

export interface FuzzReport {
  target: string;
  parser: string;
  runs: number;
  /** Inputs the parser refused with a clear error (the rest it accepted). */
  refused: number;
  failure: string | undefined;
  ms: number;
}

/** Longest any one input may take: a parser that loops on hostile bytes fails here. */
export const HANG_MS = 5_000;

// biome-ignore lint/suspicious/noExplicitAny: error classes take any constructor arguments
export type ErrorClass = new (...args: any[]) => Error;

/** Counts refusals so the report can say how many inputs were refused (and how many accepted). */
export class Tally {
  refused = 0;
}

/**
 * Runs `parse`. It may return anything; if it throws, the error must be one of `accepted` (the
 * parser's own kinds) with a message that says something. Anything else (a TypeError from
 * reading past the end, a RangeError from a huge allocation, a bare string) is a crash.
 */
export function clearly<R>(tally: Tally, accepted: readonly ErrorClass[], parse: () => R): R | undefined {
  const started = performance.now();
  let result: R | undefined;
  try {
    result = parse();
  } catch (error) {
    expectClearError(error, accepted);
    tally.refused++;
  }
  inTime(started);
  return result;
}

export async function clearlyAsync<R>(
  tally: Tally,
  accepted: readonly ErrorClass[],
  parse: () => Promise<R>,
): Promise<R | undefined> {
  const started = performance.now();
  let result: R | undefined;
  try {
    result = await parse();
  } catch (error) {
    expectClearError(error, accepted);
    tally.refused++;
  }
  inTime(started);
  return result;
}

function inTime(started: number): void {
  const ms = performance.now() - started;
  if (ms > HANG_MS) throw new Error(`one input took ${Math.round(ms)} ms (limit ${HANG_MS})`);
}

export function expectClearError(error: unknown, accepted: readonly ErrorClass[]): void {
  const ok = accepted.some((kind) => error instanceof kind);
  const named = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
  if (!ok || !(error instanceof Error)) {
    throw new Error(`crash instead of a clear error: ${named}\n${error instanceof Error ? error.stack : ""}`);
  }
  if (error.message.trim().length < 8) throw new Error(`an error with no useful message: ${named}`);
}

/** Runs one target for `runs` inputs from `seed`; a failure carries fast-check's counterexample. */
export async function runTarget<T>(target: FuzzTarget<T>, runs: number, seed: number): Promise<FuzzReport> {
  const started = performance.now();
  const { tally } = target;
  tally.refused = 0;
  await target.setup?.();
  let failure: string | undefined;
  try {
    const details = await fc.check(
      fc.asyncProperty(target.input, async (input) => {
        await target.check(input);
      }),
      { numRuns: runs, seed, endOnFailure: true },
    );
    if (details.failed) {
      const error = details.errorInstance;
      const message = error instanceof Error ? error.message : String(error);
      failure = `${message.split("\n").slice(0, 3).join("\n")}\n  counterexample (seed ${seed}, path ${details.counterexamplePath}): ${fc.stringify(details.counterexample).slice(0, 400)}`;
    }
  } finally {
    await target.teardown?.();
  }
  return {
    target: target.name,
    parser: target.parser,
    runs,
    refused: tally.refused,
    failure,
    ms: Math.round(performance.now() - started),
  };
}
