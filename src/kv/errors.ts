/** Every refusal from the KV store: bad input, misuse of a closed transaction, out-of-range seqnos. */
export class KvError extends Error {
  override name = "KvError";
}

/**
 * An internal invariant of the store does not hold: a bug, never bad input. Versions index every
 * snapshot, rollback and conflict check, so the store stops rather than serve the wrong state.
 */
export class KvInvariantError extends Error {
  override name = "KvInvariantError";
}

/** Throws a `KvInvariantError` unless `condition` holds; a function message is built only then. */
export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new KvInvariantError(typeof message === "string" ? message : message());
}
