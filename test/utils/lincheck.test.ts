import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  type CasInput,
  type CasOutput,
  type CasState,
  casRegisterModel,
  check,
  type Event,
  eventsToOperations,
  HistoryParseError,
  type KvRegisterInput,
  type KvRegisterOutput,
  kvModel,
  kvRegisterModel,
  LincheckError,
  type Model,
  type Operation,
  operationsToEvents,
  parseJepsenLog,
  parseKvLog,
} from "./lincheck/index.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const vectors = join(repoRoot, "..", "shared", "vectors", "linearizability");
/** The external vectors are read in place; where a checkout has none, say so rather than fail. */
const needsVectors = existsSync(vectors) ? {} : { skip: `no vectors at ${vectors}` };
const INF = Number.POSITIVE_INFINITY;

type CasOp = Operation<CasInput, CasOutput>;
type KvOp = Operation<KvRegisterInput, KvRegisterOutput>;

function verdicts(dir: string): [string, boolean][] {
  const listed = JSON.parse(readFileSync(join(vectors, dir, "verdicts.json"), "utf8")) as Record<
    string,
    boolean
  >;
  const files = readdirSync(join(vectors, dir)).filter((f) => f !== "verdicts.json" && !f.endsWith(".md"));
  // Every history file has a verdict and every verdict a file, so none is silently skipped.
  assert.deepEqual(Object.keys(listed).sort(), files.sort(), `${dir}: files and verdicts.json disagree`);
  return Object.entries(listed);
}

function op<I, O>(clientId: number, input: I, output: O, call: number, ret: number): Operation<I, O> {
  return { clientId, input, output, call, return: ret };
}
const read = (c: number, value: number | null, call: number, ret: number): CasOp =>
  op(c, { op: "read" }, { status: "ok", value }, call, ret);
const write = (c: number, value: number, call: number, ret: number, status: "ok" | "unknown" = "ok"): CasOp =>
  op(c, { op: "write", value }, { status }, call, ret);
const cas = (
  c: number,
  from: number,
  to: number,
  status: CasOutput["status"],
  call: number,
  ret: number,
): CasOp => op(c, { op: "cas", from, to }, { status }, call, ret);

// ---------------------------------------------------------------- vectors

// Budgets are counted in search steps, not wall-clock time, so a loaded machine gets the same verdicts
// (the hardest Jepsen history needs about 1.4 million steps, a few seconds on an idle core).
const JEPSEN_STEPS = 5_000_000;

test(
  "every Jepsen etcd history gets its known verdict (a deterministic step budget each)",
  needsVectors,
  () => {
    for (const [file, linearizable] of verdicts("jepsen-etcd")) {
      const ops = parseJepsenLog(readFileSync(join(vectors, "jepsen-etcd", file), "utf8"), file);
      assert.ok(ops.length >= 77 && ops.length <= 90, `${file}: ${ops.length} operations`);
      const { result, counterExample } = check(casRegisterModel, ops, { maxSteps: JEPSEN_STEPS });
      assert.equal(result, linearizable ? "ok" : "illegal", file);
      if (linearizable) continue;
      // The counter-example is a genuine witness: its prefix alone, with the operations still
      // running at the cut left open, cannot be linearized either.
      const ce = counterExample!;
      assert.ok(ce.operations.includes(ce.stuck), file);
      assert.ok(ce.operations.length < ops.length, `${file}: the prefix is shorter than the history`);
      const prefix = ce.operations.map((o) => (o.return > ce.stuck.return ? { ...o, return: INF } : o));
      assert.equal(check(casRegisterModel, prefix, { maxSteps: JEPSEN_STEPS }).result, "illegal", file);
    }
  },
);

test("every KV history gets its known verdict, checked per key", needsVectors, () => {
  for (const [file, linearizable] of verdicts("kv")) {
    const ops = parseKvLog(readFileSync(join(vectors, "kv", file), "utf8"), file);
    const { result, partitions } = check(kvModel, ops, { maxSteps: 100_000 });
    assert.equal(result, linearizable ? "ok" : "illegal", file);
    assert.ok(partitions > 1, `${file} is split by key`);
  }
});

