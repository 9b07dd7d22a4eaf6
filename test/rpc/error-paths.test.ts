/**
 * The error answers docs/api.md documents, each triggered for real on a two-node service with
 * real TLS: an app writing a framework map (403), a read-only endpoint that writes (500), a caller
 * without the role a framework endpoint asks (403), a forwarded write the primary does not answer
 * in time (504 ForwardingTimeout), respond-on-commit without a quorum (504 CommitTimeout), a
 * backup with no primary to forward to (503 ForwardingFailed); and the read-only governance views
 * of the constitution and the JS app. Each refused request must leave the store as it was.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { defineApp } from "../../src/apps/index.ts";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";
import { passProposal } from "../helpers/network.ts";

const FORWARD_TIMEOUT_MS = 1_500;
const COMMIT_WAIT_MS = 1_500;
const API = "api-version=2024-07-01";
const enc = (s: string) => new TextEncoder().encode(s);

/** Opened by the test: until then the slow endpoint's handler waits (at most 20 s). */
let openGate: () => void = () => {};
let gate = Promise.resolve();

const app = defineApp("errors", (a) => {
  const user = { auth: ["user_cert" as const] };
  a.post("/errors/framework-write", { ...user, mode: "readwrite" }, ({ tx }) => {
    tx.map("public:errors").set(enc("framework"), enc("written"));
    tx.map("public:ccf.gov.users.info").set(enc("intruder"), enc("{}"));
    return { body: "wrote" };
  });
  a.post("/errors/ro-write", { ...user, mode: "readonly" }, ({ tx }) => {
    tx.map("public:errors").set(enc("ro"), enc("written"));
    return { body: "wrote" };
  });
  a.post("/errors/slow", { ...user, mode: "readwrite" }, async ({ tx }) => {
    await Promise.race([gate, new Promise((r) => setTimeout(r, 20_000))]);
    tx.map("public:errors").set(enc("slow"), enc("written"));
    return { body: "slow" };
  });
  a.get("/errors/record", { ...user, mode: "readonly" }, ({ tx, request }) => {
    const value = tx.map("public:errors").get(enc(request.query.get("key") ?? ""));
    return value ? { body: new TextDecoder().decode(value) } : { status: 404, body: "none" };
  });
});

