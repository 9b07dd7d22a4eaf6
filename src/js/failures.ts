// How a call that did not produce a result failed: a thrown JS value, or a limit that stopped it.
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { JsError } from "./errors.ts";
import { type JsLimits, TICKS_PER_STEP } from "./limits.ts";

/**
 * Classifies a thrown JS value (consumed) as a JsError, and says whether the context may hold a
 * half-done state (a limit hit mid-call, or a failure while evaluating a module): then it is reset.
 */
export function classifyFailure(
  ctx: QuickJSContext,
  error: QuickJSHandle,
  limits: JsLimits,
  interrupted: "budget" | "memory" | undefined,
  fatal: boolean,
): { failure: JsError; reset: boolean } {
  try {
    if (interrupted === "budget") {
      const message =
        `the call used more than its execution budget of ${limits.steps} steps ` +
        `(${limits.steps * TICKS_PER_STEP} QuickJS ticks)`;
      return { failure: new JsError("budget", message), reset: true };
    }
    if (interrupted === "memory") {
      const message = `the call used more than its heap limit of ${limits.heapBytes} bytes`;
      return { failure: new JsError("memory", message), reset: true };
    }
    const { name, message, stack, thrownNull } = describe(ctx, error);
    // When QuickJS cannot even allocate its "out of memory" error, the exception is null.
    if ((name === "InternalError" && message === "out of memory") || thrownNull) {
      const text = `the call ran out of memory (heap limit ${limits.heapBytes} bytes)`;
      return { failure: new JsError("memory", text, stack), reset: true };
    }
    if (message === "stack overflow" && (name === "InternalError" || name === "SyntaxError")) {
      const text = `the call overflowed its stack (limit ${limits.stackBytes} bytes)`;
      return { failure: new JsError("stack", text, stack), reset: fatal };
    }
    const text = name === undefined ? message : `${name}: ${message}`;
    return { failure: new JsError("exception", text, stack), reset: fatal };
  } finally {
    error.dispose();
  }
}

/** name/message/stack of a thrown value, defensively: it may be anything the JS threw. */
function describe(
  ctx: QuickJSContext,
  error: QuickJSHandle,
): {
  name?: string;
  message: string;
  stack?: string;
  thrownNull?: boolean;
} {
  const stringProp = (key: string): string | undefined => {
    try {
      return ctx
        .getProp(error, key)
        .consume((h) => (ctx.typeof(h) === "string" ? ctx.getString(h) : undefined));
    } catch {
      return undefined;
    }
  };
  const type = ctx.typeof(error);
  if (type === "object") {
    const message = stringProp("message");
    if (message !== undefined) {
      // Frames of the prelude are Coco's plumbing, not the caller's code.
      const stack = stringProp("stack")
        ?.split("\n")
        .filter((line) => !line.includes("<coco:"))
        .join("\n");
      return { name: stringProp("name") ?? "Error", message, stack };
    }
  }
  try {
    const dumped: unknown = ctx.dump(error);
    if (dumped === null) return { message: "null", thrownNull: true };
    return { message: typeof dumped === "string" ? dumped : (JSON.stringify(dumped) ?? String(dumped)) };
  } catch {
    return { message: `a thrown ${type}` };
  }
}