test(
  "without per-key partitioning the KV histories get the same verdicts (deterministic step budget)",
  needsVectors,
  () => {
    const whole: typeof kvModel = { ...kvModel, partition: undefined };
    for (const [file, linearizable] of verdicts("kv")) {
      const ops = parseKvLog(readFileSync(join(vectors, "kv", file), "utf8"), file);
      // c10-* need about 1.7 million steps unpartitioned (a few seconds) against 1,500 at most per key.
      const { result, partitions } = check(whole, ops, { maxSteps: 3_000_000 });
      assert.equal(partitions, 1);
      assert.equal(result, linearizable ? "ok" : "illegal", file);
    }
  },
);

// ---------------------------------------------------------------- hand-made histories

test("a stale read after a completed write is illegal, with a readable counter-example", () => {
  const history = [write(0, 1, 0, 10), read(1, null, 20, 30), read(2, 1, 40, 50)];
  const r = check(casRegisterModel, history);
  assert.equal(r.result, "illegal");
  const ce = r.counterExample!;
  assert.deepEqual(ce.operations, history.slice(0, 2), "the shortest failing prefix ends at the stale read");
  assert.equal(ce.stuck, history[1]);
  assert.deepEqual(ce.longest.order, [history[0]]);
  assert.equal(ce.longest.state, 1);
  assert.match(ce.text, /write\(1\) -> ok/);
  assert.match(ce.text, />\s+20\s+30\s+1\s+read\(\) -> nil/);
  assert.doesNotMatch(ce.text, /read\(\) -> 1/, "the read after the cut is not part of the counter-example");
});

test("a read concurrent with a write may see the old or the new value", () => {
  for (const seen of [null, 1]) {
    assert.equal(
      check(casRegisterModel, [write(0, 1, 0, 10), read(1, seen, 5, 15)]).result,
      "ok",
      String(seen),
    );
    assert.equal(
      check(casRegisterModel, [read(1, seen, 0, 10), write(0, 1, 5, 15)]).result,
      "ok",
      String(seen),
    );
  }
  // ... but once one read saw the new value, a read that starts later may not see the old one.
  const inversion = [write(0, 1, 0, 100), read(1, 1, 10, 20), read(2, null, 30, 40)];
  assert.equal(check(casRegisterModel, inversion).result, "illegal");
});

test("operations that merely touch in time count as concurrent", () => {
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 10), read(1, null, 10, 20)]).result, "ok");
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 10), read(1, null, 11, 20)]).result, "illegal");
});

test("an indeterminate write may take effect at any point after its call, or never", () => {
  const open = write(0, 1, 0, INF, "unknown");
  assert.equal(check(casRegisterModel, [open, read(1, null, 10, 20)]).result, "ok", "never (yet)");
  assert.equal(check(casRegisterModel, [open, read(1, 1, 10, 20)]).result, "ok", "took effect");
  assert.equal(
    check(casRegisterModel, [open, read(1, 1, 10, 20), read(1, null, 30, 40)]).result,
    "illegal",
    "once taken effect it stays",
  );
  assert.equal(
    check(casRegisterModel, [read(1, 1, 0, 5), write(0, 1, 10, INF, "unknown")]).result,
    "illegal",
  );
});

test("the CAS register model: success needs the expected value, failure needs another", () => {
  assert.equal(
    check(casRegisterModel, [write(0, 1, 0, 1), cas(0, 1, 2, "ok", 2, 3), read(0, 2, 4, 5)]).result,
    "ok",
  );
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 1), cas(0, 1, 2, "fail", 2, 3)]).result, "illegal");
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 1), cas(0, 3, 2, "ok", 2, 3)]).result, "illegal");
  assert.equal(check(casRegisterModel, [cas(0, 0, 1, "fail", 0, 1)]).result, "ok", "a CAS on nil fails");
  const indeterminate = cas(1, 1, 2, "unknown", 2, INF);
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 1), indeterminate, read(0, 2, 4, 5)]).result, "ok");
  assert.equal(check(casRegisterModel, [write(0, 1, 0, 1), indeterminate, read(0, 1, 4, 5)]).result, "ok");
});

