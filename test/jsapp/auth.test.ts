// JWT and COSE Sign1 authentication of a JS app on a running node, with issuers and keys set by
// governance (Coco's constitution), and request.caller shaped as CCF's.
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { after, before, test } from "node:test";
import type { GovClient } from "../../src/client/index.ts";
import { certFingerprint, coseSign1 } from "../../src/crypto/index.ts";
import { govClient, passProposal, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const ISSUER = "https://login.example.test";
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rotated = generateKeyPairSync("rsa", { modulusLength: 2048 });

const APP = `export function who(request) {
  const c = request.caller;
  const out = { caller: c };
  if (c.cose) out.content = ccf.bufToStr(c.cose.content);
  return { body: out };
}`;
const ep = (policies: unknown[], mode = "readonly") => ({
  js_module: "app.js",
  js_function: "who",
  authn_policies: policies,
  mode,
  forwarding_required: "sometimes",
  openapi: {},
});
const BUNDLE = {
  metadata: {
    endpoints: {
      "/jwt": { get: ep(["jwt"]) },
      "/cose": { post: ep(["user_cose_sign1"], "readwrite") },
      "/either": { get: ep(["jwt", "user_cert"]) },
      "/both": { get: ep([{ all_of: ["user_cert", "jwt"] }]) },
    },
  },
  modules: [{ name: "app.js", module: APP }],
};

function jwk(key: KeyObject, kid: string) {
  return { ...key.export({ format: "jwk" }), kid };
}

function token(kid: string, key: KeyObject, claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const signed = `${part({ alg: "RS256", kid, typ: "JWT" })}.${part(claims)}`;
  return `${signed}.${sign("sha256", Buffer.from(signed), key).toString("base64url")}`;
}

const now = () => Math.floor(Date.now() / 1000);
const claims = () => ({ iss: ISSUER, sub: "alice", aud: "coco-app", exp: now() + 300 });

let net: TestNetwork;
let gov: GovClient;
before(async () => {
  net = await startTestNetwork();
  gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
  await gov.activate();
  await passProposal(gov, "set_jwt_issuer", {
    issuer: ISSUER,
    audience: "coco-app",
    jwks: { keys: [jwk(rsa.publicKey, "k1")] },
  });
  await passProposal(gov, "set_js_app", { bundle: BUNDLE });
});
after(async () => {
  await gov.close();
  await net.cleanup();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test("jwt: a governance-trusted token reaches the handler as CCF's jwt caller", async () => {
  const c = claims();
  const res = await net.call("GET", "/app/jwt", {
    as: "none",
    headers: bearer(token("k1", rsa.privateKey, c)),
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json().caller, {
    policy: "jwt",
    jwt: { keyIssuer: ISSUER, header: { alg: "RS256", kid: "k1", typ: "JWT" }, payload: c },
  });
});

test("jwt: expired, wrong audience, unknown kid and tampered tokens answer 401 naming the policy", async () => {
  const t = token("k1", rsa.privateKey, claims());
  const [h, , s] = t.split(".");
  const forged = Buffer.from(JSON.stringify({ ...claims(), sub: "mallory" })).toString("base64url");
  const cases: Array<[string, RegExp]> = [
    [token("k1", rsa.privateKey, { ...claims(), exp: now() - 10 }), /jwt: the token expired/],
    [
      token("k1", rsa.privateKey, { ...claims(), aud: "elsewhere" }),
      /jwt: aud "elsewhere" is not the audience/,
    ],
    [token("k9", rsa.privateKey, claims()), /jwt: no signing key with kid "k9"/],
    [`${h}.${forged}.${s}`, /jwt: the signature does not verify/],
  ];
  for (const [bad, why] of cases) {
    const res = await net.call("GET", "/app/jwt", { as: "none", headers: bearer(bad) });
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json().error.code, "InvalidAuthenticationInfo");
    assert.match(res.json().error.message, why);
  }
  const either = await net.call("GET", "/app/either", { as: "none" });
  assert.equal(either.status, 401);
  assert.match(either.json().error.message, /jwt: no bearer token.*; user_cert: no client certificate/);
});

test("jwt: rotating the issuer's keys drops the old ones; removing the issuer refuses its tokens", async () => {
  const old = token("k1", rsa.privateKey, claims());
  await passProposal(gov, "set_jwt_public_signing_keys", {
    issuer: ISSUER,
    jwks: { keys: [jwk(rotated.publicKey, "k2")] },
  });
  const fresh = token("k2", rotated.privateKey, claims());
  assert.equal((await net.call("GET", "/app/jwt", { as: "none", headers: bearer(fresh) })).status, 200);
  const stale = await net.call("GET", "/app/jwt", { as: "none", headers: bearer(old) });
  assert.equal(stale.status, 401);
  assert.match(stale.json().error.message, /no signing key with kid "k1"/);
  // all_of: the user certificate and the token, both named in the caller.
  const both = await net.call("GET", "/app/both", { headers: bearer(fresh) });
  assert.equal(both.status, 200, both.text);
  const caller = both.json().caller;
  assert.deepEqual(caller.policy, ["user_cert", "jwt"]);
  assert.equal(caller.user_cert.id, certFingerprint(net.identities.user.certPem));
  // Each constituent under its name, shaped as it would be alone (as CCF does).
  assert.equal(caller.jwt.jwt.payload.sub, "alice");
  assert.equal((await net.call("GET", "/app/both", { as: "none", headers: bearer(fresh) })).status, 401);
  await passProposal(gov, "remove_jwt_issuer", { issuer: ISSUER });
  const gone = await net.call("GET", "/app/jwt", { as: "none", headers: bearer(fresh) });
  assert.equal(gone.status, 401);
});

test("user_cose_sign1: a body signed by a registered user is its caller and content; a stranger's is refused", async () => {
  const sign1 = (keyPem: string, certPem: string, createdAt: number) =>
    coseSign1({
      protectedHeader: new Map<number | string, unknown>([
        [1, -35],
        [4, new TextEncoder().encode(certFingerprint(certPem))],
        ["ccf.msg.created_at", createdAt],
      ]),
      payload: new TextEncoder().encode('{"note":"signed"}'),
      privateKeyPem: keyPem,
    });
  const { user, stranger } = net.identities;
  const headers = { "content-type": "application/cose" };
  const ok = await net.call("POST", "/app/cose", {
    as: "none",
    headers,
    rawBody: sign1(user.privateKeyPem, user.certPem, now()),
  });
  assert.equal(ok.status, 200, ok.text);
  const body = ok.json();
  assert.equal(body.caller.policy, "user_cose_sign1");
  assert.equal(body.caller.id, certFingerprint(user.certPem));
  assert.match(body.caller.cert, /BEGIN CERTIFICATE/);
  assert.equal(body.content, '{"note":"signed"}');
  const strangerCall = await net.call("POST", "/app/cose", {
    as: "none",
    headers,
    rawBody: sign1(stranger.privateKeyPem, stranger.certPem, now()),
  });
  assert.equal(strangerCall.status, 401);
  assert.match(strangerCall.json().error.message, /user_cose_sign1: no user has id/);
  const stale = await net.call("POST", "/app/cose", {
    as: "none",
    headers,
    rawBody: sign1(user.privateKeyPem, user.certPem, now() - 3600),
  });
  assert.equal(stale.status, 401);
  assert.match(stale.json().error.message, /more than 600 s/);
});
