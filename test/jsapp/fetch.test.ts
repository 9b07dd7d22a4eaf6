// Outbound HTTPS from handlers: allow-listed by governance, fetched once, recorded with the
// transaction; a destination not on the list is refused.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import type { GovClient } from "../../src/client/index.ts";
import { createServiceIdentity, generateP384KeyPair, issueNodeCertificate } from "../../src/crypto/index.ts";
import { Store } from "../../src/kv/index.ts";
import { OUTBOUND_DESTINATIONS, OUTBOUND_RESPONSES, OutboundSession } from "../../src/rpc/outbound.ts";
import { govClient, passProposal, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const APP = `export function price(request) {
  const origin = request.body.json().origin;
  ccf.kv["prices"].set(ccf.strToBuf("before"), ccf.strToBuf("x"));
  const r = ccf.host.fetch({ url: origin + "/price?sym=ACME", headers: { accept: "application/json" } });
  const quote = JSON.parse(ccf.bufToStr(r.body));
  ccf.kv["prices"].set(ccf.strToBuf("ACME"), ccf.strToBuf(String(quote.price)));
  return { body: { status: r.status, price: quote.price, digest: r.digest } };
}
export function peek(request) {
  const v = ccf.kv["coco.outbound.responses"].get(ccf.strToBuf(request.params.digest));
  return v === undefined ? { statusCode: 404 } : { body: JSON.parse(ccf.bufToStr(v)) };
}
export function forge(request) {
  const b = request.body.json();
  if (b.origin) ccf.host.fetch({ url: b.origin + "/price?sym=ACME" });
  const map = ccf.kv["coco.outbound.responses"];
  if (b.remove) map.delete(ccf.strToBuf(b.digest));
  else map.set(ccf.strToBuf(b.digest), ccf.strToBuf(JSON.stringify({ response: { status: 200, body: "bWFkZSB1cA==" } })));
  ccf.kv["prices"].set(ccf.strToBuf("forged"), ccf.strToBuf("yes"));
  return { body: "written" };
}
export function forged(request) {
  return { body: ccf.kv["prices"].has(ccf.strToBuf("forged")) ? "present" : "absent" };
}
export function readonlyFetch(request) {
  ccf.host.fetch({ url: request.body.json().origin + "/price" });
  return { body: "unreachable" };
}`;
const ep = (fn: string, mode: string) => ({
  js_module: "app.js",
  js_function: fn,
  authn_policies: ["user_cert"],
  mode,
  forwarding_required: "sometimes",
  openapi: {},
});
const BUNDLE = {
  metadata: {
    endpoints: {
      "/price": { post: ep("price", "readwrite") },
      "/ro-price": { post: ep("readonlyFetch", "readonly") },
      "/forge": { post: ep("forge", "readwrite") },
      "/forged": { get: ep("forged", "readonly") },
      "/exchange/{digest}": { get: ep("peek", "readonly") },
    },
  },
  modules: [{ name: "app.js", module: APP }],
};

let server: Server;
let hits = 0;
let origin: string;
let caPem: string;
let net: TestNetwork;
let gov: GovClient;

before(async () => {
  const now = new Date(Date.now() - 60_000);
  const ca = await createServiceIdentity({ now, serial: new Uint8Array(16).fill(1) });
  const key = generateP384KeyPair();
  const cert = await issueNodeCertificate({
    service: ca,
    nodePublicKeyPem: key.publicKeyPem,
    now,
    serial: new Uint8Array(16).fill(2),
  });
  caPem = ca.certPem;
  server = createServer({ key: key.privateKeyPem, cert }, (req, res) => {
    hits++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ price: 42, url: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  net = await startTestNetwork();
  gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
  await gov.activate();
  await passProposal(gov, "set_js_app", { bundle: BUNDLE });
});
after(async () => {
  await gov.close();
  await net.cleanup();
  server.close();
});

test("a destination governance did not allow-list is refused, and nothing is written", async () => {
  const res = await net.call("POST", "/app/price", { body: { origin } });
  assert.equal(res.status, 500, res.text);
  assert.match(res.text, /is not an allow-listed destination/);
  assert.equal(hits, 0, "no request left the node");
});

test("an allow-listed destination is fetched once; the exchange is recorded with the transaction", async () => {
  await passProposal(gov, "set_outbound_destination", { origin, ca_cert: caPem });
  const res = await net.call("POST", "/app/price", { body: { origin } });
  assert.equal(res.status, 200, res.text);
  const body = res.json();
  assert.equal(body.price, 42);
  assert.equal(body.status, 200);
  assert.match(body.digest, /^[0-9a-f]{64}$/);
  assert.equal(hits, 1, "fetched once, though the handler ran twice");
  const recorded = await net.call("GET", `/app/exchange/${body.digest}`);
  assert.equal(recorded.status, 200, recorded.text);
  const exchange = recorded.json();
  assert.equal(exchange.request.url, `${origin}/price?sym=ACME`);
  assert.equal(exchange.response.status, 200);
  assert.equal(JSON.parse(Buffer.from(exchange.response.body, "base64").toString()).price, 42);
  const ro = await net.call("POST", "/app/ro-price", { body: { origin } });
  assert.equal(ro.status, 500);
  assert.match(ro.text, /only readwrite endpoints may call out/);
  // The record cannot be forged: an app writing an exchange itself, replacing or removing a
  // recorded one (even next to a real fetch), is refused and none of its writes commit.
  const fake = "ab".repeat(32);
  for (const attempt of [
    { digest: fake },
    { digest: body.digest },
    { digest: body.digest, remove: true },
    { digest: fake, origin },
  ]) {
    const forged = await net.call("POST", "/app/forge", { body: attempt });
    assert.equal(forged.status, 403, forged.text);
    assert.equal(forged.json().error.code, "AuthorizationFailed");
    assert.match(forged.text, /coco\.outbound\.responses/);
  }
  assert.equal((await net.call("GET", "/app/forged")).text, "absent");
  assert.equal((await net.call("GET", `/app/exchange/${fake}`)).status, 404);
  assert.equal((await net.call("GET", `/app/exchange/${body.digest}`)).json().response.status, 200);
  await passProposal(gov, "remove_outbound_destination", { origin });
  assert.equal((await net.call("POST", "/app/price", { body: { origin } })).status, 500);
  assert.equal(hits, 2, "the forging call's own fetch went out once");
});

test("native handlers: the same session API; a wrong CA fails the TLS check with 502", async () => {
  const store = new Store();
  const setup = store.begin();
  setup.map(OUTBOUND_DESTINATIONS).set(new TextEncoder().encode(origin), new TextEncoder().encode("{}"));
  store.commit(setup);
  const session = new OutboundSession(true, () => 0);
  const tx = store.begin();
  await assert.rejects(session.fetch(tx, { url: `${origin}/x` }), (e: Error & { status?: number }) => {
    assert.equal(e.status, 502);
    assert.match(e.message, /self.signed|unable to verify|certificate/i);
    return true;
  });
  await assert.rejects(session.fetch(tx, { url: "http://127.0.0.1:1/x" }), /only https/);
  const trusted = store.begin();
  trusted
    .map(OUTBOUND_DESTINATIONS)
    .set(new TextEncoder().encode(origin), new TextEncoder().encode(JSON.stringify({ ca_cert: caPem })));
  store.commit(trusted);
  const tx2 = store.begin();
  const before = hits;
  const r = await session.fetch(tx2, { url: `${origin}/y`, method: "POST", body: "hi" });
  assert.equal(r.status, 200);
  assert.ok(tx2.map(OUTBOUND_RESPONSES).get(new TextEncoder().encode(r.digest)));
  const again = await session.fetch(store.begin(), { url: `${origin}/y`, method: "POST", body: "hi" });
  assert.equal(again.digest, r.digest);
  assert.equal(hits, before + 1, "the session fetched once");
});
