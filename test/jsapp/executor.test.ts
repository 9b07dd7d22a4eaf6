import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { GovClient } from "../../src/client/index.ts";
import { govClient, passProposal, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const APP = `import { label } from "./lib/labels.js";
export function echo(request) {
  return {
    statusCode: 201,
    headers: { "x-seen": request.headers["x-thing"] ?? "none" },
    body: {
      params: request.params, query: request.query, path: request.path, route: request.route, url: request.url,
      method: request.method, text: request.body.text(), bytes: request.body.arrayBuffer().byteLength,
      caller: request.caller, label: label(request.params.name),
    },
  };
}
export function json(request) { return { body: request.body.json().value * 2 }; }
export function text() { return { body: "plain words" }; }
export function bytes() { return { body: new Uint8Array([1, 2, 3]) }; }
export function custom() { return { headers: { "content-type": "application/x-thing" }, body: "x" }; }
export function put(request) {
  const { key, value } = request.body.json();
  ccf.kv["public:things"].set(ccf.strToBuf(key), ccf.strToBuf(value));
  return { body: true };
}
export function get(request) {
  const v = ccf.kv["public:things"].get(ccf.strToBuf(request.params.key));
  return v === undefined ? { statusCode: 404, body: "no such thing" } : { body: ccf.bufToStr(v) };
}
export function scan(request) {
  const page = ccf.kv["public:things"].range({ start: ccf.strToBuf("b"), end: ccf.strToBuf("d"), limit: 10 });
  return { body: page.entries.map(([k, v]) => ccf.bufToStr(k) + "=" + ccf.bufToStr(v)) };
}
export function failWrite() {
  ccf.kv["public:things"].set(ccf.strToBuf("ghost"), ccf.strToBuf("boo"));
  return { statusCode: 400, body: "refused" };
}
export function forceWrite() {
  ccf.kv["public:things"].set(ccf.strToBuf("forced"), ccf.strToBuf("yes"));
  ccf.rpc.setApplyWrites(true);
  return { statusCode: 400, body: "refused but kept" };
}
export function boom() {
  ccf.kv["public:things"].set(ccf.strToBuf("boom"), ccf.strToBuf("x"));
  throw new Error("it went boom");
}
export function spin() {
  ccf.kv["public:things"].set(ccf.strToBuf("spin"), ccf.strToBuf("x"));
  for (;;) {}
}
export function govWrite() {
  ccf.kv["public:ccf.gov.users.info"].set(ccf.strToBuf("x"), ccf.strToBuf("{}"));
  return { body: true };
}
export function roWrite() {
  ccf.kv["public:things"].set(ccf.strToBuf("ro"), ccf.strToBuf("x"));
  return { body: true };
}
export function status() {
  return { body: ccf.consensus.getLastCommittedTxId() };
}
export function jwtOnly() { return { body: "unreachable" }; }
`;

const ep = (fn: string, mode = "readwrite", extra: Record<string, unknown> = {}) => ({
  js_module: "app.js",
  js_function: fn,
  authn_policies: ["user_cert"],
  mode,
  forwarding_required: mode === "readwrite" ? "always" : "sometimes",
  openapi: { summary: fn },
  interpreter_reuse: { key: "one" },
  ...extra,
});

export const BUNDLE = {
  metadata: {
    endpoints: {
      "/echo/{name}": { post: ep("echo", "readonly") },
      "/json": { post: ep("json", "readonly") },
      "/text": { get: ep("text", "readonly") },
      "/bytes": { get: ep("bytes", "readonly") },
      "/custom": { get: ep("custom", "readonly") },
      "/things": { put: ep("put"), get: ep("scan", "readonly") },
      "/things/{key}": { get: ep("get", "readonly") },
      "/fail-write": { post: ep("failWrite") },
      "/force-write": { post: ep("forceWrite") },
      "/boom": { post: ep("boom") },
      "/spin": { post: ep("spin") },
      "/gov-write": { post: ep("govWrite") },
      "/ro-write": { post: ep("roWrite", "readonly") },
      "/status": { get: ep("status", "readonly") },
      "/jwt-only": { get: ep("jwtOnly", "readonly", { authn_policies: ["jwt"] }) },
      "/anyone": { get: ep("text", "readonly", { authn_policies: ["no_auth"] }) },
      "/any-cert/{name}": { post: ep("echo", "readonly", { authn_policies: ["any_cert", "user_cert"] }) },
    },
  },
  modules: [
    { name: "app.js", module: APP },
    { name: "lib/labels.js", module: 'export function label(n) { return "<" + n + ">"; }' },
  ],
};

let net: TestNetwork;
let gov: GovClient;
before(async () => {
  net = await startTestNetwork();
  gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
  await gov.activate();
  await passProposal(gov, "set_js_app", { bundle: BUNDLE });
});
after(async () => {
  await gov.close();
  await net.cleanup();
});

test("requests reach JS handlers with CCF's request record; responses get CCF's content types", async () => {
  const echo = await net.call("POST", "/app/echo/b%20b?x=1&y=two", {
    rawBody: "hello",
    headers: { "x-thing": "T" },
  });
  assert.equal(echo.status, 201, echo.text);
  assert.equal(echo.headers["x-seen"], "T");
  assert.equal(echo.headers["content-type"], "application/json");
  const body = echo.json();
  assert.deepEqual(body.params, { name: "b b" });
  assert.equal(body.query, "x=1&y=two");
  assert.equal(body.path, "/app/echo/b%20b");
  assert.equal(body.route, "/app/echo/{name}");
  assert.equal(body.url, "/app/echo/b%20b?x=1&y=two");
  assert.equal(body.method, "POST");
  assert.equal(body.text, "hello");
  assert.equal(body.bytes, 5);
  assert.equal(body.label, "<b b>");
  assert.equal(body.caller.policy, "user_cert");
  assert.match(body.caller.id, /^[0-9a-f]{64}$/);
  assert.match(body.caller.cert, /BEGIN CERTIFICATE/);
  assert.equal(body.caller.data, null);

  assert.equal((await net.call("POST", "/app/json", { body: { value: 21 } })).json(), 42);
  const text = await net.call("GET", "/app/text");
  assert.equal(text.headers["content-type"], "text/plain");
  assert.equal(text.text, "plain words");
  const bytes = await net.call("GET", "/app/bytes");
  assert.equal(bytes.headers["content-type"], "application/octet-stream");
  assert.deepEqual([...bytes.bytes], [1, 2, 3]);
  const custom = await net.call("GET", "/app/custom");
  assert.equal(custom.headers["content-type"], "application/x-thing");
  assert.ok((await net.call("GET", "/app/text")).txid, "answers name a transaction");
});

test("reading a non-JSON body as JSON is a 415 in Coco's error shape; text and bytes stay readable", async () => {
  const form = await net.call("POST", "/app/json", {
    rawBody: "value=21",
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  assert.equal(form.status, 415, form.text);
  assert.equal(form.headers["content-type"], "application/json");
  assert.deepEqual(form.json(), {
    error: {
      code: "UnsupportedContentType",
      message: 'this endpoint takes application/json, not "application/x-www-form-urlencoded"',
    },
  });
  // A write endpoint refused this way writes nothing.
  const put = await net.call("PUT", "/app/things", {
    rawBody: JSON.stringify({ key: "typed", value: "no" }),
    headers: { "content-type": "text/plain" },
  });
  assert.equal(put.status, 415, put.text);
  assert.equal((await net.call("GET", "/app/things/typed")).status, 404);
  // JSON with parameters, a +json type, or no content type at all (as CCF) is read as JSON.
  for (const type of ["application/json; charset=utf-8", "application/merge-patch+json", undefined]) {
    const ok = await net.call("POST", "/app/json", {
      rawBody: JSON.stringify({ value: 4 }),
      headers: type === undefined ? {} : { "content-type": type },
    });
    assert.equal(ok.status, 200, `${type}: ${ok.text}`);
    assert.equal(ok.json(), 8);
  }
  // An endpoint that reads the body as text takes any content type.
  const echo = await net.call("POST", "/app/echo/x", {
    rawBody: "a=b",
    headers: { "content-type": "text/plain" },
  });
  assert.equal(echo.status, 201, echo.text);
  assert.equal(echo.json().text, "a=b");
});

test("ccf.kv writes commit, range scans are ordered, and only 2xx (or setApplyWrites) keeps writes", async () => {
  for (const [key, value] of [
    ["c", "3"],
    ["a", "1"],
    ["b", "2"],
    ["d", "4"],
  ]) {
    const put = await net.call("PUT", "/app/things", { body: { key, value } });
    assert.equal(put.status, 200, put.text);
  }
  assert.equal((await net.call("GET", "/app/things/c")).text, "3");
  assert.deepEqual((await net.call("GET", "/app/things")).json(), ["b=2", "c=3"]);
  assert.equal((await net.call("POST", "/app/fail-write")).status, 400);
  assert.equal((await net.call("GET", "/app/things/ghost")).status, 404);
  assert.equal((await net.call("POST", "/app/force-write")).status, 400);
  assert.equal((await net.call("GET", "/app/things/forced")).text, "yes");
  const gov = await net.call("POST", "/app/gov-write");
  assert.equal(gov.status, 500);
  assert.match(gov.json().error.message, /apps may not write the framework's maps/);
  const ro = await net.call("POST", "/app/ro-write");
  assert.equal(ro.status, 500);
  assert.match(ro.json().error.message, /read-only/);
  assert.equal((await net.call("GET", "/app/things/ro")).status, 404);
});

test("an uncaught exception is a 500 naming the module and line, and its writes are dropped", async () => {
  const boom = await net.call("POST", "/app/boom");
  assert.equal(boom.status, 500);
  const error = boom.json().error;
  assert.equal(error.code, "InternalError");
  assert.match(error.message, /it went boom/);
  assert.match(error.details[0].trace, /at boom \(app\.js:\d+/);
  assert.equal((await net.call("GET", "/app/things/boom")).status, 404);
});

test("a handler over its time limit ends with a 500, its writes dropped, and the node keeps serving", async () => {
  await passProposal(gov, "set_js_runtime_options", {
    max_heap_bytes: 50 * 1024 * 1024,
    max_stack_bytes: 1024 * 1024,
    max_execution_time_ms: 100,
    return_exception_details: false,
  });
  const spin = await net.call("POST", "/app/spin");
  assert.equal(spin.status, 500);
  assert.equal(spin.json().error.message, "Operation took too long to complete.");
  assert.equal(spin.json().error.details, undefined, "details are switched off");
  assert.equal((await net.call("GET", "/app/things/spin")).status, 404);
  assert.equal((await net.call("GET", "/app/things/a")).text, "1");
  const boom = await net.call("POST", "/app/boom");
  assert.equal(boom.json().error.message, "Exception thrown while executing.");
});

test("limits hit under load end only the requests that hit them", async () => {
  const calls: Array<Promise<{ kind: string; status: number; text: string }>> = [];
  for (let i = 0; i < 20; i++) {
    if (i % 4 === 0) calls.push(net.call("POST", "/app/spin").then((r) => ({ kind: "spin", ...r })));
    calls.push(
      net
        .call("PUT", "/app/things", { body: { key: `load${i}`, value: String(i) } })
        .then((r) => ({ kind: "put", ...r })),
    );
  }
  const results = await Promise.all(calls);
  for (const r of results) assert.equal(r.status, r.kind === "spin" ? 500 : 200, r.text);
  assert.equal((await net.call("GET", "/app/things/load19")).text, "19");
  assert.equal((await net.call("GET", "/app/things/spin")).status, 404);
});

test("a failed policy answers 401 naming it and why; ccf.consensus answers", async () => {
  const jwt = await net.call("GET", "/app/jwt-only");
  assert.equal(jwt.status, 401);
  assert.match(jwt.json().error.message, /jwt: no bearer token in the Authorization header/);
  assert.equal((await net.call("GET", "/app/anyone", { as: "none" })).status, 200);
  assert.equal((await net.call("GET", "/app/text", { as: "none" })).status, 401);
  const anyCert = (await net.call("POST", "/app/any-cert/x")).json().caller;
  assert.equal(anyCert.policy, "any_cert", "any_cert passed first, as CCF names it");
  assert.match(anyCert.cert, /BEGIN CERTIFICATE/);
  assert.equal(anyCert.id, undefined);
  const status = (await net.call("GET", "/app/status")).json();
  assert.ok(status.seqno > 0 && status.view > 0);
});

test("GET /app/api serves the OpenAPI document of the installed endpoints", async () => {
  const api = await net.call("GET", "/app/api", { as: "none" });
  assert.equal(api.status, 200);
  const doc = api.json();
  assert.equal(doc.openapi, "3.0.0");
  assert.equal(doc.paths["/app/echo/{name}"].post.summary, "echo");
  assert.equal(doc.paths["/app/echo/{name}"].parameters[0].name, "name");
  assert.ok(doc.paths["/app/things"].put);
});
