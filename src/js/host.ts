// The native functions behind the prelude's private `host` object. They read the current
// call's state (KV, hooks, logger) through `CallScope`, so one warm context serves many calls.
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { cryptoFunctions, pemToId } from "./crypto.ts";
import { newBuffer, readBuffer, readPacked, writePacked } from "./marshal.ts";
import { HOOK_PATHS } from "./prelude.ts";
import { verifySnpAttestation } from "./snp-attestation.ts";
import type {
  JsEnv,
  JsHistoricalState,
  JsHooks,
  JsLogger,
  JsLogLevel,
  KvAccess,
  KvRangeOptions,
} from "./types.ts";

/** What host functions see of the call in progress. */
export interface CallScope {
  /** Store 0 is the call's KV; higher numbers are historical states (always read-only). */
  stores: (KvAccess | undefined)[];
  readOnly: boolean;
  hooks: JsHooks;
  logger: JsLogger | undefined;
}

export interface HostDeps {
  env: JsEnv;
  maxLogLineLength: number;
  /** The call in progress, or undefined between calls. */
  scope(): CallScope | undefined;
}

const LOG_LEVELS = new Set<string>(["debug", "info", "warn", "error"]);
const utf8 = new TextDecoder("utf-8");

function activeScope(deps: HostDeps): CallScope {
  const scope = deps.scope();
  if (scope === undefined) throw new Error("the ccf global is only usable while a call is running");
  return scope;
}

function store(deps: HostDeps, index: number): KvAccess {
  const kv = activeScope(deps).stores[index];
  if (kv === undefined)
    throw new Error(index === 0 ? "ccf.kv is not available in this call" : "stale historical state");
  return kv;
}

function writable(deps: HostDeps, index: number, op: string, map: string): KvAccess {
  const scope = activeScope(deps);
  if (index !== 0)
    throw new TypeError(`Cannot call ${op}() on map '${map}' of a historical state: it is read-only`);
  if (scope.readOnly)
    throw new TypeError(`Cannot call ${op}() on map '${map}': the KV is read-only in this call`);
  return store(deps, 0);
}

/** Looks up hooks["a"]["b"] for "a.b". */
function findHook(hooks: JsHooks, path: string): ((...args: unknown[]) => unknown) | undefined {
  let value: unknown = hooks;
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === "function" ? (value as (...args: unknown[]) => unknown) : undefined;
}

/** Registers historical states as extra read-only stores; the guest gets their numbers. */
function exposeStates(scope: CallScope, states: JsHistoricalState[]): unknown[] {
  return states.map((state) => {
    scope.stores.push(state.kv);
    return { transactionId: state.transactionId, receipt: state.receipt, kvStore: scope.stores.length - 1 };
  });
}

/** Concatenates a map's entries as [u32 key length][key][u32 value length][value]... */
function entriesBlob(kv: KvAccess, map: string): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let total = 0;
  const add = (key: Uint8Array, value: Uint8Array) => {
    parts.push(key, value);
    total += 8 + key.length + value.length;
  };
  if (kv.entries !== undefined) {
    for (const [key, value] of kv.entries(map)) add(key, value);
  } else {
    kv.forEach?.(map, add);
  }
  if (parts.length === 0) return undefined;
  const blob = new Uint8Array(total);
  const view = new DataView(blob.buffer);
  let at = 0;
  for (const part of parts) {
    view.setUint32(at, part.length, true);
    blob.set(part, at + 4);
    at += 4 + part.length;
  }
  return blob;
}

