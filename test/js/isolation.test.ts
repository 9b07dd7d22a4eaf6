// Isolated calls (the constitution and ballots): one compiled, reused context, yet nothing a call
// does reaches the next one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createJsEngine, JsError, jsConstitution, MemoryKv } from "../../src/js/index.ts";
import { Store } from "../../src/kv/index.ts";
import { Tables as GovTables, SINGLETON_KEY as SINGLETON, utf8 } from "../../src/ledger/index.ts";

const engine = await createJsEngine({
  env: {
    now: () => performance.now(),
    randomBytes: (n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256)),
  },
});

const call = (source: string, fn = "f", args: unknown[] = [], extra: object = {}) =>
  engine.call({
    modules: { "c.js": source },
    entry: "c.js",
    fn,
    args,
    isolated: true,
    kv: new MemoryKv(),
    ...extra,
  });

/** Tries every place a call could keep something for the next one, and reports what it found. */
const HOARDER = `
let calls = 0;
const box = { n: 0 };
const list = [];
const seen = new Map();
export let exported = 0;
export function f() {
  const found = {
    calls, box: box.n, list: list.length, seen: seen.size, exported,
    global: globalThis.stash, proto: Object.prototype.stash, kvMap: ccf.kv["public:x"].stash,
    ccf: ccf.stash, mathRandomReplaced: Math.random.stash, arrayPush: [].push.stash,
    weak: typeof WeakRef + typeof FinalizationRegistry,
  };
  calls++; box.n++; list.push(1); seen.set(calls, 1); exported++;
  const failed = [];
  const attempt = (what, fn) => { try { fn(); } catch (e) { failed.push(what + ": " + e.name); } };
  attempt("global", () => { globalThis.stash = 1; });
  attempt("proto", () => { Object.prototype.stash = 1; });
  attempt("kvMap", () => { ccf.kv["public:x"].stash = 1; });
  attempt("ccf", () => { ccf.stash = 1; });
  attempt("math", () => { const r = () => 0; r.stash = 1; Math.random = r; });
  attempt("push", () => { const p = function () { return 0; }; p.stash = 1; Array.prototype.push = p; });
  Promise.resolve().then(() => { calls = 100; });
  return { found, failed };
}`;

test("a module that tries to keep state between isolated calls finds none of it", () => {
  const first = call(HOARDER) as { found: Record<string, unknown>; failed: string[] };
  const second = call(HOARDER) as { found: Record<string, unknown>; failed: string[] };
  const third = call(HOARDER) as { found: Record<string, unknown>; failed: string[] };
  const clean = {
    calls: 0,
    box: 0,
    list: 0,
    seen: 0,
    exported: 0,
    weak: "undefinedundefined",
  };
  assert.deepEqual(first.found, clean);
  assert.deepEqual(second.found, clean, "module state, globals and built-ins are as they were");
  assert.deepEqual(third.found, clean);
  // Writes to shared objects are refused where they happen (strict code throws).
  assert.deepEqual(first.failed, [
    "global: TypeError",
    "proto: TypeError",
    "kvMap: TypeError",
    "ccf: TypeError",
    "math: TypeError",
    "push: TypeError",
  ]);
  assert.equal(engine.cachedContexts > 0, true);
});

test("the same module without isolation keeps its state (what isolation prevents)", () => {
  const warm = (source: string) =>
    engine.call({ modules: { "w.js": source }, entry: "w.js", fn: "f", kv: new MemoryKv() });
  const source = "let calls = 0; export function f() { return ++calls; }";
  assert.equal(warm(source), 1);
  assert.equal(warm(source), 2);
  assert.equal(call(source), 1);
  assert.equal(call(source), 1);
});

test("a sealed realm still lets code assign what built-in prototypes define, on its own objects", () => {
  const source = `
    class Refused extends Error { constructor(m) { super(m); this.name = "Refused"; } }
    export function f() {
      const o = {}; o.toString = () => "mine"; o.constructor = "c";
      const e = new Refused("no");
      let thrown;
      try { Error.prototype.name = "x"; } catch (x) { thrown = x.name; }
      return [String(o), o.constructor, e.name, String(e), Error.prototype.name, thrown, Math.random() !== Math.random()];
    }`;
  assert.deepEqual(call(source), ["mine", "c", "Refused", "Refused: no", "Error", "TypeError", true]);
});

test("isolated calls keep their limits, and a failure leaves the next call unaffected", () => {
  const source = `
    let n = 0;
    export function loop() { n++; for (;;) {} }
    export function bomb() { n++; const a = []; for (;;) a.push(new Array(1e5).fill(n)); }
    export function count() { return ++n; }`;
  assert.throws(
    () => call(source, "loop", [], { limits: { steps: 50 } }),
    (e: JsError) => e.kind === "budget",
  );
  assert.throws(
    () => call(source, "bomb", [], { limits: { heapBytes: 8 * 1024 * 1024 } }),
    (e: JsError) => e.kind === "memory",
  );
  assert.equal(call(source, "count"), 1);
  assert.equal(call(source, "count"), 1);
});

test("modules the fast path cannot instantiate (export lists, default) run fresh for each call", () => {
  const lists = "let n = 0; function f() { return ++n; } export { f as g }; export default f;";
  assert.equal(call(lists, "g"), 1);
  assert.equal(call(lists, "g"), 1);
  assert.equal(call(lists, "default"), 1);
  // Strings and comments that mention export are left alone.
  const tricky = `// export function nope() {}
    const text = "export function f() { return 'wrong' }";
    const re = /export const x/;
    export function f() { return [text.length, re.source, \`export \${1}\`]; }`;
  assert.deepEqual(call(tricky), [38, "export const x", "export 1"]);
});

test("set_constitution takes effect at the next call; each call is deterministic", () => {
  const constitution = jsConstitution(engine, () => ({}));
  const store = new Store();
  const write = (source: string) => {
    const tx = store.begin();
    tx.map(GovTables.constitution).set(SINGLETON, utf8(source));
    assert.ok(store.commit(tx).ok);
  };
  const validate = () => {
    const tx = store.begin();
    try {
      return constitution.validate(tx, JSON.stringify({ actions: [] }));
    } finally {
      tx.abandon();
    }
  };
  const version = (v: string) => `
    let calls = 0;
    export function validate(p) { calls++; return { valid: true, description: "${v}:" + calls + ":" + Date.now() }; }
    export function resolve() { return "Open"; }
    export function apply() {}`;
  write(version("one"));
  assert.deepEqual(validate(), { valid: true, description: "one:1:0" });
  assert.deepEqual(validate(), { valid: true, description: "one:1:0" });
  write(version("two"));
  assert.deepEqual(validate(), { valid: true, description: "two:1:0" });
  assert.ok(JsError);
});
