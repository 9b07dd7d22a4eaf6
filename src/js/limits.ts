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
  /** Wall time of the call in milliseconds, measured with the engine's injected clock. */
  timeMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest stack budget that stays clear of Node's ~984 KiB native stack (measured). */
export const MAX_STACK_BYTES = 48 * KiB;
const MIN_STACK_BYTES = 8 * KiB;
const MIN_HEAP_BYTES = 1 * MiB;
const MAX_HEAP_BYTES = 2048 * MiB;
const MAX_TIME_MS = 10 * 60 * 1000;

export const DEFAULT_LIMITS: Readonly<JsLimits> = Object.freeze({
  heapBytes: 100 * MiB,
  stackBytes: MAX_STACK_BYTES,
  timeMs: 1000,
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
  const timeMs = checkNumber(overrides.timeMs ?? base.timeMs, "timeMs", 1, MAX_TIME_MS);
  return { heapBytes, stackBytes: Math.min(stackBytes, MAX_STACK_BYTES), timeMs };
}