test("documented error answers, each triggered for real, each changing nothing", {
  timeout: budget(240_000),
}, async () => {
  const cluster = await Cluster.create();
  cluster.apps.push(app);
  const timeouts = { commitWaitTimeoutMs: COMMIT_WAIT_MS };
  const n1Settings = {
    ...timeouts,
    rpc: { address: `127.0.0.1:${await freePort()}`, forwardTimeoutMs: FORWARD_TIMEOUT_MS },
    nodeAddress: `127.0.0.1:${await freePort()}`,
  };
  try {
    const n0 = await cluster.startService({ ...timeouts, openAtNodes: 2 });
    let n1 = await cluster.join("n1", n0, n1Settings);
    await cluster.untilOpen();
    assert.ok(n0.node.isPrimary);
    const record = async (key: string) =>
      (await cluster.call(n0, "GET", `/app/errors/record?key=${key}`)).status;

    // 403: an app may not write a framework map; its other writes go too.
    const users = () => n0.node.state.store.version;
    const before = users();
    const framework = await cluster.call(n0, "POST", "/app/errors/framework-write");
    assert.equal(framework.status, 403, framework.text);
    assert.equal(framework.json().error.code, "AuthorizationFailed");
    assert.match(framework.json().error.message, /framework map public:ccf\.gov\.users\.info/);
    assert.match(String(framework.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
    assert.equal(await record("framework"), 404);

    // 500: a read-only endpoint that writes; the write is dropped.
    const ro = await cluster.call(n0, "POST", "/app/errors/ro-write");
    assert.equal(ro.status, 500, ro.text);
    assert.equal(ro.json().error.code, "InternalError");
    assert.match(ro.json().error.message, /read-only endpoint attempted to write/);
    assert.equal(await record("ro"), 404);
    assert.equal(users(), before, "neither refused request wrote a transaction");

    // 403: a known caller without the role a framework endpoint asks (members only).
    const asUser = await cluster.call(n0, "GET", "/node/ledger/entries?from=1&to=1");
    assert.equal(asUser.status, 403, asUser.text);
    assert.equal(asUser.json().error.code, "AuthorizationFailed");
    const asMember = await cluster.call(n0, "GET", "/node/ledger/entries?from=1&to=1", { as: "member" });
    assert.equal(asMember.status, 200, asMember.text);

    // The constitution and JS-app views of governance, before and after a change by vote.
    const unversioned = await cluster.call(n0, "GET", "/gov/service/constitution");
    assert.equal(unversioned.status, 400, "governance endpoints require an api-version");
    assert.match(unversioned.text, /api-version/);
    const constitution = await cluster.call(n0, "GET", `/gov/service/constitution?${API}`);
    assert.equal(constitution.status, 200);
    assert.match(String(constitution.headers["content-type"]), /^text\/javascript/);
    assert.match(constitution.text, /export function (validate|apply|resolve)/);
    assert.deepEqual((await cluster.call(n1, "GET", `/gov/service/javascript-app?${API}`)).json(), {
      endpoints: {},
      modules: [],
    });
    const changed = `${constitution.text}\n// amended by error-paths.test.ts\n`;
    await passProposal(await cluster.gov(), "set_constitution", { constitution: changed });
    await cluster.until("both nodes serve the amended constitution", async () => {
      for (const node of [n0, n1]) {
        if ((await cluster.call(node, "GET", `/gov/service/constitution?${API}`)).text !== changed)
          return false;
      }
      return true;
    });

    // 504 ForwardingTimeout: the backup handed the write to the primary, which did not answer in
    // time; the call may still run there (it does, once the gate opens).
    gate = new Promise((resolve) => {
      openGate = resolve;
    });
    const t0 = performance.now();
    const slow = await cluster.call(n1, "POST", "/app/errors/slow");
    const waited = performance.now() - t0;
    assert.equal(slow.status, 504, slow.text);
    assert.equal(slow.json().error.code, "ForwardingTimeout");
    assert.ok(waited >= FORWARD_TIMEOUT_MS - 50, `answered after ${waited} ms`);
    openGate();
    await cluster.until(
      "the timed-out write ran on the primary after all",
      async () => (await record("slow")) === 200,
    );

    // 504 CommitTimeout: respond-on-commit on a primary whose only backup is down.
    await n1.stop();
    const uncommitted = await cluster.call(n0, "PUT", "/app/log/private?id=1", {
      body: { msg: "no quorum" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(uncommitted.status, 504, uncommitted.text);
    assert.equal(uncommitted.json().error.code, "CommitTimeout");
    const txid = String(uncommitted.headers["x-ms-ccf-transaction-id"]);
    assert.match(txid, /^\d+\.\d+$/, "the answer names the transaction, so its fate can be checked");
    // With the backup back, the write commits after all.
    n1 = await cluster.start("n1", {
      ...n1Settings,
      join: { target: `127.0.0.1:${n0.port}`, serviceCertFile: "service_cert.pem" },
    });
    await cluster.until(
      "the timed-out write commits once the backup is back",
      async () => {
        const status = await cluster.call(n0, "GET", `/app/tx?transaction_id=${txid}`);
        return status.json().status === "Committed";
      },
      60_000,
    );

    // 503 ForwardingFailed: a backup with no primary to forward to runs nothing. Stop whichever
    // node is primary now: on a loaded machine the restarted n1 may have won an election, and a
    // lone primary would run the write itself. Alone, the other can never become primary.
    await cluster.until("a primary", () => cluster.primary() !== undefined);
    const primary = cluster.primary() === n0 ? n0 : n1;
    const backup = primary === n0 ? n1 : n0;
    await primary.stop();
    assert.equal(backup.node.isPrimary, false, "the node left is a backup");
    const versionBefore = backup.node.state.store.version;
    const orphan = await cluster.call(backup, "PUT", "/app/log/private?id=2", {
      body: { msg: "no primary" },
    });
    assert.equal(orphan.status, 503, orphan.text);
    assert.equal(orphan.json().error.code, "ForwardingFailed");
    assert.match(orphan.json().error.message, /it was not run/);
    assert.equal(backup.node.state.store.version, versionBefore);
  } finally {
    openGate();
    await cluster.stop();
  }
});