test("the event-list form gives the same verdicts as the operation form", () => {
  const ok = [write(0, 1, 0, 10), read(1, 1, 5, 15)];
  const bad = [write(0, 1, 0, 10), read(1, null, 20, 30)];
  for (const [history, want] of [
    [ok, "ok"],
    [bad, "illegal"],
  ] as const) {
    const events = operationsToEvents(history);
    assert.equal(events.length, 2 * history.length);
    assert.equal(check(casRegisterModel, events).result, want);
    const back = eventsToOperations(events);
    assert.deepEqual(
      back.map((o) => [o.input, o.output, o.clientId]),
      history.map((o) => [o.input, o.output, o.clientId]),
    );
  }
  const unmatched: Event<CasInput, CasOutput>[] = [
    { kind: "call", clientId: 0, id: 7, value: { op: "read" } },
  ];
  assert.throws(() => check(casRegisterModel, unmatched), /call for id 7 has no return event/);
  const orphan: Event<CasInput, CasOutput>[] = [
    { kind: "return", clientId: 0, id: 3, value: { status: "ok" } },
  ];
  assert.throws(() => eventsToOperations(orphan), /event 0: return for id 3 has no open call/);
});

test("P-compositionality: keys are checked apart, and the smallest failing key is reported", () => {
  const put = (c: number, key: string, value: string, call: number, ret: number): KvOp =>
    op(c, { op: "put", key, value }, { status: "ok" }, call, ret);
  const get = (c: number, key: string, value: string | null, call: number, ret: number): KvOp =>
    op(c, { op: "get", key }, { status: "ok", value }, call, ret);
  const history = [
    put(0, "a", "1", 0, 10),
    put(1, "b", "1", 0, 10),
    get(2, "a", "1", 20, 30),
    get(2, "b", null, 40, 50), // stale on b
    put(0, "c", "x", 60, 70),
    put(1, "c", "y", 80, 90),
    get(2, "c", "x", 100, 110), // stale on c, a bigger part
    get(3, "c", "y", 120, 130),
  ];
  const r = check(kvRegisterModel, history);
  assert.equal(r.result, "illegal");
  assert.equal(r.partitions, 3);
  assert.deepEqual(r.counterExample!.operations, [history[1], history[3]]);
  assert.match(r.counterExample!.text, /partition 2 of 3 \(2 operations\)/);
  assert.match(r.counterExample!.text, /get\("b"\) -> absent/);
  const deleted = [
    put(0, "a", "1", 0, 1),
    op(0, { op: "delete", key: "a" }, { status: "ok" }, 2, 3),
    get(1, "a", null, 4, 5),
  ];
  assert.equal(check(kvRegisterModel, deleted).result, "ok");
  assert.equal(check(kvRegisterModel, [...deleted, get(1, "a", "1", 6, 7)]).result, "illegal");
});

test("budgets: out of steps or out of time gives unknown, never a wrong verdict", needsVectors, () => {
  const hard = parseJepsenLog(readFileSync(join(vectors, "jepsen-etcd", "etcd_002.log"), "utf8"));
  assert.equal(check(casRegisterModel, hard, { maxSteps: 1000 }).result, "unknown");
  let clock = 0;
  const now = () => (clock += 1);
  const r = check(casRegisterModel, hard, { timeoutMs: 500, now });
  assert.equal(r.result, "unknown");
  assert.ok(r.steps < 1_000_000, "gave up long before finishing");
  assert.equal(check(casRegisterModel, [], { maxSteps: 0 }).result, "ok", "an empty history needs no steps");
  assert.throws(() => check(casRegisterModel, [], { timeoutMs: -1 }), RangeError);
});

test("histories with impossible timestamps are refused with the operation named", () => {
  assert.throws(() => check(casRegisterModel, [read(0, null, 5, 4)]), {
    name: "LincheckError",
    message: "operation 0: returns at 4, before its call at 5",
  });
  assert.throws(
    () => check(casRegisterModel, [read(0, null, 0, 1), read(0, null, Number.NaN, 4)]),
    /operation 1: call time/,
  );
  assert.throws(() => check(casRegisterModel, [read(0, null, INF, INF)]), LincheckError);
});

// ---------------------------------------------------------------- parsers

