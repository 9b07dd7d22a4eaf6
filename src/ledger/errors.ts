/** Where in the ledger something went wrong, when that is known. */
export interface LedgerErrorContext {
  file?: string;
  offset?: number;
  seqno?: number;
}

/**
 * Every failure of the ledger module: malformed bytes, a broken chunk sequence, a failed
 * authentication, a misuse of the API. The message says what is wrong and where; the place is also
 * kept as fields so audit tools can report it without parsing the message.
 */
export class LedgerError extends Error {
  /** The message without the location suffix. */
  readonly reason: string;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly seqno: number | undefined;

  constructor(reason: string, context: LedgerErrorContext = {}) {
    const where: string[] = [];
    if (context.file !== undefined) where.push(`file ${context.file}`);
    if (context.offset !== undefined) where.push(`offset ${context.offset}`);
    if (context.seqno !== undefined) where.push(`seqno ${context.seqno}`);
    super(where.length > 0 ? `${reason} (${where.join(", ")})` : reason);
    this.name = "LedgerError";
    this.reason = reason;
    this.file = context.file;
    this.offset = context.offset;
    this.seqno = context.seqno;
  }
}

/** Adds a location to a LedgerError (fields already set win); anything else passes through. */
export function withContext(error: unknown, context: LedgerErrorContext): unknown {
  if (!(error instanceof LedgerError)) return error;
  return new LedgerError(error.reason, {
    file: error.file ?? context.file,
    offset: error.offset ?? context.offset,
    seqno: error.seqno ?? context.seqno,
  });
}

/**
 * An internal invariant of the ledger does not hold: a bug, never bad input. Carrying on could
 * write a ledger that disagrees with itself (seqnos, Merkle tree, commit point), so the caller
 * stops instead. Bad input gets a `LedgerError`.
 */
export class LedgerInvariantError extends Error {
  override name = "LedgerInvariantError";
}

/** Throws a `LedgerInvariantError` unless `condition` holds; a function message is built only then. */
export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new LedgerInvariantError(typeof message === "string" ? message : message());
}

/** A misuse or inconsistency of the ledger's in-memory state (a wait that cannot end, a gap). */
export class LedgerStateError extends Error {}
