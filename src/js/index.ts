// Public face of the QuickJS sandbox runtime shared by governance and JS apps.
export { GOVERNANCE_LIMITS, jsConstitution, txKv } from "./constitution.ts";
export { createJsEngine, type JsCallUsage, type JsEngine } from "./engine.ts";
export { JsConfigError, JsError, type JsErrorKind } from "./errors.ts";
export {
  DEFAULT_LIMITS,
  type JsLimits,
  MAX_STACK_BYTES,
  STEPS_PER_MS,
  stepsForMilliseconds,
  TICKS_PER_STEP,
} from "./limits.ts";
export { MemoryKv } from "./memory-kv.ts";
export { createModuleSet, type JsModuleSet } from "./modules.ts";
export type {
  JsCallOptions,
  JsEngineOptions,
  JsEnv,
  JsHistoricalState,
  JsHooks,
  JsHostFn,
  JsLogger,
  JsLogLevel,
  KvAccess,
  KvRangeOptions,
} from "./types.ts";
export { warmUpQuickJs } from "./warm-up.ts";