test("the Jepsen parser reads every line form, with runs of spaces", () => {
  const log = [
    "INFO  jepsen.util - 0\t:invoke\t:write\t3",
    "INFO  jepsen.util - 1   :invoke  :read   nil",
    "INFO  jepsen.util - 0\t:ok\t:write\t3",
    "INFO  jepsen.util - 1 :fail :read :timed-out",
    "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]",
    "INFO  jepsen.util - 3\t:invoke\t:cas\t[1  2]",
    "INFO  jepsen.util - 2\t:ok\t:cas\t[3 4]",
    "INFO  jepsen.util - 3\t:fail\t:cas\t[1 2]",
    "INFO  jepsen.util - 4\t:invoke\t:write\t1",
    "INFO  jepsen.util - 4\t:info\t:write\t:timed-out",
    "INFO  jepsen.util - 5\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 5\t:ok\t:read\t4",
    "INFO  jepsen.util - 6\t:invoke\t:write\t2",
    "INFO  jepsen.util - 6\t:fail\t:write\t2",
    "INFO  jepsen.util - 7\t:invoke\t:read\tnil",
    "",
  ].join("\n");
  assert.deepEqual(parseJepsenLog(log), [
    op(0, { op: "write", value: 3 }, { status: "ok" }, 1, 3),
    op(1, { op: "read" }, { status: "unknown" }, 2, 4),
    op(2, { op: "cas", from: 3, to: 4 }, { status: "ok" }, 5, 7),
    op(3, { op: "cas", from: 1, to: 2 }, { status: "fail" }, 6, 8),
    op(4, { op: "write", value: 1 }, { status: "unknown" }, 9, INF),
    op(5, { op: "read" }, { status: "ok", value: 4 }, 11, 12),
    // process 6's failed write had no effect and is left out
    op(7, { op: "read" }, { status: "unknown" }, 15, INF),
  ]);
});

