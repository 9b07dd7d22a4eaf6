// The engine: a cache of warm sandboxes keyed by module-set digest, per-call limits, and
// recovery when the QuickJS module itself crashes.
import { JsConfigError, JsError } from "./errors.ts";
import type { CallScope } from "./host.ts";
import { DEFAULT_LIMITS, type JsLimits, resolveLimits } from "./limits.ts";
import { createModuleSet, entryName, type JsModuleSet } from "./modules.ts";
import { abandonQuickJs, currentQuickJs, readyQuickJs } from "./quickjs.ts";
import { Sandbox } from "./sandbox.ts";
import type { JsCallOptions, JsEngineOptions, KvAccess } from "./types.ts";

export interface JsEngine {
  /**
   * Calls `fn` exported by `entry` and returns its JSON-compatible result (byte buffers come
   * back as Uint8Array, a returned promise is awaited inside the sandbox). Throws JsError when
   * the code fails or hits a limit, JsConfigError when the options are invalid.
   */
  call(options: JsCallOptions): unknown;
  /** Resolves once the engine can run calls (after creation, or after a crash reload). */
  ready(): Promise<void>;
  /** Drops the warm context of one module set, or all of them. */
  evict(modules?: JsModuleSet | Readonly<Record<string, string>>): void;
  /**
   * What the last call used of its budget: steps (interrupt polls) and, for an isolated call, the
   * exact QuickJS ticks (docs/js-runtime.md "Limits"). For measurements and tests.
   */
  readonly lastCallUsage: JsCallUsage | undefined;
  /** Number of warm contexts currently cached. */
  readonly cachedContexts: number;
  /** Frees every warm context. The engine stays usable (it rebuilds on demand). */
  dispose(): void;
}

export interface JsCallUsage {
  steps: number;
  /** Exact ticks, known for isolated calls that did not fail on a limit. */
  ticks?: number;
}

const KV_METHODS = ["get", "set", "delete", "clear", "size"] as const;

function checkKv(kv: unknown, what: string): KvAccess | undefined {
  if (kv === undefined) return undefined;
  const candidate = kv as Record<string, unknown>;
  if (
    typeof kv !== "object" ||
    kv === null ||
    KV_METHODS.some((m) => typeof candidate[m] !== "function") ||
    (typeof candidate.entries !== "function" && typeof candidate.forEach !== "function")
  ) {
    throw new JsConfigError(
      `${what} must implement KvAccess (${KV_METHODS.join(", ")}, and entries or forEach)`,
    );
  }
  return kv as KvAccess;
}

/**
 * The cache key of a warm context. Contexts of one module set under different names keep separate
 * module state; isolated contexts (sealed, a module instance per call) are never shared with warm
 * ones.
 */
function contextKey(set: JsModuleSet, context: string | undefined, isolated: boolean): string {
  const name = isolated ? `isolated${context === undefined ? "" : `:${context}`}` : context;
  return name === undefined ? set.digest : `${set.digest}:${name}`;
}

function usageOf(sandbox: Sandbox): JsCallUsage {
  const ticks = sandbox.lastCallTicks;
  return ticks === undefined ? { steps: sandbox.stepsUsed } : { steps: sandbox.stepsUsed, ticks };
}

function isHostStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}

