// Failures of sandboxed JS code, and misuse of the engine by host code.

/**
 * Why a sandboxed call failed:
 * - `exception`: the JS code threw (or failed to load: syntax error, unknown import, missing export).
 * - `budget`: the call used up its execution budget (limits.steps) and was interrupted.
 * - `memory`: the call ran out of heap.
 * - `stack`: recursion went past the stack limit.
 * - `invalid-result`: the function returned something that is not JSON-compatible.
 * - `unavailable`: the QuickJS module crashed (host stack overflow) and is being reloaded; retry
 *   after `engine.ready()`.
 */
export type JsErrorKind = "exception" | "budget" | "memory" | "stack" | "invalid-result" | "unavailable";

/** A sandboxed call that did not produce a result. The engine stays usable afterwards. */
export class JsError extends Error {
  override readonly name = "JsError";
  readonly kind: JsErrorKind;
  /** The JS stack trace inside the sandbox, when the code threw an Error. */
  readonly trace: string | undefined;

  constructor(kind: JsErrorKind, message: string, trace?: string) {
    super(message);
    this.kind = kind;
    this.trace = trace === undefined || trace === "" ? undefined : trace;
  }

  /** The plain `{ kind, message, stack? }` shape, e.g. for a JSON error body or a log line. */
  toJSON(): { kind: JsErrorKind; message: string; stack?: string } {
    return this.trace === undefined
      ? { kind: this.kind, message: this.message }
      : { kind: this.kind, message: this.message, stack: this.trace };
  }
}

/** Host code passed the engine something invalid (options, limits, arguments). */
export class JsConfigError extends Error {
  override readonly name = "JsConfigError";
}