test("the Jepsen parser refuses malformed lines and broken process rules, naming the line", () => {
  const cases: [string, RegExp][] = [
    ["garbage", /^x\.log:1: expected "INFO {2}jepsen\.util - /],
    ["INFO  jepsen.util - 0\t:invoke\t:delete\t3", /x\.log:1: f must be :read, :write or :cas, got :delete/],
    ["INFO  jepsen.util - 0\t:begin\t:read\tnil", /x\.log:1: type must be/],
    ["INFO  jepsen.util - 0\t:invoke\t:write\tnil", /x\.log:1: a write is invoked with an integer/],
    ["INFO  jepsen.util - 0\t:invoke\t:cas\t[1]", /x\.log:1: a CAS is invoked with \[A B\]/],
    ["INFO  jepsen.util - 0\t:ok\t:read\t1", /x\.log:1: process 0 completes an operation it never invoked/],
    [
      "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil",
      /x\.log:2: process 0 invokes again while its call from line 1 is open/,
    ],
    [
      "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1",
      /x\.log:2: process 0 invoked :read but completes :write/,
    ],
    [
      "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t2",
      /x\.log:2: write completes with 2 but wrote 1/,
    ],
    [
      "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tx",
      /x\.log:2: a read returns/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseJepsenLog(text, "x.log"),
      (e: unknown) => {
        assert.ok(e instanceof HistoryParseError);
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

test("the KV parser reads the vector line forms and refuses anything else, naming the line", () => {
  const log = [
    '{:process 0, :type :invoke, :f :put, :key "k", :value "x 0 0 y"}',
    '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
    '{:process 0, :type :ok, :f :put, :key "k", :value "x 0 0 y"}',
    '{:process 1, :type :ok, :f :get, :key "k", :value ""}',
    '{:process 2, :type :invoke, :f :append, :key "j", :value "z"}',
  ].join("\n");
  assert.deepEqual(parseKvLog(log), [
    op(0, { op: "put", key: "k", value: "x 0 0 y" }, { status: "ok" }, 1, 3),
    op(1, { op: "get", key: "k" }, { status: "ok", value: "" }, 2, 4),
    op(2, { op: "append", key: "j", value: "z" }, { status: "unknown" }, 5, INF),
  ]);
  const bad: [string, RegExp][] = [
    ['{:process 0, :type :invoke, :f :cas, :key "k", :value nil}', /h:1: expected \{:process P/],
    ['{:process 0, :type :invoke, :f :get, :key "k", :value "v"}', /h:1: a get is invoked with :value nil/],
    [
      '{:process 0, :type :invoke, :f :put, :key "k", :value nil}',
      /h:1: :put is invoked with a string value/,
    ],
    [
      '{:process 0, :type :ok, :f :get, :key "k", :value ""}',
      /h:1: process 0 completes an operation it never invoked/,
    ],
    [
      '{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n{:process 0, :type :ok, :f :get, :key "j", :value ""}',
      /h:2: process 0 invoked get of key "k" but completes get of "j"/,
    ],
    [
      '{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n{:process 0, :type :ok, :f :get, :key "k", :value nil}',
      /h:2: a completed get carries the string it read/,
    ],
  ];
  for (const [text, message] of bad) assert.throws(() => parseKvLog(text, "h"), message);
});

// ---------------------------------------------------------------- properties

/** Runs random KV-register operations one after another, then blurs their timing. */
const sequentialHistory = fc
  .array(
    fc.record({
      op: fc.constantFrom("get", "put", "delete"),
      key: fc.constantFrom("a", "b", "c"),
      value: fc.constantFrom("1", "2", "3"),
      client: fc.nat(4),
      before: fc.nat(25),
      after: fc.nat(25),
      indeterminate: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    { maxLength: 40 },
  )
  .map((steps) => {
    const state = new Map<string, string>();
    return steps.map((s, i): KvOp => {
      // Operation i took effect at time 10 * i; its call and return lie anywhere around that point.
      const at = 10 * i;
      const call = at - s.before;
      const ret = at + s.after;
      let input: KvRegisterInput;
      let output: KvRegisterOutput = { status: "ok" };
      if (s.op === "get") {
        input = { op: "get", key: s.key };
        output = { status: "ok", value: state.get(s.key) ?? null };
      } else if (s.op === "put") {
        input = { op: "put", key: s.key, value: s.value };
        state.set(s.key, s.value);
      } else {
        input = { op: "delete", key: s.key };
        state.delete(s.key);
      }
      // Some writes never reported back: their outcome is unknown and they stay open.
      if (s.op !== "get" && s.indeterminate < 0.15)
        return op(s.client, input, { status: "unknown" }, call, INF);
      return op(s.client, input, output, call, ret);
    });
  });

test("property: a sequential execution blurred by random real-time overlap is always linearizable", () => {
  fc.assert(
    fc.property(sequentialHistory, (history) => {
      assert.equal(check(kvRegisterModel, history, { maxSteps: 1_000_000 }).result, "ok");
    }),
    { numRuns: 150 },
  );
});

test("property: in a history without overlap, a get that returns a value never written is illegal", () => {
  fc.assert(
    fc.property(sequentialHistory, fc.nat(), (history, pick) => {
      const sequential = history.map((o, i) => ({ ...o, call: 10 * i, return: 10 * i + 5 }));
      const gets = sequential.filter((o) => o.input.op === "get");
      fc.pre(gets.length > 0);
      const victim = gets[pick % gets.length]!;
      const broken = sequential.map((o) =>
        o === victim ? { ...o, output: { status: "ok" as const, value: "999" } } : o,
      );
      const r = check(kvRegisterModel, broken);
      assert.equal(r.result, "illegal");
      assert.equal(r.counterExample!.stuck, broken[sequential.indexOf(victim)]);
    }),
    { numRuns: 150 },
  );
});

/** The definition itself: try every order that respects real time. Only for tiny histories. */
function bruteForce<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[]): boolean {
  const used = ops.map(() => false);
  const search = (state: S, placed: number): boolean => {
    if (placed === ops.length) return true;
    for (let i = 0; i < ops.length; i++) {
      if (used[i]) continue;
      // i may come next only if no other unplaced operation returned before i was called.
      if (ops.some((o, j) => !used[j] && j !== i && o.return < ops[i]!.call)) continue;
      const next = model.step(state, ops[i]!.input, ops[i]!.output);
      if (!next.ok) continue;
      used[i] = true;
      if (search(next.state, placed + 1)) return true;
      used[i] = false;
    }
    return false;
  };
  return search(model.init(), 0);
}

const value = fc.integer({ min: 0, max: 2 });
const timing = fc.record({
  client: fc.nat(3),
  call: fc.nat(20),
  length: fc.oneof({ weight: 9, arbitrary: fc.nat(10) }, { weight: 1, arbitrary: fc.constant(INF) }),
});
const randomCasOp: fc.Arbitrary<CasOp> = fc
  .tuple(
    timing,
    fc.oneof(
      fc.record({
        input: fc.constant<CasInput>({ op: "read" }),
        output: fc.oneof(
          fc.option(value, { nil: null }).map((v): CasOutput => ({ status: "ok", value: v })),
          fc.constant<CasOutput>({ status: "unknown" }),
        ),
      }),
      fc.record({
        input: value.map((v): CasInput => ({ op: "write", value: v })),
        output: fc.constantFrom<CasOutput>({ status: "ok" }, { status: "unknown" }),
      }),
      fc.record({
        input: fc.tuple(value, value).map(([from, to]): CasInput => ({ op: "cas", from, to })),
        output: fc.constantFrom<CasOutput>({ status: "ok" }, { status: "fail" }, { status: "unknown" }),
      }),
    ),
  )
  .map(([t, io]) => op(t.client, io.input, io.output, t.call, t.call + t.length));

test("property: on small random CAS-register histories the checker agrees with brute force", () => {
  let legal = 0;
  fc.assert(
    fc.property(fc.array(randomCasOp, { maxLength: 7 }), (history) => {
      const want = bruteForce<CasState, CasInput, CasOutput>(casRegisterModel, history);
      if (want) legal++;
      assert.equal(check(casRegisterModel, history).result, want ? "ok" : "illegal");
    }),
    { numRuns: 400 },
  );
  assert.ok(legal > 40 && legal < 360, `both verdicts were exercised (${legal} of 400 legal)`);
});

test("property: checking key by key agrees with brute force over the whole map", () => {
  const randomKvOp: fc.Arbitrary<KvOp> = fc
    .tuple(
      timing,
      fc.constantFrom("a", "b"),
      fc.constantFrom("get", "put", "delete"),
      fc.option(fc.constantFrom("1", "2")),
    )
    .map(([t, key, kind, v]) => {
      const input: KvRegisterInput = kind === "put" ? { op: kind, key, value: v ?? "1" } : { op: kind, key };
      return op(t.client, input, { status: "ok", value: v }, t.call, t.call + t.length);
    });
  const whole = { ...kvRegisterModel, partition: undefined };
  fc.assert(
    fc.property(fc.array(randomKvOp, { maxLength: 7 }), (history) => {
      const want = bruteForce(whole, history) ? "ok" : "illegal";
      assert.equal(check(kvRegisterModel, history).result, want);
      assert.equal(check(whole, history).result, want);
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------- command line

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "test", "utils", "lincheck", "cli.ts"), ...args],
      { cwd: repoRoot, env: { ...process.env, INIT_CWD: repoRoot } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test("the lincheck command prints its verdict and exits 0, 1 or 2", needsVectors, async () => {
  const dir = await mkdtemp(join(tmpdir(), "lincheck-"));
  try {
    const empty = join(dir, "empty.log");
    await writeFile(empty, "\n");
    const etcd = (f: string) => join(vectors, "jepsen-etcd", f);
    const [ok, bad, kvBad, wrongFormat, noFlag, missing, emptyFile, timeout] = await Promise.all([
      cli(["--format", "jepsen", etcd("etcd_005.log")]),
      cli(["--format", "jepsen", etcd("etcd_013.log")]),
      cli(["--format", "kv", join(vectors, "kv", "c10-bad.txt")]),
      cli(["--format", "kv", etcd("etcd_005.log")]),
      cli([etcd("etcd_005.log")]),
      cli(["--format", "jepsen", join(dir, "nope.log")]),
      cli(["--format", "jepsen", empty]),
      cli(["--format", "jepsen", "--timeout", "1", etcd("etcd_002.log")]),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^linearizable\n/);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /^not linearizable\n/);
    assert.match(bad.stdout, />\s+48\s+49\s+0\s+read\(\) -> 4/, "the counter-example names the failing read");
    assert.equal(kvBad.code, 1);
    assert.match(kvBad.stdout, /^not linearizable\n[\s\S]*get\("7"\)/);
    assert.equal(wrongFormat.code, 2);
    assert.match(wrongFormat.stderr, /etcd_005\.log:1: expected \{:process P/);
    assert.equal(noFlag.code, 2);
    assert.match(noFlag.stderr, /--format is required/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.log: no such file/);
    assert.equal(emptyFile.code, 2);
    assert.match(emptyFile.stderr, /holds no operations/);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stdout, /^unknown\n/);
    assert.match(timeout.stderr, /no verdict within 1 ms/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
