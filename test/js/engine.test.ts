import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  createJsEngine,
  createModuleSet,
  JsConfigError,
  JsError,
  type JsErrorKind,
  type JsLogLevel,
  MAX_STACK_BYTES,
} from "../../src/js/index.ts";
import { thrownJsError } from "./thrown-js-error.ts";

// A counter as random source: tests can predict Math.random and key generation.
let counter = 0;
const env = {
  now: () => performance.now(),
  randomBytes: (n: number) => Uint8Array.from({ length: n }, () => counter++ & 0xff),
};
const logs: [JsLogLevel, string][] = [];
const engine = await createJsEngine({
  env,
  logger: (level, line) => logs.push([level, line]),
  maxLogLineLength: 64,
});

const app = createModuleSet({
  "/main.js": `
    import { twice } from "./lib/math.js";
    import { greet } from "lib/text.js";
    globalThis.evaluations = (globalThis.evaluations ?? 0) + 1;
    let calls = 0;
    export function echo(...args) { return args.length === 1 ? args[0] : args; }
    export function compute(x) { return { doubled: twice(x), greeting: greet("coco") }; }
    export function state() { calls += 1; return { calls, evaluations: globalThis.evaluations }; }
    export function loop() { for (;;) {} }
    export function bomb() { const a = []; for (let i = 0; ; i++) a.push(new Array(64).fill(i)); }
    export function hugeBuffer() { return new ArrayBuffer(64 << 20).byteLength; }
    export function retain(n) { globalThis.kept = Array.from({ length: n }, () => new Uint8Array(1 << 16)); }
    export function recurse(n) { return recurse(n + 1) + 1; }
    export function fail() { throw new TypeError("bad input"); }
    export function failWith(value) { throw value; }
    export function returnFunction() { return () => 1; }
    export function returnSymbol() { return Symbol("s"); }
    export function returnBigInt() { return 1n; }
    export function returnCycle() { const o = {}; o.self = o; return o; }
    export async function later(x) { await null; return x + 1; }
    export async function rejectLater() { await null; throw new Error("async failure"); }
    export function never() { return new Promise(() => {}); }
    export function log() { console.log("plain", { a: 1 }); console.warn("x".repeat(100)); console.error(new Error("oops")); }
    export function clock() { const before = Date.now(); ccf.enableUntrustedDateTime(true); return [before, Date.now() > 0, new Date(5).getTime()]; }
    export function random() { return [Math.random(), Math.random()]; }
    export function noKv() { return ccf.kv["m"].size; }
    export function missingHook() { return ccf.node.triggerSnapshot(); }
  `,
  "lib/math.js": "export const twice = (x) => 2 * x;",
  "lib/text.js": 'import { prefix } from "../lib/../lib/prefix.js"; export const greet = (n) => prefix + n;',
  "lib/prefix.js": 'export const prefix = "hello ";',
  "bad-import.js": 'import { x } from "./nowhere.js"; export function f() { return x; }',
  "syntax.js": "export function f( { return 1; }",
  "throws-at-load.js": 'throw new Error("load failure"); export function f() {}',
});

function call(fn: string, args: unknown[] = [], extra: object = {}): unknown {
  return engine.call({ modules: app, entry: "main.js", fn, args, ...extra });
}

function expectKind(kind: JsErrorKind, fn: () => unknown): JsError {
  const error = thrownJsError(fn);
  assert.equal(error.kind, kind, `${error.kind}: ${error.message}`);
  return error;
}

test("calls an export with JSON arguments and imports resolved relative and bare", () => {
  assert.deepEqual(call("compute", [21]), { doubled: 42, greeting: "hello coco" });
  assert.deepEqual(call("echo", [1, "two", null, [true]]), [1, "two", null, [true]]);
  assert.equal(call("echo", [undefined]), undefined);
});

