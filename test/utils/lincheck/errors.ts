/** A history or a history file that the checker cannot accept, with what is wrong and where. */
export class LincheckError extends Error {
  override name = "LincheckError";
}

/** A line of a history file that does not follow its format. */
export class HistoryParseError extends LincheckError {
  override name = "HistoryParseError";
  constructor(
    readonly source: string,
    readonly line: number,
    problem: string,
  ) {
    super(`${source}:${line}: ${problem}`);
  }
}
