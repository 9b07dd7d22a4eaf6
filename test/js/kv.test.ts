import assert from "node:assert/strict";
import { test } from "node:test";
import { createJsEngine, createModuleSet, MemoryKv } from "../../src/js/index.ts";
import { thrownJsError } from "./thrown-js-error.ts";

const engine = await createJsEngine({
  env: { now: () => performance.now(), randomBytes: (n) => new Uint8Array(n) },
});

const modules = createModuleSet({
  "kv.js": `
    const s = (x) => ccf.strToBuf(x);
    const str = (b) => (b === undefined ? undefined : ccf.bufToStr(b));
    export function roundTrip() {
      const m = ccf.kv["public:app.things"];
      const same = m.set(s("a"), s("1")) === m;
      m.set(s("b"), ccf.jsonCompatibleToBuf({ n: 2 }));
      m.set(new Uint8Array([99]), new Uint8Array([1, 2, 3]));
      const seen = [];
      m.forEach((v, k, map) => seen.push([str(k), v.byteLength, map === m]));
      return {
        same,
        a: str(m.get(s("a"))),
        b: ccf.bufToJsonCompatible(m.get(s("b"))),
        missing: m.get(s("zz")) === undefined,
        has: [m.has(s("a")), m.has(s("zz"))],
        size: m.size,
        seen: seen.sort(),
        deleted: [m.delete(s("a")), m.delete(s("a"))],
        sizeAfterDelete: m.size,
        noVersion: m.getVersionOfPreviousWrite(s("b")) === undefined,
      };
    }
    export function clearMap(name) { ccf.kv[name].clear(); return ccf.kv[name].size; }
    export function writeDuringIteration() {
      const m = ccf.kv.counters;
      m.forEach((v, k) => m.set(k, ccf.jsonCompatibleToBuf(ccf.bufToJsonCompatible(v) + 1)));
      const out = {};
      m.forEach((v, k) => { out[str(k)] = ccf.bufToJsonCompatible(v); });
      return out;
    }
    export function write(map) { ccf.kv[map].set(s("k"), s("v")); }
    export function remove(map) { return ccf.kv[map].delete(s("k")); }
    export function clear(map) { ccf.kv[map].clear(); }
    export function read(map) { return str(ccf.kv[map].get(s("k"))); }
    export function badKey() { return ccf.kv.m.get("not a buffer"); }
    export function missingValue() { ccf.kv.m.set(s("k")); }
    export function assignMap() { ccf.kv.m = 1; }
    export function sameObject() { return ccf.kv.m === ccf.kv.m && "anything" in ccf.kv; }
    export function historical() {
      const h = ccf.historicalState;
      if (h === undefined) return null;
      return { id: h.transactionId, receipt: h.receipt, value: str(h.kv.m.get(s("k"))), live: str(ccf.kv.m.get(s("k"))) };
    }
    export function historicalWrite() { ccf.historicalState.kv.m.set(s("k"), s("x")); }
    export function range() {
      return ccf.historical.getStateRange(1, 5, 6, 60).map((st) => [st.transactionId, str(st.kv.m.get(s("k")))]);
    }
    export function failingKv() { return ccf.kv.m.get(s("k")); }
  `,
});

