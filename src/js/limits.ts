// Per-call resource limits and their validation.
import { JsConfigError } from "./errors.ts";

export interface JsLimits {
  /** Heap of the call's QuickJS runtime, in bytes; includes the evaluated modules' own state. */
  heapBytes: number;
  /**
   * QuickJS stack budget in bytes. QuickJS measures only WebAssembly's shadow stack, while every
   * JS frame also uses Node's native stack (2 to 13 times more, JSON.stringify being the worst).
   * Values above MAX_STACK_BYTES are clamped so that a deep recursion becomes a catchable JS
   * "stack overflow" instead of a host stack overflow.
   */
  stackBytes: number;
  /**
   * Execution budget in steps. QuickJS counts down one tick per function call and per loop jump
   * (and per regular-expression backtracking step) and polls its interrupt handler each time
   * TICKS_PER_STEP ticks have run out: one step is one poll. The count depends only on the code
   * and its inputs, never on the clock, so a call's verdict does not change with the machine's
   * load (docs/js-runtime.md "Limits").
   */
  steps: number;
}

/** QuickJS's interrupt period (JS_INTERRUPT_COUNTER_INIT in quickjs.c): ticks per step. */
export const TICKS_PER_STEP = 10_000;

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest stack budget that stays clear of Node's ~984 KiB native stack (measured). */
export const MAX_STACK_BYTES = 48 * KiB;
const MIN_STACK_BYTES = 8 * KiB;
const MIN_HEAP_BYTES = 1 * MiB;
const MAX_HEAP_BYTES = 2048 * MiB;
/** About ten minutes of a quiet core's work (STEPS_PER_MS): no call needs more. */
const MAX_STEPS = 10_000_000;

/**
 * The fixed rate that turns a time given by an operator (CCF's `max_execution_time_ms`) into a
 * step budget. Measured on a quiet core: an arithmetic loop runs 3.9 steps per millisecond of
 * CPU, a loop that does nothing 28 (docs/js-runtime.md "Limits"); 8 leaves typical code about
 * twice the time asked for. Fixed, so the budget is the same on every node and under any load.
 */
export const STEPS_PER_MS = 8;

/** The step budget equivalent to `ms` milliseconds of a quiet core (at least one step). */
export function stepsForMilliseconds(ms: number): number {
  return Math.min(MAX_STEPS, Math.max(1, Math.round(ms * STEPS_PER_MS)));
}

export const DEFAULT_LIMITS: Readonly<JsLimits> = Object.freeze({
  heapBytes: 100 * MiB,
  stackBytes: MAX_STACK_BYTES,
  steps: stepsForMilliseconds(1000),
});

function checkNumber(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new JsConfigError(`limits.${field} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) {
    throw new JsConfigError(`limits.${field} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Merges `overrides` over `base`, checking each value; stack budgets above the cap are clamped. */
export function resolveLimits(base: Readonly<JsLimits>, overrides: Partial<JsLimits> | undefined): JsLimits {
  if (overrides === undefined) return { ...base };
  if (typeof overrides !== "object" || overrides === null) {
    throw new JsConfigError("limits must be an object");
  }
  if ("timeMs" in overrides) {
    throw new JsConfigError(
      "limits.timeMs is gone: calls are limited by a step budget (limits.steps), not by time",
    );
  }
  const heapBytes = checkNumber(
    overrides.heapBytes ?? base.heapBytes,
    "heapBytes",
    MIN_HEAP_BYTES,
    MAX_HEAP_BYTES,
  );
  const stackBytes = checkNumber(
    overrides.stackBytes ?? base.stackBytes,
    "stackBytes",
    MIN_STACK_BYTES,
    1 << 30,
  );
  const steps = checkNumber(overrides.steps ?? base.steps, "steps", 1, MAX_STEPS);
  return { heapBytes, stackBytes: Math.min(stackBytes, MAX_STACK_BYTES), steps };
}
