// One warm QuickJS context for one module set: its own runtime (so heap limits and crashes stay
// per set), the prelude, and the namespaces of the entry modules evaluated so far. An isolated
// sandbox (the constitution, ballots) also seals its realm and runs every call against a fresh
// instance of its module (module-instances.ts), so no call can leave state for the next.
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from "quickjs-emscripten-core";
import { JsConfigError, JsError } from "./errors.ts";
import { classifyFailure } from "./failures.ts";
import { type CallScope, createHostObject } from "./host.ts";
import { type JsLimits, TICKS_PER_STEP } from "./limits.ts";
import { readPacked, writePacked } from "./marshal.ts";
import { moduleFactory } from "./module-instances.ts";
import { type JsModuleSet, resolveImport } from "./modules.ts";
import { PRELUDE_SOURCE } from "./prelude.ts";
import type { QuickJs } from "./quickjs.ts";
import { TickCounter } from "./tick-counter.ts";
import type { JsEnv } from "./types.ts";

/**
 * Warm (app) contexts walk their heap at most once per this many objects' worth of steps, so
 * walks cost about 5% of a call (a walk takes ~10 ns per object, a step ~40 us): the same
 * throttle the clock used to give, counted in steps.
 */
const OBJECTS_PER_STEP_BETWEEN_WALKS = 200;

/** The size of the module's WebAssembly memory, when the loaded build exposes it. */
function linearMemoryProbe(qjs: QuickJs): () => number | undefined {
  const emscripten = (qjs.module as unknown as { module?: { HEAPU8?: Uint8Array } }).module;
  // HEAPU8 is replaced when the memory grows, so it is looked up on every probe.
  return () => emscripten?.HEAPU8?.length;
}

export interface SandboxCall {
  entry: string;
  fn: string;
  args: readonly unknown[];
  scope: CallScope;
  limits: JsLimits;
  /** Packed for the prelude's begin(): per-call state such as the historical state. */
  info: Record<string, unknown>;
}

export interface Helpers {
  pack: QuickJSHandle;
  unpack: QuickJSHandle;
  begin: QuickJSHandle;
  seal: QuickJSHandle;
  exportNames: QuickJSHandle;
}

export class Sandbox {
  readonly generation: number;
  /** Set when the context may hold a half-done state (timeout, out of memory, failed module). */
  needsReset = false;
  busy = false;
  private readonly runtime: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private helpers: Helpers | undefined;
  private readonly namespaces = new Map<string, QuickJSHandle>();
  /** Isolated: per entry, the function that makes a fresh instance of its module (or null: none). */
  private readonly factories = new Map<string, QuickJSHandle | null>();
  private scope: CallScope | undefined;
  private limits: JsLimits | undefined;
  /** Steps (interrupt polls) counted since the budget started, and the budget. */
  private steps = 0;
  private stepLimit = Number.POSITIVE_INFINITY;
  private readonly ticks: TickCounter;
  /** Ticks the last call used, when QuickJS's counter can be read (tick-counter.ts). */
  lastCallTicks: number | undefined;
  private interrupted: "budget" | "memory" | undefined;
  private nextMemoryCheckStep = 0;
  private readonly linearMemoryBytes: () => number | undefined;
  private readonly sources: ReadonlyMap<string, string>;

  constructor(
    qjs: QuickJs,
    set: JsModuleSet,
    private readonly env: JsEnv,
    private readonly maxLogLineLength: number,
    /** Seal the realm and run each call against a fresh module instance. */
    readonly isolated = false,
  ) {
    this.sources = set.sources;
    this.generation = qjs.generation;
    this.runtime = qjs.module.newRuntime();
    this.linearMemoryBytes = linearMemoryProbe(qjs);
    // Called by QuickJS every TICKS_PER_STEP ticks of the context's counter (and by the regular
    // expression engine every 10,000 of its own steps): never reads the clock.
    this.runtime.setInterruptHandler(() => {
      if (this.ticks.spinning) {
        this.ticks.spinning = false;
        return true;
      }
      this.steps += 1;
      if (this.steps > this.stepLimit) {
        this.interrupted = "budget";
        return true;
      }
      if (this.steps >= this.nextMemoryCheckStep && this.overHeapLimit()) {
        this.interrupted = "memory";
        return true;
      }
      return false;
    });
    const importers = new Map<string, string>();
    this.runtime.setModuleLoader(
      (name) => {
        const source = set.sources.get(name);
        if (source !== undefined) return source;
        const from = importers.get(name);
        return {
          error: new Error(
            `module '${name}' is not in the module set${from ? ` (imported by '${from}')` : ""}`,
          ),
        };
      },
      (base, requested) => {
        const resolved = resolveImport(base, requested);
        if (resolved === undefined)
          return { error: new Error(`cannot resolve import '${requested}' from '${base}'`) };
        importers.set(resolved, base);
        return resolved;
      },
    );
    this.ctx = this.runtime.newContext();
    this.ticks = new TickCounter(qjs, this.ctx);
    // Creates the runtime's internal context for memory statistics now, not mid-interrupt.
    this.runtime.computeMemoryUsage().dispose();
  }

