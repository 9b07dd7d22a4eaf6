// The executor in-process, without a network: logging, interpreter reuse, limits, coexistence.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import pino from "pino";
import {
  type AppRequest,
  type Caller,
  defineApp,
  type Endpoint,
  ExecutorRegistry,
  type HandlerContext,
} from "../../src/apps/index.ts";
import { createJsAppExecutor, type JsAppExecutor } from "../../src/jsapp/index.ts";
import { Store } from "../../src/kv/index.ts";

const SOURCE = `let calls = 0;
export function count() { calls += 1; return { body: calls }; }
export function say(request) { console.log("said", request.body.text()); return { body: "ok" }; }
export function bomb() { const keep = []; for (;;) keep.push(new Array(100000).fill(7)); }
export function deep() { function f(n) { return f(n + 1) + 1; } return { body: f(0) }; }
export function spawn() { ccf.host.triggerSubprocess(["ls"]); return { body: "ran" }; }
export function native() { return { body: "from js" }; }
export function clock() {
  const before = Date.now();
  ccf.enableUntrustedDateTime(true);
  const after = Date.now();
  const r = Math.random();
  return { body: { before, after, random: r } };
}
export function walk() {
  const m = ccf.kv["public:walk"];
  const seen = [];
  m.forEach((v, k) => seen.push(ccf.bufToStr(k) + "=" + ccf.bufToStr(v)));
  return { body: { seen, size: m.size, version: m.getVersionOfPreviousWrite(ccf.strToBuf("a")) } };
}
`;

const ep = (fn: string, reuse = true) => ({
  js_module: "app.js",
  js_function: fn,
  authn_policies: ["no_auth"],
  mode: "readonly",
  forwarding_required: "never",
  ...(reuse ? { interpreter_reuse: { key: "k" } } : {}),
});

const enc = new TextEncoder();

function install(store: Store, endpoints: Record<string, Record<string, unknown>>, flush = 1): void {
  const tx = store.begin();
  tx.map("public:ccf.gov.modules").set(enc.encode("/app.js"), enc.encode(SOURCE));
  for (const [path, methods] of Object.entries(endpoints)) {
    for (const [method, info] of Object.entries(methods)) {
      tx.map("public:ccf.gov.endpoints").set(
        enc.encode(`${method.toUpperCase()} ${path}`),
        enc.encode(JSON.stringify(info)),
      );
    }
  }
  tx.map("public:ccf.gov.interpreter.flush").set(new Uint8Array(8), enc.encode(String(flush)));
  assert.ok(store.commit(tx).ok);
}

function setOptions(store: Store, options: Record<string, unknown>): void {
  const tx = store.begin();
  tx.map("public:ccf.gov.js_runtime_options").set(new Uint8Array(8), enc.encode(JSON.stringify(options)));
  assert.ok(store.commit(tx).ok);
}

async function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const executor = await createJsAppExecutor({
    env: { now: () => Date.now(), randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
    log: pino({ level: "info" }, sink),
  });
  return { executor, lines, store: new Store() };
}

async function run(executor: JsAppExecutor, store: Store, method: "GET" | "POST", path: string, body = "") {
  const match = executor.match(method, path, store);
  assert.ok(match && "endpoint" in match, `no endpoint ${method} ${path}`);
  const endpoint = match.endpoint as Endpoint;
  const answered: Array<(txid: string, status: number) => void> = [];
  const request: AppRequest = {
    method,
    path,
    url: `/app${path}`,
    params: match.params,
    query: new URLSearchParams(),
    headers: {},
    body: enc.encode(body),
    json: () => JSON.parse(body),
    text: () => body,
  };
  const tx = store.begin();
  const ctx: HandlerContext = {
    request,
    caller: { policy: "no_auth" } as Caller,
    tx,
    setClaimsDigest: () => undefined,
    onAnswer: (cb) => answered.push(cb),
  };
  const response = await endpoint.handler(ctx);
  tx.abandon();
  for (const cb of answered) cb("2.42", response.status ?? 200);
  const text = response.body instanceof Uint8Array ? new TextDecoder().decode(response.body) : "";
  return { status: response.status ?? 200, text };
}

