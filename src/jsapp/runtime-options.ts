// JS app runtime options, set by governance (`set_js_runtime_options`) in
// `public:ccf.gov.js_runtime_options`, as CCF stores them.
import { JsConfigError, type JsLimits, MAX_STACK_BYTES, stepsForMilliseconds } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import { BundleError } from "./bundle.ts";
import { JsAppTables, SINGLETON_KEY } from "./tables.ts";

export interface JsRuntimeOptions {
  limits: JsLimits;
  /** Put the exception's message and stack in the 500 answer (Coco's default: yes). */
  returnExceptionDetails: boolean;
  /** Log the exception's message and stack on the node (default: yes). */
  logExceptionDetails: boolean;
}

export const DEFAULT_RUNTIME_OPTIONS: Readonly<JsRuntimeOptions> = Object.freeze({
  limits: Object.freeze({
    heapBytes: 100 * 1024 * 1024,
    stackBytes: MAX_STACK_BYTES,
    steps: stepsForMilliseconds(1000),
  }),
  returnExceptionDetails: true,
  logExceptionDetails: true,
});

const MiB = 1024 * 1024;
const RANGES = {
  max_heap_bytes: [1 * MiB, 2048 * MiB],
  max_stack_bytes: [8 * 1024, 2 ** 30],
  max_execution_time_ms: [1, 600_000],
} as const;

/** Refuses options Coco cannot honour, with the reason (a BundleError, as for bundles). */
export function checkRuntimeOptions(args: unknown): void {
  if (typeof args !== "object" || args === null) throw new BundleError("args must be an object");
  const a = args as Record<string, unknown>;
  for (const [field, [min, max]] of Object.entries(RANGES)) {
    const v = a[field];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      throw new BundleError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
  for (const field of ["log_exception_details", "return_exception_details"]) {
    if (a[field] !== undefined && typeof a[field] !== "boolean") {
      throw new BundleError(`${field} must be a boolean`);
    }
  }
}

/** The options in force in `tx`'s state; the defaults where none were set. */
export function readRuntimeOptions(tx: Tx): JsRuntimeOptions {
  const raw = tx.map(JsAppTables.runtimeOptions).get(SINGLETON_KEY);
  if (raw === undefined) return DEFAULT_RUNTIME_OPTIONS;
  try {
    const a = JSON.parse(new TextDecoder().decode(raw)) as Record<string, unknown>;
    checkRuntimeOptions(a);
    return {
      limits: {
        heapBytes: a.max_heap_bytes as number,
        // Larger stacks are clamped: QuickJS shares Node's native stack (docs/js-runtime.md).
        stackBytes: Math.min(a.max_stack_bytes as number, MAX_STACK_BYTES),
        // A step budget worth this long on a quiet core, not a wall-clock limit: the same on
        // every machine and under any load (docs/js-apps.md "Runtime options").
        steps: stepsForMilliseconds(a.max_execution_time_ms as number),
      },
      returnExceptionDetails: a.return_exception_details !== false,
      logExceptionDetails: a.log_exception_details !== false,
    };
  } catch (e) {
    if (e instanceof BundleError || e instanceof SyntaxError || e instanceof JsConfigError) {
      // Written by a constitution that did not check them: keep serving with the defaults.
      return DEFAULT_RUNTIME_OPTIONS;
    }
    throw e;
  }
}