test("byte buffers cross in both directions as ArrayBuffer / Uint8Array", () => {
  const bytes = new Uint8Array([0, 1, 254, 255]);
  assert.deepEqual(call("echo", [{ nested: [bytes], empty: new Uint8Array(0) }]), {
    nested: [bytes],
    empty: new Uint8Array(0),
  });
  const view = new Uint8Array([9, 8, 7, 6]).subarray(1, 3);
  assert.deepEqual(call("echo", [view]), new Uint8Array([8, 7]));
});

test("any JSON value with embedded byte arrays round-trips through the sandbox", () => {
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom(null, true, false),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string(),
      fc.uint8Array({ maxLength: 8 }),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(fc.string(), tie("value"), { maxKeys: 4 }),
    ),
  }));
  // What JSON can carry: -0 becomes 0; bytes stay bytes.
  const expected = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return v;
    if (Array.isArray(v)) return v.map(expected);
    if (typeof v === "object" && v !== null) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expected(x)]));
    }
    return typeof v === "number" ? JSON.parse(JSON.stringify(v)) : v;
  };
  fc.assert(
    fc.property(value, (v) => {
      assert.deepEqual(call("echo", [v]), expected(v));
    }),
    { numRuns: 150 },
  );
});

test("an unknown import, a syntax error and a throwing module fail clearly", () => {
  const unknown = expectKind("exception", () =>
    engine.call({ modules: app, entry: "bad-import.js", fn: "f" }),
  );
  assert.match(
    unknown.message,
    /module 'nowhere\.js' is not in the module set \(imported by 'bad-import\.js'\)/,
  );
  assert.match(
    expectKind("exception", () => engine.call({ modules: app, entry: "syntax.js", fn: "f" })).message,
    /SyntaxError/,
  );
  assert.match(
    expectKind("exception", () => engine.call({ modules: app, entry: "throws-at-load.js", fn: "f" })).message,
    /load failure/,
  );
  assert.match(
    expectKind("exception", () => engine.call({ modules: app, entry: "nope.js", fn: "f" })).message,
    /nope\.js/,
  );
  assert.match(
    expectKind("exception", () => call("notExported")).message,
    /does not export a function 'notExported'/,
  );
  assert.deepEqual(call("compute", [1]), { doubled: 2, greeting: "hello coco" });
});