function call(fn: string, args: unknown[] = [], extra: object = {}): unknown {
  return engine.call({ modules, entry: "kv.js", fn, args, ...extra });
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

test("ccf.kv maps behave like CCF's: get, has, set, delete, forEach, size over ArrayBuffers", () => {
  const kv = new MemoryKv();
  assert.deepEqual(call("roundTrip", [], { kv }), {
    same: true,
    a: "1",
    b: { n: 2 },
    missing: true,
    has: [true, false],
    size: 3,
    seen: [
      ["a", 1, true],
      ["b", 7, true],
      ["c", 3, true],
    ],
    deleted: [true, false],
    sizeAfterDelete: 2,
    noVersion: true,
  });
  // The host store holds exactly the bytes the JS wrote.
  assert.equal(text(kv.get("public:app.things", utf8("b"))), '{"n":2}');
  assert.deepEqual(kv.get("public:app.things", new Uint8Array([99])), new Uint8Array([1, 2, 3]));
  assert.equal(kv.get("public:app.things", utf8("a")), undefined);
  assert.equal(call("clearMap", ["public:app.things"], { kv }), 0);
  assert.equal(kv.size("public:app.things"), 0);
});

test("forEach iterates a snapshot, so writing to the map inside the callback is safe", () => {
  const kv = new MemoryKv();
  for (const [k, v] of [
    ["x", 1],
    ["y", 10],
  ] as const)
    kv.set("counters", utf8(k), utf8(JSON.stringify(v)));
  assert.deepEqual(call("writeDuringIteration", [], { kv }), { x: 2, y: 11 });
});

test("a KvAccess may offer either entries() or forEach() for iteration", () => {
  const store = new MemoryKv();
  store.set("counters", utf8("x"), utf8("1"));
  const { entries, forEach, ...rest } = {
    get: store.get.bind(store),
    set: store.set.bind(store),
    delete: store.delete.bind(store),
    clear: store.clear.bind(store),
    size: store.size.bind(store),
    entries: store.entries.bind(store),
    forEach: store.forEach.bind(store),
  };
  assert.deepEqual(call("writeDuringIteration", [], { kv: { ...rest, entries } }), { x: 2 });
  assert.deepEqual(call("writeDuringIteration", [], { kv: { ...rest, forEach } }), { x: 3 });
  assert.throws(() => call("writeDuringIteration", [], { kv: rest }), /entries or forEach/);
});

test("read-only calls refuse every write with a TypeError naming the map, and change nothing", () => {
  const kv = new MemoryKv();
  kv.set("public:ccf.gov.users.info", utf8("k"), utf8("v"));
  for (const fn of ["write", "remove", "clear"]) {
    const error = thrownJsError(() => call(fn, ["public:ccf.gov.users.info"], { kv, readOnly: true }));
    assert.equal(error.kind, "exception");
    assert.match(
      error.message,
      /^TypeError: Cannot call (set|delete|clear)\(\) on map 'public:ccf\.gov\.users\.info'/,
    );
  }
  assert.equal(call("read", ["public:ccf.gov.users.info"], { kv, readOnly: true }), "v");
  assert.equal(text(kv.get("public:ccf.gov.users.info", utf8("k"))), "v");
  // The same warm context writes again once a call is not read-only.
  call("write", ["public:ccf.gov.users.info"], { kv });
  assert.equal(kv.size("public:ccf.gov.users.info"), 1);
});

test("each call sees the KV it was given", () => {
  const first = new MemoryKv();
  const second = new MemoryKv();
  call("write", ["m"], { kv: first });
  assert.equal(call("read", ["m"], { kv: second }), undefined);
  assert.equal(call("read", ["m"], { kv: first }), "v");
});

test("wrong argument types are JS TypeErrors, as in CCF", () => {
  const kv = new MemoryKv();
  assert.match(
    thrownJsError(() => call("badKey", [], { kv })).message,
    /TypeError: ccf\.kv\["m"\]\.get: key must be an ArrayBuffer/,
  );
  assert.match(
    thrownJsError(() => call("missingValue", [], { kv })).message,
    /set: value must be an ArrayBuffer/,
  );
  assert.match(thrownJsError(() => call("assignMap", [], { kv })).message, /ccf\.kv cannot be assigned to/);
  assert.equal(call("sameObject", [], { kv }), true);
});

test("a KvAccess error reaches the JS as an exception with its message", () => {
  const kv = new MemoryKv();
  kv.get = () => {
    throw new Error("store offline");
  };
  assert.match(thrownJsError(() => call("failingKv", [], { kv })).message, /store offline/);
});

test("historical state: ccf.historicalState and getStateRange expose read-only KVs", () => {
  const live = new MemoryKv();
  live.set("m", utf8("k"), utf8("now"));
  const past = new MemoryKv();
  past.set("m", utf8("k"), utf8("then"));
  const historicalState = { transactionId: "2.5", receipt: { signature: "sig", proof: [] }, kv: past };
  assert.deepEqual(call("historical", [], { kv: live, historicalState }), {
    id: "2.5",
    receipt: { signature: "sig", proof: [] },
    value: "then",
    live: "now",
  });
  assert.equal(call("historical", [], { kv: live }), null, "not carried over to the next call");
  const error = thrownJsError(() => call("historicalWrite", [], { kv: live, historicalState }));
  assert.match(error.message, /historical state: it is read-only/);

  const states = ["5", "6"].map((n) => {
    const kv = new MemoryKv();
    kv.set("m", utf8("k"), utf8(`at ${n}`));
    return { transactionId: `2.${n}`, receipt: {}, kv };
  });
  const seen: unknown[] = [];
  const hooks = {
    historical: {
      getStateRange: (...args: unknown[]) => {
        seen.push(args);
        return states;
      },
    },
  };
  assert.deepEqual(call("range", [], { kv: live, hooks }), [
    ["2.5", "at 5"],
    ["2.6", "at 6"],
  ]);
  assert.deepEqual(seen, [[1, 5, 6, 60]]);
});