  /** Runs `fn` of `entry` under the call's limits; returns its result or throws a JsError. */
  call(call: SandboxCall): unknown {
    if (this.busy) throw new JsConfigError("re-entrant call into a sandbox that is already running");
    this.busy = true;
    this.scope = call.scope;
    this.limits = call.limits;
    this.interrupted = undefined;
    this.runtime.setMemoryLimit(call.limits.heapBytes);
    this.runtime.setMaxStackSize(call.limits.stackBytes);
    try {
      // Coco's own prelude (and sealing) is not the caller's code: the budget starts after it.
      const helpers = this.init();
      // Evaluating the module (first use only) has a budget of its own, so that the call itself
      // counts the same steps whether or not it was the first.
      if (!this.prepared(call.entry)) {
        this.startBudget(call.limits.steps);
        if (this.isolated) this.factory(helpers, call.entry);
        else this.namespace(call.entry);
      }
      this.startBudget(call.limits.steps);
      this.invoke(helpers.begin, [writePacked(this.ctx, call.info, "call info")]).dispose();
      if (!this.isolated) return this.run(helpers, this.namespace(call.entry), call);
      const factory = this.factory(helpers, call.entry);
      if (factory === null) {
        // No per-call instance can be made of this module: this context serves one call only.
        this.needsReset = true;
        return this.run(helpers, this.namespace(call.entry), call);
      }
      const instance = this.invoke(factory, []);
      try {
        return this.run(helpers, instance, call);
      } finally {
        instance.dispose();
      }
    } finally {
      this.endBudget();
      this.scope = undefined;
      this.busy = false;
    }
  }

  /** Steps the current (or last) call has counted. */
  get stepsUsed(): number {
    return this.steps;
  }

  private prepared(entry: string): boolean {
    return this.isolated ? this.factories.has(entry) : this.namespaces.has(entry);
  }

  /**
   * Starts counting steps against `limit`. QuickJS's tick counter is not reset between calls, so
   * where the first step falls would depend on what ran in this context before: it is reset here
   * (tick-counter.ts). Where it cannot be reset cheaply, only isolated calls (governance, whose
   * verdicts must not depend on a node's history) pay for a reset; an app call's budget may then
   * run out up to one step earlier or later.
   */
  private startBudget(limit: number): void {
    if (this.isolated || this.ticks.direct) this.ticks.reset();
    this.steps = 0;
    this.stepLimit = limit;
    this.nextMemoryCheckStep = 0;
  }

  private endBudget(): void {
    this.stepLimit = Number.POSITIVE_INFINITY;
    const left = this.needsReset ? undefined : this.ticks.left();
    this.lastCallTicks =
      left === undefined ? undefined : this.steps * TICKS_PER_STEP + (TICKS_PER_STEP - left);
  }

  dispose(): void {
    this.ticks.dispose();
    if (this.helpers !== undefined) {
      for (const handle of Object.values(this.helpers)) handle.dispose();
      this.helpers = undefined;
    }
    for (const namespace of this.namespaces.values()) namespace.dispose();
    this.namespaces.clear();
    for (const factory of this.factories.values()) factory?.dispose();
    this.factories.clear();
    this.ctx.dispose();
    this.runtime.dispose();
  }

