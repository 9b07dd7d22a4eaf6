import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CocoClientError, type GovClient } from "../../src/client/index.ts";
import { createJsEngine } from "../../src/js/index.ts";
import { checkBundleCode, parseBundle } from "../../src/jsapp/index.ts";
import { govClient, passProposal, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const endpoint = (fn: string, module = "app.js") => ({
  js_module: module,
  js_function: fn,
  authn_policies: ["user_cert"],
  mode: "readonly",
  forwarding_required: "sometimes",
});

export function smallBundle(source: string, endpoints: Record<string, unknown> = {}) {
  return {
    metadata: { endpoints: { "/hello": { get: endpoint("hello") }, ...endpoints } },
    modules: [
      { name: "app.js", module: source },
      { name: "lib/util.js", module: "export function greet(n) { return 'hello ' + n; }" },
    ],
  };
}

const GOOD = `import { greet } from "./lib/util.js";
export function hello(request) { return { body: greet("world") }; }`;

test("bundle shapes are checked with the place and the reason", () => {
  const bad = (bundle: unknown, reason: RegExp) => assert.throws(() => parseBundle(bundle), reason);
  bad(null, /bundle must be an object/);
  bad({ metadata: { endpoints: {} }, modules: [] }, /modules must be a non-empty array/);
  bad(
    smallBundle(GOOD, { "/x": { get: { ...endpoint("x"), mode: "sideways" } } }),
    /\["\/x"\]\["get"\]\.mode/,
  );
  bad(
    smallBundle(GOOD, { "/x": { get: { ...endpoint("x"), forwarding_required: "maybe" } } }),
    /forwarding_required/,
  );
  bad(smallBundle(GOOD, { "/x": { get: endpoint("x", "nope.js") } }), /module 'nope.js' not found in bundle/);
  bad(smallBundle(GOOD, { "/x": { teleport: endpoint("x") } }), /unsupported method 'teleport'/);
  bad(smallBundle(GOOD, { "/x": { get: { ...endpoint("x"), authn_policies: [{ any_of: [] }] } } }), /all_of/);
  parseBundle(smallBundle(GOOD));
});

test("bundle code is loaded: syntax errors, missing imports and missing functions are refused", async () => {
  const engine = await createJsEngine({
    env: { now: () => Date.now(), randomBytes: (n) => new Uint8Array(n) },
  });
  const check = (source: string, endpoints?: Record<string, unknown>) =>
    checkBundleCode(engine, parseBundle(smallBundle(source, endpoints)));
  check(GOOD);
  assert.throws(() => check("export function hello( {"), /module 'app.js' does not load: SyntaxError/);
  assert.throws(
    () => check(`import { x } from "./missing.js"; export function hello() {}`),
    /module 'app.js' does not load: .*missing\.js/,
  );
  assert.throws(
    () => check(GOOD, { "/bye": { post: endpoint("bye") } }),
    /module 'app.js' does not export a function 'bye'/,
  );
  assert.throws(
    () => check(`throw new Error("boom"); export function hello() {}`),
    /does not load: Error: boom/,
  );
  assert.equal(engine.cachedContexts, 0, "checking leaves no warm context behind");
});

let net: TestNetwork;
let gov: GovClient;
before(async () => {
  net = await startTestNetwork();
  gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
  await gov.activate();
});
after(async () => {
  await gov.close();
  await net.cleanup();
});

async function refused(args: unknown): Promise<string> {
  try {
    await gov.propose({ actions: [{ name: "set_js_app", args }] });
  } catch (e) {
    assert.ok(e instanceof CocoClientError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "ProposalFailedToValidate");
    return e.message;
  }
  assert.fail("the proposal was accepted");
}

test("Coco's constitution installs and removes apps as CCF stores them; bad bundles are refused when proposed", async () => {
  assert.match(
    await refused({ bundle: smallBundle("export function hello( {") }),
    /does not load: SyntaxError/,
  );
  assert.match(
    await refused({ bundle: smallBundle(GOOD, { "/x": { get: endpoint("nothere") } }) }),
    /does not export a function 'nothere'/,
  );
  assert.match(await refused({ bundle: { modules: [] } }), /bundle/);
  const tables = async () =>
    await net.call("GET", "/gov/service/javascript-app?api-version=2024-07-01", { as: "member" });
  await passProposal(gov, "set_js_app", { bundle: smallBundle(GOOD) });
  const installed = await tables();
  assert.equal(installed.status, 200, installed.text);
  const app = installed.json();
  assert.deepEqual(Object.keys(app.endpoints).sort(), ["GET /hello"]);
  assert.equal(app.endpoints["GET /hello"].js_module, "/app.js");
  await passProposal(gov, "remove_js_app", {});
  assert.deepEqual(Object.keys((await tables()).json().endpoints), []);
});

test("runtime options Coco cannot honour are refused when proposed", async () => {
  await assert.rejects(
    gov.propose({
      actions: [
        {
          name: "set_js_runtime_options",
          args: { max_heap_bytes: 1, max_stack_bytes: 1024 * 1024, max_execution_time_ms: 100 },
        },
      ],
    }),
    /max_heap_bytes must be an integer from/,
  );
});