/** Loads QuickJS (once per process) and returns an engine. */
export async function createJsEngine(options: JsEngineOptions): Promise<JsEngine> {
  if (typeof options !== "object" || options === null) throw new JsConfigError("options must be an object");
  const env = options.env;
  if (typeof env?.now !== "function" || typeof env.randomBytes !== "function") {
    throw new JsConfigError("options.env must provide now() and randomBytes(n)");
  }
  const defaults = resolveLimits(DEFAULT_LIMITS, options.limits);
  const maxCached = options.maxCachedContexts ?? 8;
  if (!Number.isInteger(maxCached) || maxCached < 1) {
    throw new JsConfigError("options.maxCachedContexts must be a positive integer");
  }
  const maxLogLineLength = options.maxLogLineLength ?? 4096;
  if (!Number.isInteger(maxLogLineLength) || maxLogLineLength < 1) {
    throw new JsConfigError("options.maxLogLineLength must be a positive integer");
  }
  await readyQuickJs();

  let lastCallUsage: JsCallUsage | undefined;
  // Insertion order is recency order: a hit is moved to the end, eviction takes the front.
  const cache = new Map<string, Sandbox>();

  function drop(digest: string, sandbox: Sandbox): void {
    cache.delete(digest);
    if (sandbox.generation !== currentQuickJs()?.generation) return; // crashed module: abandon
    try {
      sandbox.dispose();
    } catch {
      // Disposal failing means QuickJS's memory is inconsistent: replace the whole module.
      abandon(sandbox.generation);
    }
  }

  function abandon(generation: number): void {
    abandonQuickJs(generation);
    for (const [digest, sandbox] of cache) if (sandbox.generation === generation) cache.delete(digest);
  }

  function sandboxFor(set: JsModuleSet, key: string, fresh: boolean, isolated: boolean): Sandbox {
    const qjs = currentQuickJs();
    if (qjs === undefined) {
      throw new JsError("unavailable", "QuickJS is reloading after a crash; await engine.ready() and retry");
    }
    if (fresh) return new Sandbox(qjs, set, env, maxLogLineLength, isolated);
    const cached = cache.get(key);
    if (cached !== undefined && cached.generation === qjs.generation) {
      cache.delete(key);
      cache.set(key, cached);
      return cached;
    }
    if (cached !== undefined) cache.delete(key);
    for (const [digest, sandbox] of cache) {
      if (cache.size < maxCached) break;
      if (!sandbox.busy) drop(digest, sandbox);
    }
    const sandbox = new Sandbox(qjs, set, env, maxLogLineLength, isolated);
    cache.set(key, sandbox);
    return sandbox;
  }

  function call(callOptions: JsCallOptions): unknown {
    if (typeof callOptions !== "object" || callOptions === null)
      throw new JsConfigError("call options must be an object");
    const { fn, args = [], readOnly = false, hooks = {}, historicalState } = callOptions;
    if (typeof fn !== "string" || fn === "") throw new JsConfigError("fn must be a non-empty string");
    if (!Array.isArray(args)) throw new JsConfigError("args must be an array");
    if (typeof readOnly !== "boolean") throw new JsConfigError("readOnly must be a boolean");
    if (typeof hooks !== "object" || hooks === null) throw new JsConfigError("hooks must be an object");
    const kv = checkKv(callOptions.kv, "kv");
    if (historicalState !== undefined) checkKv(historicalState.kv, "historicalState.kv");
    const limits: JsLimits = resolveLimits(defaults, callOptions.limits);
    const set = createModuleSet(callOptions.modules);
    const entry = entryName(set, callOptions.entry);
    const { context, fresh = false, isolated = false } = callOptions;
    if (context !== undefined && typeof context !== "string")
      throw new JsConfigError("context must be a string");
    if (typeof fresh !== "boolean") throw new JsConfigError("fresh must be a boolean");
    if (typeof isolated !== "boolean") throw new JsConfigError("isolated must be a boolean");
    const key = contextKey(set, context, isolated);

    const scope: CallScope = { stores: [kv], readOnly, hooks, logger: callOptions.logger ?? options.logger };
    const info: Record<string, unknown> = {};
    if (historicalState !== undefined) {
      scope.stores.push(historicalState.kv);
      info.historical = {
        transactionId: historicalState.transactionId,
        receipt: historicalState.receipt,
        kvStore: 1,
      };
    }

    let sandbox: Sandbox | undefined;
    lastCallUsage = undefined;
    try {
      sandbox = sandboxFor(set, key, fresh, isolated);
      let result: unknown;
      try {
        result = sandbox.call({ entry, fn, args, scope, limits, info });
      } finally {
        lastCallUsage = usageOf(sandbox);
      }
      if (fresh) sandbox.dispose();
      // An isolated context that cannot make module instances serves one call only.
      else if (sandbox.needsReset && cache.get(key) === sandbox) drop(key, sandbox);
      return result;
    } catch (error) {
      if (error instanceof JsError || error instanceof JsConfigError) {
        if (fresh) sandbox?.dispose();
        else if (sandbox?.needsReset && cache.get(key) === sandbox) drop(key, sandbox);
        throw error;
      }
      // A host-level exception escaped from inside QuickJS (Node's stack overflowed in the
      // WebAssembly code, or emscripten aborted): its memory cannot be trusted any more.
      const generation = sandbox?.generation ?? currentQuickJs()?.generation;
      if (generation !== undefined) abandon(generation);
      if (isHostStackOverflow(error)) {
        throw new JsError("stack", "the call overflowed the host stack; QuickJS is being reloaded");
      }
      throw new JsError("unavailable", `QuickJS crashed (${String(error)}); it is being reloaded`);
    }
  }

  return {
    call,
    async ready() {
      await readyQuickJs();
    },
    evict(modules) {
      if (modules === undefined) {
        for (const [key, sandbox] of [...cache]) if (!sandbox.busy) drop(key, sandbox);
        return;
      }
      const digest = createModuleSet(modules).digest;
      for (const [key, sandbox] of [...cache]) {
        if ((key === digest || key.startsWith(`${digest}:`)) && !sandbox.busy) drop(key, sandbox);
      }
    },
    get lastCallUsage() {
      return lastCallUsage;
    },
    get cachedContexts() {
      return cache.size;
    },
    dispose() {
      for (const [digest, sandbox] of [...cache]) if (!sandbox.busy) drop(digest, sandbox);
    },
  };
}