  private run(helpers: Helpers, namespace: QuickJSHandle, call: SandboxCall): unknown {
    const ctx = this.ctx;
    const fn = ctx.getProp(namespace, call.fn);
    try {
      if (ctx.typeof(fn) !== "function") {
        throw new JsError("exception", `module '${call.entry}' does not export a function '${call.fn}'`);
      }
      const args: QuickJSHandle[] = [];
      let result: ReturnType<QuickJSContext["callFunction"]>;
      try {
        for (const [i, arg] of call.args.entries()) args.push(this.toGuest(helpers, arg, `args[${i}]`));
        result = ctx.callFunction(fn, ctx.undefined, args);
      } finally {
        for (const arg of args) arg.dispose();
      }
      if (result.error !== undefined) throw this.failure(result.error);
      const value = this.settle(result.value);
      try {
        // Jobs left queued would otherwise run during the next call, against its KV.
        this.drainJobs();
        // Short calls may never reach an interrupt poll: measure once more at the end.
        if (this.overHeapLimit(true)) {
          this.needsReset = true;
          throw new JsError(
            "memory",
            `the call used more than its heap limit of ${call.limits.heapBytes} bytes`,
          );
        }
        return this.toHost(helpers, value);
      } finally {
        value.dispose();
      }
    } finally {
      fn.dispose();
    }
  }

  /** Evaluates the prelude once, keeping its pack/unpack/begin functions. */
  private init(): Helpers {
    if (this.helpers !== undefined) return this.helpers;
    const ctx = this.ctx;
    const evaluated = ctx.evalCode(PRELUDE_SOURCE, "<coco:prelude>", { type: "global" });
    if (evaluated.error !== undefined) throw this.failure(evaluated.error, true);
    const host = createHostObject(ctx, {
      env: this.env,
      maxLogLineLength: this.maxLogLineLength,
      scope: () => this.scope,
    });
    const made = ctx.callFunction(evaluated.value, ctx.undefined, host);
    evaluated.value.dispose();
    host.dispose();
    if (made.error !== undefined) throw this.failure(made.error, true);
    const object = made.value;
    const helpers: Helpers = {
      pack: ctx.getProp(object, "pack"),
      unpack: ctx.getProp(object, "unpack"),
      begin: ctx.getProp(object, "begin"),
      seal: ctx.getProp(object, "seal"),
      exportNames: ctx.getProp(object, "exportNames"),
    };
    object.dispose();
    this.helpers = helpers;
    if (this.isolated) {
      try {
        this.invoke(helpers.seal, []).dispose();
      } catch (error) {
        this.needsReset = true;
        throw error;
      }
    }
    return helpers;
  }

  /**
   * Isolated: the factory of `entry`'s per-call instances, made on first use (module-instances.ts);
   * null when the module cannot be run that way. The module itself is evaluated first, as it would
   * be otherwise, so a module that fails to load fails the same way.
   */
  private factory(helpers: Helpers, entry: string): QuickJSHandle | null {
    const known = this.factories.get(entry);
    if (known !== undefined) return known;
    const namespace = this.namespace(entry);
    const names = this.invoke(helpers.exportNames, [namespace.dup()]).consume((h) => this.toHost(helpers, h));
    const factory = moduleFactory(
      this.ctx,
      entry,
      this.sources.get(entry) ?? "",
      names as string[],
      namespace,
    );
    this.factories.set(entry, factory);
    return factory;
  }

  /** The namespace of `entry`, evaluating it (and its imports) on first use. */
  private namespace(entry: string): QuickJSHandle {
    const known = this.namespaces.get(entry);
    if (known !== undefined) return known;
    // A tiny module that imports the entry, so that it is loaded once, under its own name.
    const shim = `import * as ns from ${JSON.stringify(entry)};\nexport { ns };\n`;
    const evaluated = this.ctx.evalCode(shim, `<coco:entry:${entry}>`, { type: "module" });
    if (evaluated.error !== undefined) throw this.failure(evaluated.error, true);
    let exports: QuickJSHandle;
    try {
      exports = this.settle(evaluated.value);
    } catch (error) {
      this.needsReset = true;
      throw error;
    }
    const namespace = this.ctx.getProp(exports, "ns");
    exports.dispose();
    this.namespaces.set(entry, namespace);
    return namespace;
  }