/** Builds the `host` object handed to the prelude; the caller owns the returned handle. */
export function createHostObject(ctx: QuickJSContext, deps: HostDeps): QuickJSHandle {
  const crypto = cryptoFunctions(deps.env);
  const hookPaths = new Set<string>(HOOK_PATHS);

  // Generic calls: packed arguments in, packed result out.
  function dispatch(name: string, args: unknown[]): unknown {
    if (name === "pemToId") return pemToId(args[0]);
    if (name === "snp.verifySnpAttestation") return verifySnpAttestation(...args);
    if (name === "kv.range") {
      const [index, map, options] = args as [number, string, KvRangeOptions];
      const kv = store(deps, index);
      if (kv.range === undefined) throw new TypeError(`ccf.kv["${map}"].range is not available here`);
      return kv.range(map, options);
    }
    if (name.startsWith("crypto.")) {
      const fn = Object.hasOwn(crypto, name.slice(7)) ? crypto[name.slice(7)] : undefined;
      if (fn === undefined) throw new TypeError(`ccf.${name} is not a function`);
      return fn(...args);
    }
    const path = name.slice(5);
    if (!name.startsWith("hook:") || !hookPaths.has(path)) throw new TypeError(`unknown host call ${name}`);
    const scope = activeScope(deps);
    const hook = findHook(scope.hooks, path);
    if (hook === undefined) throw new Error(`ccf.${path} is not available here`);
    const result = hook(...args);
    if (path === "historical.getStateRange" && Array.isArray(result)) {
      return exposeStates(scope, result as JsHistoricalState[]);
    }
    return result;
  }

  const fns: Record<string, (...args: QuickJSHandle[]) => QuickJSHandle | undefined> = {
    kvGet(s, m, k) {
      const value = store(deps, ctx.getNumber(s)).get(ctx.getString(m), readBuffer(ctx, k));
      return value === undefined ? undefined : newBuffer(ctx, value);
    },
    kvHas(s, m, k) {
      const kv = store(deps, ctx.getNumber(s));
      const map = ctx.getString(m);
      const key = readBuffer(ctx, k);
      const has = kv.has === undefined ? kv.get(map, key) !== undefined : kv.has(map, key);
      return has ? ctx.true : ctx.false;
    },
    kvVersion(s, m, k) {
      const kv = store(deps, ctx.getNumber(s));
      const version = kv.getVersionOfPreviousWrite?.(ctx.getString(m), readBuffer(ctx, k));
      return version === undefined ? undefined : ctx.newNumber(version);
    },
    kvSet(s, m, k, v) {
      const map = ctx.getString(m);
      writable(deps, ctx.getNumber(s), "set", map).set(map, readBuffer(ctx, k), readBuffer(ctx, v));
      return undefined;
    },
    kvDelete(s, m, k) {
      const map = ctx.getString(m);
      return writable(deps, ctx.getNumber(s), "delete", map).delete(map, readBuffer(ctx, k))
        ? ctx.true
        : ctx.false;
    },
    kvClear(s, m) {
      const map = ctx.getString(m);
      writable(deps, ctx.getNumber(s), "clear", map).clear(map);
      return undefined;
    },
    kvEntries(s, m) {
      const blob = entriesBlob(store(deps, ctx.getNumber(s)), ctx.getString(m));
      return blob === undefined ? undefined : newBuffer(ctx, blob);
    },
    kvSize(s, m) {
      return ctx.newNumber(store(deps, ctx.getNumber(s)).size(ctx.getString(m)));
    },
    strToBuf(s) {
      return newBuffer(ctx, Buffer.from(ctx.getString(s), "utf8"));
    },
    bufToStr(b) {
      return ctx.newString(utf8.decode(readBuffer(ctx, b)));
    },
    call(n, ...packed) {
      const name = ctx.getString(n);
      const args = packed.map((h) => readPacked(ctx, h));
      return writePacked(ctx, dispatch(name, args), `the result of ${name}`);
    },
    log(l, m) {
      const scope = activeScope(deps);
      const level = ctx.getString(l);
      let line = ctx.getString(m);
      if (line.length > deps.maxLogLineLength) {
        line = `${line.slice(0, deps.maxLogLineLength)}... (${line.length - deps.maxLogLineLength} more characters)`;
      }
      scope.logger?.(LOG_LEVELS.has(level) ? (level as JsLogLevel) : "info", line);
      return undefined;
    },
    now() {
      return ctx.newNumber(deps.env.now());
    },
    random(n) {
      const count = ctx.getNumber(n);
      const bytes = deps.env.randomBytes(count);
      if (bytes.length !== count) throw new Error("the random source returned too few bytes");
      return newBuffer(ctx, bytes);
    },
  };

  const host = ctx.newObject();
  for (const [name, fn] of Object.entries(fns)) {
    ctx.newFunction(name, fn).consume((h) => ctx.setProp(host, name, h));
  }
  return host;
}