test("a throw is reported with its message and JS stack", () => {
  const error = expectKind("exception", () => call("fail"));
  assert.equal(error.message, "TypeError: bad input");
  assert.match(error.trace ?? "", /at fail \(main\.js:\d+/);
  assert.deepEqual(error.toJSON(), {
    kind: "exception",
    message: "TypeError: bad input",
    stack: error.trace,
  });
  assert.equal(expectKind("exception", () => call("failWith", ["plain string"])).message, "plain string");
  assert.equal(expectKind("exception", () => call("failWith", [{ code: 7 }])).message, '{"code":7}');
});

test("results that are not JSON-compatible are refused as invalid-result", () => {
  for (const fn of ["returnFunction", "returnSymbol", "returnBigInt", "returnCycle"]) {
    expectKind("invalid-result", () => call(fn));
  }
  assert.deepEqual(call("echo", [5]), 5);
});

test("async functions are awaited inside the sandbox", () => {
  assert.equal(call("later", [41]), 42);
  assert.match(expectKind("exception", () => call("rejectLater")).message, /async failure/);
  assert.match(
    expectKind("exception", () => call("never")).message,
    /promise that nothing in the sandbox can settle/,
  );
});

test("an infinite loop uses up its step budget and the engine keeps working", () => {
  const error = expectKind("budget", () => call("loop", [], { limits: { steps: 50 } }));
  assert.match(error.message, /execution budget of 50 steps \(500000 QuickJS ticks\)/);
  assert.equal(engine.lastCallUsage?.steps, 51, "stopped at the first step past the budget");
  assert.deepEqual(call("compute", [2]), { doubled: 4, greeting: "hello coco" });
});

test("the budget counts ticks, not time: a loop of n iterations uses the same count every run", () => {
  // Warm contexts reset QuickJS's countdown too (tick-counter.ts): the count is exact.
  const counts = new Set<string>();
  for (let i = 0; i < 3; i++) {
    call("compute", [i]);
    counts.add(JSON.stringify(engine.lastCallUsage));
  }
  assert.equal(counts.size, 1, [...counts].join(" "));
  assert.ok(JSON.parse([...counts][0] as string).ticks > 0);
});

/** The heap limit under test (the step budget counts no time: a loaded machine changes nothing). */
const MEMORY_LIMITS = { limits: { heapBytes: 16 << 20 } };

test("a memory bomb hits the heap limit and the engine keeps working", () => {
  assert.match(expectKind("memory", () => call("bomb", [], MEMORY_LIMITS)).message, /16777216/);
  expectKind("memory", () => call("hugeBuffer", [], MEMORY_LIMITS));
  // Too short to reach an interrupt poll, but what it keeps is measured when it returns.
  expectKind("memory", () => call("retain", [400], MEMORY_LIMITS));
  assert.equal(call("retain", [100], MEMORY_LIMITS), undefined);
  assert.deepEqual(call("compute", [3]), { doubled: 6, greeting: "hello coco" });
});

test("deep recursion hits the stack limit and the engine keeps working", () => {
  expectKind("stack", () => call("recurse", [0]));
  expectKind("stack", () => call("recurse", [0], { limits: { stackBytes: 16 * 1024 } }));
  assert.deepEqual(call("compute", [4]), { doubled: 8, greeting: "hello coco" });
});

test("warm reuse: modules are evaluated once; a used-up budget or memory failure rebuilds the context", () => {
  engine.evict(app);
  assert.deepEqual(call("state"), { calls: 1, evaluations: 1 });
  assert.deepEqual(call("state"), { calls: 2, evaluations: 1 });
  expectKind("exception", () => call("fail"));
  assert.deepEqual(call("state"), { calls: 3, evaluations: 1 }, "an exception keeps the warm context");
  expectKind("budget", () => call("loop", [], { limits: { steps: 20 } }));
  assert.deepEqual(call("state"), { calls: 1, evaluations: 1 }, "a used-up budget rebuilds it");
  expectKind("memory", () => call("bomb", [], MEMORY_LIMITS));
  assert.deepEqual(call("state"), { calls: 1, evaluations: 1 }, "running out of memory rebuilds it");
  engine.evict(app);
  assert.deepEqual(call("state"), { calls: 1, evaluations: 1 }, "evict() rebuilds it");
});

test("the same modules given as a plain object share the warm context", () => {
  const sources = { "a.js": "let n = 0; export function next() { return ++n; }" };
  assert.equal(engine.call({ modules: sources, entry: "a.js", fn: "next" }), 1);
  assert.equal(engine.call({ modules: { ...sources }, entry: "/a.js", fn: "next" }), 2);
  assert.equal(engine.call({ modules: createModuleSet(sources), entry: "./a.js", fn: "next" }), 3);
  assert.equal(engine.call({ modules: { "a.js": `${sources["a.js"]} ` }, entry: "a.js", fn: "next" }), 1);
});

test("console output goes to the logger, one truncated line per call", () => {
  logs.length = 0;
  call("log");
  assert.deepEqual(logs[0], ["info", 'plain {"a":1}']);
  assert.equal(logs[1]?.[0], "warn");
  assert.equal(logs[1]?.[1], `${"x".repeat(64)}... (36 more characters)`);
  assert.equal(logs[2]?.[0], "error");
  assert.match(logs[2]?.[1] ?? "", /^Error: oops/);
  const mine: string[] = [];
  call("log", [], { logger: (_level: JsLogLevel, line: string) => mine.push(line) });
  assert.equal(mine.length, 3);
});

test("Date reads 0 until the call opts into host time; the opt-in does not outlive the call", () => {
  assert.deepEqual(call("clock"), [0, true, 5]);
  assert.deepEqual(call("clock"), [0, true, 5]);
});

test("Math.random draws from the injected random source", () => {
  counter = 0;
  const [a, b] = call("random") as [number, number];
  assert.ok(a >= 0 && a < 1 && b >= 0 && b < 1 && a !== b);
  counter = 0;
  assert.deepEqual(call("random"), [a, b]);
});

test("ccf.kv without a KV, and a hook that was not provided, throw clear JS errors", () => {
  assert.match(expectKind("exception", () => call("noKv")).message, /ccf\.kv is not available in this call/);
  assert.match(
    expectKind("exception", () => call("missingHook")).message,
    /ccf\.node\.triggerSnapshot is not available here/,
  );
});

test("invalid options are refused with JsConfigError", () => {
  assert.throws(() => engine.call({ modules: app, entry: "main.js", fn: "" }), JsConfigError);
  assert.throws(() => engine.call({ modules: {}, entry: "main.js", fn: "f" }), /modules is empty/);
  assert.throws(
    () => engine.call({ modules: { "../x.js": "" }, entry: "x.js", fn: "f" }),
    /not a valid path/,
  );
  assert.throws(
    () => engine.call({ modules: { "a.js": "", "/a.js": "" }, entry: "a.js", fn: "f" }),
    /duplicates/,
  );
  assert.throws(() => call("echo", [() => 1]), /args\[0\] is not JSON-compatible/);
  assert.throws(() => call("echo", [], { limits: { steps: 0 } }), /limits\.steps/);
  assert.throws(
    () => call("echo", [], { limits: { timeMs: 1000 } as object }),
    /limits\.timeMs is gone: calls are limited by a step budget/,
  );
  assert.throws(
    () => call("echo", [], { limits: { heapBytes: 1.5 } }),
    /limits\.heapBytes must be an integer/,
  );
  assert.throws(() => call("echo", [], { kv: { get() {} } }), /kv must implement KvAccess/);
});

test("stack budgets above the safe maximum are clamped, not trusted", () => {
  // CCF's default of 1 MiB would let QuickJS overrun Node's native stack; it is capped instead.
  expectKind("stack", () => call("recurse", [0], { limits: { stackBytes: 1 << 20 } }));
  assert.equal(MAX_STACK_BYTES, 48 * 1024);
});

test("a host stack overflow inside QuickJS reloads the module; calls resume after ready()", async () => {
  const modules = {
    "nest.js":
      "export function nest(n) { let o = {}; while (n--) o = { o }; return JSON.stringify(o).length; }",
  };
  function descend(n: number, fn: () => unknown): unknown {
    return n === 0 ? fn() : descend(n - 1, fn);
  }
  let lo = 0;
  let hi = 1 << 20;
  while (lo + 1 < hi) {
    const mid = (lo + hi) >> 1;
    try {
      descend(mid, () => 0);
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  // With 90% of Node's stack already used, JSON.stringify of a deep object overruns it.
  const crash = descend(Math.floor(lo * 0.9), () =>
    thrownJsError(() => engine.call({ modules, entry: "nest.js", fn: "nest", args: [100000] })),
  );
  assert.ok(
    crash instanceof JsError && (crash.kind === "stack" || crash.kind === "unavailable"),
    String(crash),
  );
  expectKind("unavailable", () => call("echo", [1]));
  await engine.ready();
  assert.equal(engine.cachedContexts, 0);
  assert.deepEqual(call("compute", [5]), { doubled: 10, greeting: "hello coco" });
  // With the stack mostly free the same call is a plain, catchable stack overflow.
  expectKind("stack", () => engine.call({ modules, entry: "nest.js", fn: "nest", args: [100000] }));
});
