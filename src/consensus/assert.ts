/** A caller handed Raft something it cannot accept (a bad config, a malformed proposal). */
export class ConsensusError extends Error {
  override name = "ConsensusError";
}

/**
 * An internal invariant does not hold. This is a bug, never an input problem: the state machine
 * stops rather than continue with a state that could break safety.
 */
export class InvariantError extends Error {
  override name = "InvariantError";
}

export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantError(typeof message === "string" ? message : message());
  }
}

export function isSeqno(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
