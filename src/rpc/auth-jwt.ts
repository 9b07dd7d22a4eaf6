// The `jwt` authentication policy: a bearer token signed by a key governance trusts.
import { createPublicKey, type KeyObject, verify } from "node:crypto";
import type { Caller } from "../apps/index.ts";
import type { Store } from "../kv/index.ts";

/** Issuers governance trusts, by issuer: the metadata of `set_jwt_issuer` (Coco reads `audience`). */
export const JWT_ISSUERS = "public:ccf.gov.jwt.issuers";
/** Their signing keys, by key id: `{issuer, jwk}`, written by `set_jwt_public_signing_keys`. */
export const JWT_SIGNING_KEYS = "public:ccf.gov.jwt.public_signing_keys";

type JwtCaller = Extract<Caller, { policy: "jwt" }>;
export type PolicyResult = { ok: true; caller: Caller } | { ok: false; reason: string };

/** JWS algorithms Coco verifies: node:crypto's hash and signature encoding for each. */
const ALGORITHMS: Record<string, { hash: string; dsaEncoding?: "ieee-p1363"; kty: string }> = {
  RS256: { hash: "sha256", kty: "RSA" },
  RS384: { hash: "sha384", kty: "RSA" },
  ES256: { hash: "sha256", dsaEncoding: "ieee-p1363", kty: "EC" },
  ES384: { hash: "sha384", dsaEncoding: "ieee-p1363", kty: "EC" },
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function fail(reason: string): PolicyResult {
  return { ok: false, reason };
}

function bearerToken(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers.authorization;
  if (typeof value !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

function jsonPart(part: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error(`the token's ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new Error(`the token's ${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`the token's ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function readJson(store: Store, map: string, key: string): Record<string, unknown> | undefined {
  const raw = store.read(map, encoder.encode(key));
  if (raw === undefined) return undefined;
  try {
    const value = JSON.parse(decoder.decode(raw)) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The public key of a JWK: from its `x5c` certificate when it has one, else its own fields. */
function publicKeyOf(jwk: Record<string, unknown>): KeyObject {
  const x5c = jwk.x5c;
  if (Array.isArray(x5c) && typeof x5c[0] === "string") {
    const pem = `-----BEGIN CERTIFICATE-----\n${x5c[0]}\n-----END CERTIFICATE-----\n`;
    return createPublicKey(pem);
  }
  return createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" });
}

function audienceMatches(wanted: unknown, aud: unknown): boolean {
  const allowed = Array.isArray(wanted) ? wanted : [wanted];
  const presented = Array.isArray(aud) ? aud : [aud];
  return presented.some((a) => typeof a === "string" && allowed.includes(a));
}

/**
 * Checks `Authorization: Bearer <JWT>`: the key named by `kid` must be one governance set, for an
 * issuer it still trusts; the signature must verify with it; `iss` must be that issuer; `aud`
 * must name the issuer's `audience` when one is configured; `exp` is required and `nbf` honoured,
 * both against the node's clock.
 */
export function checkJwt(
  headers: Record<string, string | string[] | undefined>,
  store: Store,
  nowSeconds: number,
): PolicyResult {
  const token = bearerToken(headers);
  if (token === undefined) return fail("no bearer token in the Authorization header");
  const parts = token.split(".");
  if (parts.length !== 3) return fail("the bearer token is not a JWS compact serialization (3 parts)");
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = jsonPart(headerPart, "header");
    payload = jsonPart(payloadPart, "payload");
  } catch (e) {
    return fail((e as Error).message);
  }
  const alg = typeof header.alg === "string" ? ALGORITHMS[header.alg] : undefined;
  if (alg === undefined) return fail(`unsupported alg ${JSON.stringify(header.alg)}`);
  if (typeof header.kid !== "string") return fail("the token's header has no kid");
  const entry = readJson(store, JWT_SIGNING_KEYS, header.kid);
  if (entry === undefined) return fail(`no signing key with kid ${JSON.stringify(header.kid)}`);
  const issuer = entry.issuer;
  if (typeof issuer !== "string") return fail(`the key ${header.kid} has no issuer`);
  const metadata = readJson(store, JWT_ISSUERS, issuer);
  if (metadata === undefined) return fail(`the key's issuer ${JSON.stringify(issuer)} is not trusted`);
  let key: KeyObject;
  try {
    key = publicKeyOf((entry.jwk ?? {}) as Record<string, unknown>);
  } catch (e) {
    return fail(`the key ${header.kid} cannot be read: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType?.toUpperCase() !== alg.kty) {
    return fail(`the key ${header.kid} is not a ${alg.kty} key, as ${String(header.alg)} needs`);
  }
  const signature = Buffer.from(signaturePart, "base64url");
  const signed = Buffer.from(`${headerPart}.${payloadPart}`, "ascii");
  const options = alg.dsaEncoding ? { key, dsaEncoding: alg.dsaEncoding } : key;
  let valid = false;
  try {
    valid = verify(alg.hash, signed, options, signature);
  } catch {
    valid = false;
  }
  if (!valid) return fail(`the signature does not verify with key ${header.kid}`);
  if (payload.iss !== issuer) {
    return fail(`iss ${JSON.stringify(payload.iss)} is not the key's issuer ${JSON.stringify(issuer)}`);
  }
  if (metadata.audience !== undefined && !audienceMatches(metadata.audience, payload.aud)) {
    return fail(
      `aud ${JSON.stringify(payload.aud)} is not the audience ${JSON.stringify(metadata.audience)}`,
    );
  }
  if (typeof payload.exp !== "number") return fail("the token has no exp");
  if (nowSeconds >= payload.exp) return fail(`the token expired at ${payload.exp} (now ${nowSeconds})`);
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== "number") return fail("the token's nbf is not a number");
    if (nowSeconds < payload.nbf)
      return fail(`the token is not valid before ${payload.nbf} (now ${nowSeconds})`);
  }
  const caller: JwtCaller = { policy: "jwt", keyIssuer: issuer, header, payload };
  return { ok: true, caller };
}