  /** Calls a prelude helper; the argument handles are consumed. */
  private invoke(fn: QuickJSHandle, args: QuickJSHandle[]): QuickJSHandle {
    const result = this.ctx.callFunction(fn, this.ctx.undefined, args);
    for (const arg of args) arg.dispose();
    if (result.error !== undefined) throw this.failure(result.error);
    return result.value;
  }

  private toGuest(helpers: Helpers, value: unknown, what: string): QuickJSHandle {
    const ctx = this.ctx;
    switch (typeof value) {
      case "undefined":
        return ctx.undefined;
      case "string":
        return ctx.newString(value);
      case "number":
        return ctx.newNumber(value);
      case "boolean":
        return value ? ctx.true : ctx.false;
    }
    if (value === null) return ctx.null;
    return this.invoke(helpers.unpack, [writePacked(ctx, value, what)]);
  }

  private toHost(helpers: Helpers, value: QuickJSHandle): unknown {
    const packed = this.ctx.callFunction(helpers.pack, this.ctx.undefined, value);
    if (packed.error !== undefined) {
      const failure = this.failure(packed.error);
      if (failure.kind !== "exception") throw failure;
      throw new JsError("invalid-result", `the result is not JSON-compatible: ${failure.message}`);
    }
    try {
      return readPacked(this.ctx, packed.value);
    } finally {
      packed.value.dispose();
    }
  }

  /** Waits (by running jobs) for a promise; non-promises pass through. Consumes `handle`. */
  private settle(handle: QuickJSHandle): QuickJSHandle {
    const first = this.ctx.getPromiseState(handle);
    if (first.type === "fulfilled" && first.notAPromise) return handle;
    if (first.type !== "pending") {
      handle.dispose();
      if (first.type === "fulfilled") return first.value;
      throw this.failure(first.error);
    }
    try {
      this.drainJobs();
      const state = this.ctx.getPromiseState(handle);
      if (state.type === "fulfilled") return state.value;
      if (state.type === "rejected") throw this.failure(state.error);
      throw new JsError(
        "exception",
        "the function returned a promise that nothing in the sandbox can settle",
      );
    } finally {
      handle.dispose();
    }
  }

  private drainJobs(): void {
    const result = this.runtime.executePendingJobs(-1);
    if (result.error !== undefined) throw this.failure(result.error);
  }

  /**
   * QuickJS built for WebAssembly cannot see allocation sizes (malloc_usable_size is 0 there), so
   * its own limit only stops single allocations larger than the limit. The heap is therefore also
   * measured here: at the end of each call, and from the interrupt handler. Free while the whole
   * WebAssembly memory is under the limit (then this runtime's heap is too), otherwise by walking
   * the heap (about 10 ns per object). When the walks happen is counted in steps, never in time:
   * an isolated (governance) call checks at every step, so its verdict is the same on every node;
   * a warm app context walks at most once per OBJECTS_PER_STEP_BETWEEN_WALKS objects' worth of
   * steps, which keeps the walks' cost near 5% of the call's.
   */
  private overHeapLimit(atEnd = false): boolean {
    const limit = this.limits?.heapBytes ?? Number.POSITIVE_INFINITY;
    const total = this.linearMemoryBytes();
    if (total !== undefined && total <= limit) return false;
    // The statistics object lives in the runtime's internal context; any context of the same
    // runtime can read it.
    const [used, objects] = this.runtime.computeMemoryUsage().consume((usage) => {
      const read = (key: string) => this.ctx.getProp(usage, key).consume((h) => this.ctx.getNumber(h));
      return [read("memory_used_size"), read("obj_count")];
    });
    if (!atEnd && !this.isolated) {
      this.nextMemoryCheckStep = this.steps + Math.ceil(objects / OBJECTS_PER_STEP_BETWEEN_WALKS);
    }
    return used > limit;
  }

  /** Classifies a thrown JS value (consumed) as a JsError; limit failures reset the context. */
  private failure(error: QuickJSHandle, fatal = false): JsError {
    const { failure, reset } = classifyFailure(
      this.ctx,
      error,
      this.limits as JsLimits,
      this.interrupted,
      fatal,
    );
    if (reset) this.needsReset = true;
    return failure;
  }
}
