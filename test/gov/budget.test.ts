// The constitution's execution budget is counted in QuickJS steps, never in time: real calls fit
// with a wide margin, a script that loops fails with the same verdict however loaded the machine
// is, and a slow environment (a clock racing ahead, slow host calls) changes no outcome.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { Worker } from "node:worker_threads";
import { certFingerprint, createIdentityCertificate } from "../../src/crypto/index.ts";
import { createProposal, defaultConstitution, GovError } from "../../src/gov/index.ts";
import {
  createJsEngine,
  GOVERNANCE_LIMITS,
  type JsCallUsage,
  type JsEngine,
  jsConstitution,
  TICKS_PER_STEP,
} from "../../src/js/index.ts";
import { Store } from "../../src/kv/index.ts";
import { Tables as GovTables, SINGLETON_KEY as SINGLETON, utf8, writeJson } from "../../src/ledger/index.ts";

const CCF = new URL("../../../shared/vectors/ccf/", import.meta.url);
const hasVectors = existsSync(new URL("constitution-default/actions.js", CCF));
const skip = !hasVectors && "no vectors";

function ccfConstitution(): string {
  return ["actions.js", "validate.js", "resolve.js", "apply.js"]
    .map((f) => readFileSync(new URL(`constitution-default/${f}`, CCF), "utf8"))
    .join("\n");
}

const LOOPING = [
  "export function validate() { let n = 0; while (true) { n++; } }",
  "export function resolve() { return 'Open'; }",
  "export function apply() {}",
].join("\n");

let engine: JsEngine;
const members: Array<{ id: string; cert: string }> = [];

before(async () => {
  engine = await createJsEngine({ env: { now: () => Date.now(), randomBytes: (n) => new Uint8Array(n) } });
  for (const name of ["m0", "m1", "m2"]) {
    const { certPem } = await createIdentityCertificate({
      name,
      now: new Date(),
      serial: new Uint8Array([1]),
    });
    members.push({ id: certFingerprint(certPem), cert: certPem });
  }
});

after(() => engine.dispose());

/** A service with `source` as its constitution and every member active. */
function service(source: string): Store {
  const store = new Store();
  const tx = store.begin();
  tx.map(GovTables.constitution).set(SINGLETON, utf8(source));
  writeJson(tx, GovTables.serviceInfo, SINGLETON, { status: "Opening", cert: members[0]!.cert });
  writeJson(tx, GovTables.serviceConfig, SINGLETON, { recovery_threshold: 1 });
  for (const m of members) {
    tx.map(GovTables.membersCerts).set(utf8(m.id), utf8(m.cert));
    writeJson(tx, GovTables.membersInfo, utf8(m.id), { status: "Active" });
  }
  assert.ok(store.commit(tx).ok);
  return store;
}

/** `eng`, noting what each call used of its budget: [fn, usage]. */
function recording(eng: JsEngine, calls: Array<[string, JsCallUsage | undefined]>): JsEngine {
  return {
    call(options) {
      try {
        return eng.call(options);
      } finally {
        calls.push([options.fn, eng.lastCallUsage]);
      }
    },
    ready: () => eng.ready(),
    evict: (modules) => eng.evict(modules),
    dispose: () => eng.dispose(),
    get lastCallUsage() {
      return eng.lastCallUsage;
    },
    get cachedContexts() {
      return eng.cachedContexts;
    },
  };
}

let counter = 0;
/** Proposes `actions` in a transaction that is then dropped: the verdict and each call's usage. */
function propose(store: Store, eng: JsEngine, actions: unknown[]) {
  const calls: Array<[string, JsCallUsage | undefined]> = [];
  const constitution = jsConstitution(recording(eng, calls), () => ({}));
  const tx = store.begin();
  try {
    const view = createProposal(tx, constitution, {
      memberId: members[0]!.id,
      body: utf8(JSON.stringify({ actions })),
      requestDigest: new Uint8Array(32).fill(++counter),
    });
    return { verdict: view.proposalState as string, calls };
  } catch (e) {
    if (!(e instanceof GovError)) throw e;
    return { verdict: `${e.status} ${e.message}`, calls };
  } finally {
    tx.abandon();
  }
}

