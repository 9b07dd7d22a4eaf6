import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { test } from "node:test";
import { certFingerprint, coseSign1 } from "../../src/crypto/index.ts";
import { Store } from "../../src/kv/index.ts";
import { Tables as GovTables } from "../../src/ledger/index.ts";
import { authenticate, type Peer } from "../../src/rpc/auth.ts";
import { JWT_ISSUERS, JWT_SIGNING_KEYS } from "../../src/rpc/auth-jwt.ts";
import type { AuthRequest } from "../../src/rpc/auth-policies.ts";
import { makeIdentity } from "../helpers/network.ts";

const NOW = 1_800_000_000;
const ISSUER = "https://login.example.test";
const enc = new TextEncoder();

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 });

function jwk(key: KeyObject, kid: string): Record<string, unknown> {
  return { ...key.export({ format: "jwk" }), kid };
}

function storeWith(audience?: string): Store {
  const store = new Store();
  const tx = store.begin();
  tx.map(JWT_ISSUERS).set(enc.encode(ISSUER), enc.encode(JSON.stringify(audience ? { audience } : {})));
  for (const [kid, key] of [
    ["rsa-1", rsa.publicKey],
    ["ec-1", ec.publicKey],
  ] as const) {
    tx.map(JWT_SIGNING_KEYS).set(
      enc.encode(kid),
      enc.encode(JSON.stringify({ issuer: ISSUER, jwk: jwk(key, kid) })),
    );
  }
  store.commit(tx);
  return store;
}

function token(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const signed = `${part(header)}.${part(payload)}`;
  const ecdsa = header.alg === "ES256";
  const sig = sign("sha256", Buffer.from(signed), ecdsa ? { key, dsaEncoding: "ieee-p1363" } : key);
  return `${signed}.${sig.toString("base64url")}`;
}

const noPeer: Peer = { id: null, user: null, member: null };
const good = { iss: ISSUER, sub: "alice", aud: "coco-app", exp: NOW + 60, nbf: NOW - 60 };

function jwtRequest(store: Store, t: string, nowSeconds = NOW): AuthRequest {
  return { headers: { authorization: `Bearer ${t}` }, body: new Uint8Array(0), store, nowSeconds };
}

test("jwt: RS256 and ES256 tokens signed by a governance key pass and name the issuer and claims", () => {
  const store = storeWith("coco-app");
  for (const [kid, alg, key] of [
    ["rsa-1", "RS256", rsa.privateKey],
    ["ec-1", "ES256", ec.privateKey],
  ] as const) {
    const out = authenticate(["jwt"], noPeer, jwtRequest(store, token({ alg, kid, typ: "JWT" }, good, key)));
    assert.ok(out.ok, JSON.stringify(out));
    assert.deepEqual(out.caller, {
      policy: "jwt",
      keyIssuer: ISSUER,
      header: { alg, kid, typ: "JWT" },
      payload: good,
    });
  }
});

