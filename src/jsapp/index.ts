// Public face of src/jsapp: CCF-compatible JS applications (bundles installed by governance, run
// in the QuickJS sandbox of src/js behind the executor seam of src/apps).
export {
  BundleError,
  type JsBundle,
  type JsEndpointInfo,
  type JsEndpointMode,
  parseBundle,
} from "./bundle.ts";
export { checkBundleCode, jsAppActionProblem, withJsAppChecks } from "./check.ts";
export { createJsAppExecutor, JsAppExecutor, type JsAppExecutorOptions } from "./executor.ts";
export type { InstalledEndpoint } from "./handler.ts";
export type { HistoricalLookup, JsAppHost, JsTxStatus } from "./host.ts";
export { DEFAULT_RUNTIME_OPTIONS, type JsRuntimeOptions, readRuntimeOptions } from "./runtime-options.ts";
export { JsAppTables } from "./tables.ts";