/** Busy workers that take every core for a bounded time; resolves once they all run. */
async function hogCpus(count: number): Promise<{ stop(): Promise<void> }> {
  const source = `
    const { parentPort } = require("node:worker_threads");
    parentPort.postMessage("running");
    const end = Date.now() + 60000;
    while (Date.now() < end) {}
  `;
  const workers = Array.from({ length: count }, () => new Worker(source, { eval: true }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once("message", resolve))));
  return {
    async stop() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

test("a constitution that loops fails on its step budget, with the same verdict and count under load", async () => {
  const store = service(LOOPING);
  const quiet = propose(store, engine, [{ name: "x", args: {} }]);
  assert.match(quiet.verdict, /^400 validate failed: validate: the call used more than its execution budget/);
  assert.match(quiet.verdict, new RegExp(`budget of ${GOVERNANCE_LIMITS.steps} steps`));
  assert.deepEqual(
    quiet.calls,
    [["validate", { steps: GOVERNANCE_LIMITS.steps + 1 }]],
    "stopped at the first step past the budget",
  );
  // Nothing was written: the proposal does not exist.
  const tx = store.begin();
  assert.equal(tx.map(GovTables.proposals).size(), 0);
  tx.abandon();

  const hogs = await hogCpus(4);
  try {
    for (let i = 0; i < 2; i++) {
      const loaded = propose(store, engine, [{ name: "x", args: {} }]);
      assert.deepEqual(loaded, quiet, "the verdict and the count do not depend on the load");
    }
  } finally {
    await hogs.stop();
  }
});

test("CCF's constitution counts the same ticks for a call on a quiet machine, under load, and after other calls", {
  skip,
}, async () => {
  const store = service(ccfConstitution());
  const actions = [{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }];
  const first = propose(store, engine, actions);
  assert.equal(first.verdict, "Open");
  assert.deepEqual(
    first.calls.map(([fn, usage]) => [fn, usage?.ticks !== undefined && usage.ticks > 0]),
    [
      ["validate", true],
      ["resolve", true],
    ],
  );
  // Other calls in between move QuickJS's own countdown; the budget realigns it.
  propose(store, engine, [{ name: "set_member", args: { cert: members[1]!.cert } }]);
  assert.deepEqual(propose(store, engine, actions), first);
  const hogs = await hogCpus(4);
  try {
    assert.deepEqual(propose(store, engine, actions), first);
  } finally {
    await hogs.stop();
  }
});

test("a real constitution call succeeds however slow its environment: a racing clock, no free core", {
  skip,
}, async () => {
  // Every read of this clock jumps a minute ahead: to a wall-clock limit, each call would look
  // hours long. A step budget never reads it.
  let clock = Date.now();
  const slow = await createJsEngine({
    env: { now: () => (clock += 60_000), randomBytes: (n) => new Uint8Array(n) },
  });
  const hogs = await hogCpus(4);
  try {
    const store = service(ccfConstitution());
    const bundle = JSON.parse(readFileSync(new URL("app-logging/bundle.json", CCF), "utf8"));
    // CCF's logging app with its endpoints copied to 400: a call of several steps, so that the
    // interrupt handler (where a clock would be read) runs.
    const endpoints = Object.entries(bundle.metadata.endpoints);
    for (let i = 0; Object.keys(bundle.metadata.endpoints).length < 400; i++) {
      const [url, endpoint] = endpoints[i % endpoints.length] as [string, unknown];
      bundle.metadata.endpoints[`${url}/copy${i}`] = endpoint;
    }
    const result = propose(store, slow, [{ name: "set_js_app", args: { bundle } }]);
    assert.equal(result.verdict, "Open", JSON.stringify(result));
    const validate = result.calls[0]?.[1];
    assert.ok(
      (validate?.steps ?? 0) >= 2,
      `validate ran long enough to be polled: ${JSON.stringify(result)}`,
    );
  } finally {
    await hogs.stop();
    slow.dispose();
  }
});

test("Coco's default constitution also fits its budget", () => {
  const store = service(defaultConstitution());
  const result = propose(store, engine, [
    { name: "set_recovery_threshold", args: { recovery_threshold: 1 } },
  ]);
  assert.equal(result.verdict, "Open");
  for (const [fn, usage] of result.calls) {
    assert.ok(
      (usage?.ticks ?? Number.POSITIVE_INFINITY) < (GOVERNANCE_LIMITS.steps * TICKS_PER_STEP) / 100,
      fn,
    );
  }
});

test("the largest proposal a node accepts by default (a 1 MiB body) uses under a tenth of the budget", {
  skip,
}, (t) => {
  const store = service(ccfConstitution());
  const bundle = JSON.parse(readFileSync(new URL("app-logging/bundle.json", CCF), "utf8"));
  const endpoints = Object.entries(bundle.metadata.endpoints);
  for (let i = 0; JSON.stringify(bundle).length < 1024 * 1024 - 100; i++) {
    const [url, endpoint] = endpoints[i % endpoints.length] as [string, unknown];
    bundle.metadata.endpoints[`${url}/copy${i}`] = endpoint;
  }
  const result = propose(store, engine, [{ name: "set_js_app", args: { bundle } }]);
  assert.equal(result.verdict, "Open");
  const budget = GOVERNANCE_LIMITS.steps * TICKS_PER_STEP;
  for (const [fn, usage] of result.calls) {
    t.diagnostic(`${fn}: ${usage?.ticks} ticks of a budget of ${budget}`);
    assert.ok((usage?.ticks ?? Number.POSITIVE_INFINITY) * 10 < budget, `${fn}: ${JSON.stringify(usage)}`);
  }
});