test("jwt: expired, not yet valid, wrong audience, unknown kid, tampered, wrong key and removed issuer fail with the reason", () => {
  const store = storeWith("coco-app");
  const h = { alg: "RS256", kid: "rsa-1" };
  const cases: Array<[string, string, RegExp]> = [
    ["expired", token(h, { ...good, exp: NOW - 1 }, rsa.privateKey), /jwt: the token expired at/],
    ["no exp", token(h, { ...good, exp: undefined }, rsa.privateKey), /jwt: the token has no exp/],
    ["not yet", token(h, { ...good, nbf: NOW + 30 }, rsa.privateKey), /jwt: the token is not valid before/],
    [
      "audience",
      token(h, { ...good, aud: "other-app" }, rsa.privateKey),
      /jwt: aud "other-app" is not the audience/,
    ],
    [
      "issuer",
      token(h, { ...good, iss: "https://evil.test" }, rsa.privateKey),
      /jwt: iss "https:\/\/evil.test" is not/,
    ],
    ["kid", token({ ...h, kid: "nope" }, good, rsa.privateKey), /jwt: no signing key with kid "nope"/],
    ["wrong key", token(h, good, stranger.privateKey), /jwt: the signature does not verify with key rsa-1/],
    [
      "alg none",
      `${Buffer.from('{"alg":"none","kid":"rsa-1"}').toString("base64url")}.e30.`,
      /jwt: unsupported alg "none"/,
    ],
    [
      "key type",
      token({ alg: "ES256", kid: "rsa-1" }, good, ec.privateKey),
      /jwt: the key rsa-1 is not a EC key/,
    ],
  ];
  const t = token(h, good, rsa.privateKey);
  const [hp, , sp] = t.split(".");
  const forged = Buffer.from(JSON.stringify({ ...good, sub: "mallory" })).toString("base64url");
  cases.push(["tampered", `${hp}.${forged}.${sp}`, /jwt: the signature does not verify/]);
  for (const [name, bad, why] of cases) {
    const out = authenticate(["jwt"], noPeer, jwtRequest(store, bad));
    assert.equal(out.ok, false, name);
    if (!out.ok) {
      assert.equal(out.status, 401, name);
      assert.match(out.message, why, name);
    }
  }
  const ok = authenticate(["jwt"], noPeer, jwtRequest(store, t));
  assert.ok(ok.ok, "the untampered token passes");
  // The same token after governance stops trusting the issuer.
  const tx = store.begin();
  tx.map(JWT_ISSUERS).delete(enc.encode(ISSUER));
  store.commit(tx);
  const out = authenticate(["jwt"], noPeer, jwtRequest(store, t));
  assert.ok(!out.ok && /issuer "https:\/\/login.example.test" is not trusted/.test(out.message));
});

async function registered(table: string) {
  const { certPem, privateKeyPem: keyPem } = await makeIdentity("caller");
  const id = certFingerprint(certPem);
  const store = new Store();
  const tx = store.begin();
  tx.map(table).set(enc.encode(id), enc.encode(certPem));
  store.commit(tx);
  return { store, id, keyPem, certPem };
}

function coseBody(keyPem: string, kid: string, createdAtName: string, createdAt: number, payload: string) {
  return coseSign1({
    protectedHeader: new Map<number | string, unknown>([
      [1, -35],
      [4, enc.encode(kid)],
      [createdAtName, createdAt],
    ]),
    payload: enc.encode(payload),
    privateKeyPem: keyPem,
  });
}

function coseRequest(store: Store, body: Uint8Array, nowSeconds = NOW): AuthRequest {
  return { headers: { "content-type": "application/cose" }, body, store, nowSeconds };
}

test("user_cose_sign1 and member_cose_sign1: a body signed by a registered caller passes with its content", async () => {
  const user = await registered(GovTables.usersCerts);
  const body = coseBody(user.keyPem, user.id, "ccf.msg.created_at", NOW - 5, '{"hello":1}');
  const out = authenticate(["user_cose_sign1"], noPeer, coseRequest(user.store, body));
  assert.ok(out.ok, JSON.stringify(out));
  assert.equal(out.caller.policy, "user_cose_sign1");
  if (out.caller.policy === "user_cose_sign1") {
    assert.equal(out.caller.id, user.id);
    assert.equal(new TextDecoder().decode(out.caller.content), '{"hello":1}');
  }
  const member = await registered(GovTables.membersCerts);
  const mbody = coseBody(member.keyPem, member.id, "ccf.gov.msg.created_at", NOW, "x");
  assert.ok(authenticate(["member_cose_sign1"], noPeer, coseRequest(member.store, mbody)).ok);
  // A member is not a user: the user policy fails, the member one after it passes.
  const both = authenticate(
    ["user_cose_sign1", "member_cose_sign1"],
    noPeer,
    coseRequest(member.store, mbody),
  );
  assert.ok(both.ok && both.caller.policy === "member_cose_sign1");
});