test("console.log from a handler reaches the node log tagged with the request's transaction id", async () => {
  const { executor, lines, store } = await setup();
  install(store, { "/say": { post: ep("say") } });
  await run(executor, store, "POST", "/say", "hello there");
  await new Promise((r) => setImmediate(r));
  const line = lines.find((l) => l.msg === "said hello there");
  assert.ok(line, JSON.stringify(lines));
  assert.equal(line.txid, "2.42");
  assert.equal(line.endpoint, "POST /say");
  await executor.close();
});

test("interpreter_reuse keeps module state warm across calls; without it every call starts fresh", async () => {
  const { executor, store } = await setup();
  install(store, { "/warm": { get: ep("count") }, "/cold": { get: ep("count", false) } });
  assert.equal((await run(executor, store, "GET", "/warm")).text, "1");
  assert.equal((await run(executor, store, "GET", "/warm")).text, "2");
  assert.equal((await run(executor, store, "GET", "/cold")).text, "1");
  assert.equal((await run(executor, store, "GET", "/cold")).text, "1");
  // A new install (interpreter.flush written) starts from fresh module state.
  install(store, { "/warm": { get: ep("count") } }, 2);
  assert.equal((await run(executor, store, "GET", "/warm")).text, "1");
  await executor.close();
});

test("heap and stack limits end the request with a clear 500; the next request is served", async () => {
  const { executor, store } = await setup();
  install(store, {
    "/bomb": { get: ep("bomb") },
    "/deep": { get: ep("deep") },
    "/count": { get: ep("count") },
  });
  setOptions(store, {
    max_heap_bytes: 8 * 1024 * 1024,
    max_stack_bytes: 1024 * 1024,
    max_execution_time_ms: 5000,
  });
  const bomb = await run(executor, store, "GET", "/bomb");
  assert.equal(bomb.status, 500);
  assert.match(bomb.text, /ran out of memory/);
  const deep = await run(executor, store, "GET", "/deep");
  assert.equal(deep.status, 500);
  assert.match(deep.text, /overflowed its stack/);
  assert.equal((await run(executor, store, "GET", "/count")).status, 200);
  await executor.close();
});

test("handlers may read the clock (once enabled), draw randomness and walk maps", async () => {
  const { executor, store } = await setup();
  install(store, { "/clock": { get: ep("clock") }, "/walk": { get: ep("walk") } });
  const started = Date.now();
  const clock = JSON.parse((await run(executor, store, "GET", "/clock")).text);
  assert.equal(clock.before, 0, "Date reads 0 until the handler opts in, as in CCF");
  assert.ok(clock.after >= started);
  assert.ok(clock.random >= 0 && clock.random < 1);
  const tx = store.begin();
  tx.map("public:walk").set(enc.encode("a"), enc.encode("1"));
  tx.map("public:walk").set(enc.encode("b"), enc.encode("2"));
  const { seqno } = store.commit(tx) as { seqno: number };
  const walk = JSON.parse((await run(executor, store, "GET", "/walk")).text);
  assert.deepEqual(walk, { seen: ["a=1", "b=2"], size: 2, version: seqno });
  await executor.close();
});

test("what Coco cannot support throws a clear 'not supported in Coco'", async () => {
  const { executor, store } = await setup();
  install(store, { "/spawn": { get: ep("spawn") } });
  const spawn = await run(executor, store, "GET", "/spawn");
  assert.equal(spawn.status, 500);
  assert.match(spawn.text, /triggerSubprocess is not supported in Coco/);
  await executor.close();
});

test("a JS endpoint replaces a native one of the same path only when registered to", async () => {
  const native = defineApp("native", (app) =>
    app.get("/same", { auth: ["no_auth"], mode: "readonly" }, () => ({ body: "from native" })),
  );
  for (const replaces of [false, true]) {
    const { executor, store } = await setup();
    install(store, { "/same": { get: ep("native") } });
    const registry = new ExecutorRegistry([native]).add(executor, { replaces });
    const match = registry.match("GET", "/same", store);
    assert.ok(match && "endpoint" in match);
    const response = await match.endpoint.handler({
      request: {
        headers: {},
        url: "/app/same",
        path: "/same",
        params: {},
        body: new Uint8Array(),
      } as unknown as AppRequest,
      caller: { policy: "no_auth" },
      tx: store.begin(),
      setClaimsDigest: () => undefined,
    });
    const body =
      response.body instanceof Uint8Array ? new TextDecoder().decode(response.body) : response.body;
    assert.equal(body, replaces ? "from js" : "from native");
    await executor.close();
  }
});
