// Proposal-time checks of JS apps: a `set_js_app` whose code does not load (syntax error, missing
// import, throwing top-level code) or lacks an endpoint's function is refused when proposed,
// whichever constitution is in force, as are runtime options Coco cannot honour.
import type { Constitution } from "../gov/index.ts";
import { type JsEngine, JsError, type JsLimits, stepsForMilliseconds } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import { adapterName, appModuleSet } from "./adapter.ts";
import { BundleError, type JsBundle, moduleName, parseBundle } from "./bundle.ts";
import { checkRuntimeOptions } from "./runtime-options.ts";

/** Loads every endpoint module of `bundle` in a sandbox and checks its exported functions. */
export function checkBundleCode(engine: JsEngine, bundle: JsBundle, limits?: Partial<JsLimits>): void {
  const modules = new Map(bundle.modules.map((m) => [moduleName(m.name), m.module]));
  const needed = new Map<string, Set<string>>();
  for (const methods of Object.values(bundle.metadata.endpoints)) {
    for (const info of Object.values(methods)) {
      const module = moduleName(info.js_module);
      if (!needed.has(module)) needed.set(module, new Set());
      needed.get(module)!.add(info.js_function);
    }
  }
  const set = appModuleSet(modules, needed.keys());
  try {
    for (const [module, functions] of needed) {
      let exported: string[];
      try {
        exported = engine.call({
          modules: set,
          entry: adapterName(module),
          fn: "exportedFunctions",
          readOnly: true,
          limits: { steps: stepsForMilliseconds(2000), ...limits },
        }) as string[];
      } catch (e) {
        if (e instanceof JsError) throw new BundleError(`module '${module}' does not load: ${e.message}`);
        throw e;
      }
      for (const fn of functions) {
        if (!exported.includes(fn)) {
          throw new BundleError(`module '${module}' does not export a function '${fn}'`);
        }
      }
    }
  } finally {
    engine.evict(set);
  }
}

interface ProposedAction {
  name?: unknown;
  args?: unknown;
}

/** What is wrong with one action, or undefined; only JS app actions are looked at. */
export function jsAppActionProblem(engine: JsEngine, action: ProposedAction): string | undefined {
  try {
    if (action.name === "set_js_app") {
      const bundle = parseBundle((action.args as { bundle?: unknown } | undefined)?.bundle);
      checkBundleCode(engine, bundle);
    } else if (action.name === "set_js_runtime_options") {
      checkRuntimeOptions(action.args);
    }
    return undefined;
  } catch (e) {
    if (e instanceof BundleError) return e.message;
    throw e;
  }
}

/**
 * The constitution with Coco's checks of JS app actions added after its own `validate`: the
 * constitution (CCF's or Coco's) checks the shape, Coco checks that the code loads.
 */
export function withJsAppChecks(constitution: Constitution, engine: JsEngine): Constitution {
  return {
    ...constitution,
    validate(tx: Tx, proposal: string) {
      const verdict = constitution.validate(tx, proposal);
      if (verdict?.valid !== true) return verdict;
      const actions = (JSON.parse(proposal) as { actions?: ProposedAction[] }).actions ?? [];
      const problems: string[] = [];
      actions.forEach((action, i) => {
        const problem = jsAppActionProblem(engine, action);
        if (problem !== undefined) problems.push(`actions[${i}] (${String(action.name)}): ${problem}`);
      });
      return problems.length === 0 ? verdict : { valid: false, description: problems.join("; ") };
    },
  };
}