test("COSE Sign1: stale, unknown signer, tampered and wrong content type fail with the reason", async () => {
  const user = await registered(GovTables.usersCerts);
  const other = await registered(GovTables.usersCerts);
  const fresh = coseBody(user.keyPem, user.id, "ccf.msg.created_at", NOW, "pay");
  const tampered = fresh.slice();
  tampered[tampered.length - 70] = (tampered[tampered.length - 70] ?? 0) ^ 1;
  const cases: Array<[string, AuthRequest, RegExp]> = [
    [
      "stale",
      coseRequest(user.store, coseBody(user.keyPem, user.id, "ccf.msg.created_at", NOW - 601, "p")),
      /more than 600 s/,
    ],
    [
      "unknown",
      coseRequest(user.store, coseBody(other.keyPem, other.id, "ccf.msg.created_at", NOW, "p")),
      /no user has id/,
    ],
    [
      "wrong signer",
      coseRequest(user.store, coseBody(other.keyPem, user.id, "ccf.msg.created_at", NOW, "p")),
      /does not verify/,
    ],
    ["tampered", coseRequest(user.store, tampered), /user_cose_sign1: /],
    [
      "no created_at",
      coseRequest(user.store, coseBody(user.keyPem, user.id, "ccf.gov.msg.created_at", NOW, "p")),
      /must carry ccf.msg.created_at/,
    ],
    [
      "content type",
      { ...coseRequest(user.store, fresh), headers: { "content-type": "application/json" } },
      /not application\/cose/,
    ],
    ["not cose", coseRequest(user.store, enc.encode("{}")), /not a COSE_Sign1/],
  ];
  for (const [name, request, why] of cases) {
    const out = authenticate(["user_cose_sign1"], noPeer, request);
    assert.ok(!out.ok, name);
    if (!out.ok) assert.match(out.message, why, name);
  }
  assert.ok(authenticate(["user_cose_sign1"], noPeer, coseRequest(user.store, fresh)).ok);
});

test("all_of needs every constituent; failures name each policy tried in order", async () => {
  const user = await registered(GovTables.usersCerts);
  const tx = user.store.begin();
  tx.map(JWT_ISSUERS).set(enc.encode(ISSUER), enc.encode("{}"));
  tx.map(JWT_SIGNING_KEYS).set(
    enc.encode("rsa-1"),
    enc.encode(JSON.stringify({ issuer: ISSUER, jwk: jwk(rsa.publicKey, "rsa-1") })),
  );
  user.store.commit(tx);
  const peer: Peer = { id: user.id, user: user.certPem, member: null };
  const t = token({ alg: "RS256", kid: "rsa-1" }, good, rsa.privateKey);
  const policies = [{ all_of: ["user_cert" as const, "jwt" as const] }];
  const ok = authenticate(policies, peer, jwtRequest(user.store, t));
  assert.ok(ok.ok);
  if (ok.ok && ok.caller.policy === "all_of") {
    assert.deepEqual(
      ok.caller.callers.map((c) => c.policy),
      ["user_cert", "jwt"],
    );
  }
  const noToken = authenticate(policies, peer, { ...jwtRequest(user.store, t), headers: {} });
  assert.ok(!noToken.ok && /all_of\(user_cert, jwt\): jwt: no bearer token/.test(noToken.message));
  const out = authenticate(["jwt", "member_cert", "user_cose_sign1"], peer, {
    ...jwtRequest(user.store, t),
    headers: {},
  });
  assert.ok(!out.ok);
  if (!out.ok) {
    assert.equal(out.status, 401);
    assert.match(
      out.message,
      /jwt: no bearer token.*; member_cert: client certificate [0-9a-f]+ is not a known member; user_cose_sign1: .*not application\/cose/,
    );
  }
  // Certificate-only endpoints keep their answers (403 for a known caller of the wrong role).
  const cert = authenticate(["member_cert"], peer);
  assert.ok(!cert.ok && cert.status === 403);
});
