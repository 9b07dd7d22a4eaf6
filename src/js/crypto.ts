// Host implementations of `ccf.crypto` and `ccf.pemToId`, on node:crypto.
// Arguments come from untrusted JS: every function checks them and throws with a clear message.
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  sign as signData,
  verify as verifyData,
  X509Certificate,
} from "node:crypto";
import type { JsEnv } from "./types.ts";

type HostFunction = (...args: unknown[]) => unknown;

function text(value: unknown, what: string): string {
  if (typeof value !== "string") throw new TypeError(`${what} must be a string`);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be an ArrayBuffer`);
  return value;
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

const HASHES: Record<string, string> = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

function hashName(value: unknown, what: string): string {
  const name = typeof value === "string" ? HASHES[value] : undefined;
  if (name === undefined) throw new RangeError(`${what} must be one of SHA-256, SHA-384, SHA-512`);
  return name;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/** Parses a PEM bundle of one or more certificates; undefined if anything else is in it. */
export function parseCertBundle(pem: string): X509Certificate[] | undefined {
  const certs: X509Certificate[] = [];
  let failed = false;
  const rest = pem.replace(CERT_BLOCK, (block) => {
    try {
      certs.push(new X509Certificate(block));
    } catch {
      failed = true;
    }
    return "";
  });
  if (failed || certs.length === 0 || rest.trim() !== "") return undefined;
  return certs;
}

/** Hex SHA-256 of the DER of the first certificate: CCF's member, user and node ids. */
export function pemToId(pem: unknown): string {
  const certs = parseCertBundle(text(pem, "ccf.pemToId: pem"));
  const first = certs?.[0];
  if (first === undefined) throw new TypeError("ccf.pemToId: pem is not a PEM certificate");
  return createHash("sha256").update(first.raw).digest("hex");
}

function isValidChain(chainPem: string, trustedPem: string, nowMs: number): boolean {
  const chain = parseCertBundle(chainPem);
  const trusted = parseCertBundle(trustedPem);
  if (chain === undefined || trusted === undefined) return false;
  for (const cert of chain) {
    if (Date.parse(cert.validFrom) > nowMs || Date.parse(cert.validTo) < nowMs) return false;
  }
  const issuedBy = (cert: X509Certificate, issuer: X509Certificate) =>
    issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i] as X509Certificate, chain[i + 1] as X509Certificate)) return false;
  }
  const top = chain[chain.length - 1] as X509Certificate;
  return trusted.some((anchor) => anchor.raw.equals(top.raw) || issuedBy(top, anchor));
}

function publicKeyFrom(pem: string, what: string): KeyObject {
  try {
    return createPublicKey(pem);
  } catch {
    throw new TypeError(`${what} is not a PEM public key or certificate`);
  }
}

function privateKeyFrom(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new TypeError(`${what} is not a PEM private key`);
  }
}

function keyType(key: KeyObject, allowed: string[], what: string): void {
  if (!allowed.includes(key.asymmetricKeyType ?? "")) {
    throw new TypeError(`${what} must be a ${allowed.join(" or ")} key, got ${key.asymmetricKeyType}`);
  }
}

function sign(algorithmArg: unknown, keyArg: unknown, dataArg: unknown): Uint8Array {
  const algorithm = object(algorithmArg, "sign: algorithm");
  const keyPem = text(keyArg, "sign: key");
  const data = bytes(dataArg, "sign: data");
  switch (algorithm.name) {
    case "EdDSA": {
      const key = privateKeyFrom(keyPem, "sign: key");
      keyType(key, ["ed25519", "ed448"], "sign: key");
      return new Uint8Array(signData(null, data, key));
    }
    case "ECDSA": {
      const key = privateKeyFrom(keyPem, "sign: key");
      keyType(key, ["ec"], "sign: key");
      // IEEE P1363 (r || s), the encoding WebCrypto and CCF use.
      const hash = hashName(algorithm.hash, "sign: algorithm.hash");
      return new Uint8Array(signData(hash, data, { key, dsaEncoding: "ieee-p1363" }));
    }
    case "RSA-PSS": {
      const key = privateKeyFrom(keyPem, "sign: key");
      keyType(key, ["rsa", "rsa-pss"], "sign: key");
      const hash = hashName(algorithm.hash, "sign: algorithm.hash");
      const saltLength = algorithm.saltLength ?? 0;
      if (typeof saltLength !== "number" || !Number.isInteger(saltLength) || saltLength < 0) {
        throw new TypeError("sign: algorithm.saltLength must be a non-negative integer");
      }
      return new Uint8Array(
        signData(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }),
      );
    }
    case "HMAC": {
      // The key string's bytes are the HMAC secret.
      const hash = hashName(algorithm.hash, "sign: algorithm.hash");
      return new Uint8Array(createHmac(hash, Buffer.from(keyPem, "utf8")).update(data).digest());
    }
    default:
      throw new RangeError("sign: algorithm.name must be one of RSA-PSS, ECDSA, EdDSA, HMAC");
  }
}

function verifySignature(
  algorithmArg: unknown,
  keyArg: unknown,
  signatureArg: unknown,
  dataArg: unknown,
): boolean {
  const algorithm = object(algorithmArg, "verifySignature: algorithm");
  const key = publicKeyFrom(text(keyArg, "verifySignature: key"), "verifySignature: key");
  const signature = bytes(signatureArg, "verifySignature: signature");
  const data = bytes(dataArg, "verifySignature: data");
  switch (algorithm.name) {
    case "EdDSA":
      keyType(key, ["ed25519", "ed448"], "verifySignature: key");
      return verifyData(null, data, key, signature);
    case "ECDSA": {
      keyType(key, ["ec"], "verifySignature: key");
      const hash = hashName(algorithm.hash, "verifySignature: algorithm.hash");
      return verifyData(hash, data, { key, dsaEncoding: "ieee-p1363" }, signature);
    }
    case "RSA-PSS": {
      keyType(key, ["rsa", "rsa-pss"], "verifySignature: key");
      const hash = hashName(algorithm.hash, "verifySignature: algorithm.hash");
      const saltLength =
        typeof algorithm.saltLength === "number" ? algorithm.saltLength : constants.RSA_PSS_SALTLEN_AUTO;
      return verifyData(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
    }
    default:
      throw new RangeError("verifySignature: algorithm.name must be one of RSA-PSS, ECDSA, EdDSA");
  }
}

function keyPair(
  type: "rsa" | "ec" | "ed25519" | "x25519",
  options: object,
): { privateKey: string; publicKey: string } {
  const pair = generateKeyPairSync(type as "rsa", {
    ...(options as { modulusLength: number }),
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKey: pair.privateKey, publicKey: pair.publicKey };
}

const EC_CURVES: Record<string, string> = { secp256r1: "prime256v1", secp384r1: "secp384r1" };

function aesWrapCipher(key: Uint8Array, what: string): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new RangeError(`${what} must be a 128, 192 or 256-bit AES key`);
  }
  return `id-aes${key.length * 8}-wrap-pad`;
}

// RFC 5649's alternative initial value, as OpenSSL's wrap-pad ciphers expect it.
const KWP_IV = Buffer.from("A65959A6", "hex");

function aesKwpWrap(wrappingKey: Uint8Array, key: Uint8Array): Uint8Array {
  const cipher = createCipheriv(aesWrapCipher(wrappingKey, "wrappingKey"), wrappingKey, KWP_IV);
  return new Uint8Array(Buffer.concat([cipher.update(key), cipher.final()]));
}

function aesKwpUnwrap(wrappingKey: Uint8Array, wrapped: Uint8Array): Uint8Array {
  const decipher = createDecipheriv(aesWrapCipher(wrappingKey, "unwrappingKey"), wrappingKey, KWP_IV);
  return new Uint8Array(Buffer.concat([decipher.update(wrapped), decipher.final()]));
}

function oaepLabel(params: Record<string, unknown>): Uint8Array | undefined {
  if (params.label === undefined || params.label === null) return undefined;
  const label = bytes(params.label, "wrapAlgo.label");
  return label.length === 0 ? undefined : label;
}

function rsaPublic(pemBytes: Uint8Array, what: string): KeyObject {
  const key = publicKeyFrom(Buffer.from(pemBytes).toString("utf8"), what);
  keyType(key, ["rsa"], what);
  return key;
}

function rsaPrivate(pemBytes: Uint8Array, what: string): KeyObject {
  const key = privateKeyFrom(Buffer.from(pemBytes).toString("utf8"), what);
  keyType(key, ["rsa"], what);
  return key;
}

function oaepEncrypt(key: KeyObject, data: Uint8Array, label: Uint8Array | undefined): Uint8Array {
  const options = { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: label };
  return new Uint8Array(publicEncrypt(options, data));
}

function oaepDecrypt(key: KeyObject, data: Uint8Array, label: Uint8Array | undefined): Uint8Array {
  const options = { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: label };
  return new Uint8Array(privateDecrypt(options, data));
}

function aesKeySize(params: Record<string, unknown>): number {
  const size = params.aesKeySize;
  if (size !== 128 && size !== 192 && size !== 256)
    throw new RangeError("wrapAlgo.aesKeySize must be 128, 192 or 256");
  return size;
}

/** `ccf.crypto.<name>(pem, kid)`: the PEM key of `kind` as a JWK of one of the `allowed` types. */
function pemToJwk(name: string, kind: "public" | "private", allowed: string[]) {
  return (pem: unknown, kid: unknown): JsonWebKey => {
    const what = `${name}: pem`;
    const key =
      kind === "public" ? publicKeyFrom(text(pem, what), what) : privateKeyFrom(text(pem, what), what);
    return toJwk(key, kid, allowed, name);
  };
}

function toJwk(key: KeyObject, kid: unknown, allowed: string[], what: string): JsonWebKey {
  keyType(key, allowed, what);
  const jwk = key.export({ format: "jwk" });
  if (kid !== undefined) jwk.kid = text(kid, `${what}: kid`);
  return jwk;
}

function fromJwk(jwkArg: unknown, kind: "public" | "private", allowed: string[], what: string): string {
  const jwk = object(jwkArg, what) as JsonWebKey;
  let key: KeyObject;
  try {
    key =
      kind === "public"
        ? createPublicKey({ key: jwk, format: "jwk" })
        : createPrivateKey({ key: jwk, format: "jwk" });
  } catch (error) {
    throw new TypeError(`${what} is not a valid JWK: ${(error as Error).message}`);
  }
  keyType(key, allowed, what);
  return key.export(
    kind === "public" ? { type: "spki", format: "pem" } : { type: "pkcs8", format: "pem" },
  ) as string;
}

const EC = ["ec"];
const RSA = ["rsa"];
const EDDSA = ["ed25519", "x25519"];

/** The `ccf.crypto.*` functions by name; `env` supplies time (chain validity) and AES keys. */
export function cryptoFunctions(env: JsEnv): Record<string, HostFunction> {
  return {
    sign,
    verifySignature,
    digest(algorithm, data) {
      return new Uint8Array(
        createHash(hashName(algorithm, "digest: algorithm")).update(bytes(data, "digest: data")).digest(),
      );
    },
    isValidX509CertBundle(pem) {
      return parseCertBundle(text(pem, "isValidX509CertBundle: pem")) !== undefined;
    },
    isValidX509CertChain(chain, trusted) {
      return isValidChain(
        text(chain, "isValidX509CertChain: chain"),
        text(trusted, "isValidX509CertChain: trusted"),
        env.now(),
      );
    },
    generateAesKey(size) {
      if (size !== 128 && size !== 192 && size !== 256) {
        throw new RangeError("generateAesKey: size must be 128, 192 or 256");
      }
      const key = env.randomBytes(size / 8);
      if (key.length !== size / 8)
        throw new Error("generateAesKey: the random source returned too few bytes");
      return key;
    },
    generateRsaKeyPair(size, exponent) {
      if (typeof size !== "number" || !Number.isInteger(size) || size < 2048 || size > 16384) {
        throw new RangeError("generateRsaKeyPair: size must be an integer from 2048 to 16384");
      }
      const publicExponent = exponent ?? 65537;
      if (typeof publicExponent !== "number" || !Number.isInteger(publicExponent) || publicExponent < 3) {
        throw new RangeError("generateRsaKeyPair: exponent must be an odd integer of at least 3");
      }
      return keyPair("rsa", { modulusLength: size, publicExponent });
    },
    generateEcdsaKeyPair(curve) {
      const namedCurve = typeof curve === "string" ? EC_CURVES[curve] : undefined;
      if (namedCurve === undefined)
        throw new RangeError("generateEcdsaKeyPair: curve must be secp256r1 or secp384r1");
      return keyPair("ec", { namedCurve });
    },
    generateEddsaKeyPair(curve) {
      if (curve === "curve25519") return keyPair("ed25519", {});
      if (curve === "x25519") return keyPair("x25519", {});
      throw new RangeError("generateEddsaKeyPair: curve must be curve25519 or x25519");
    },
    wrapKey(keyArg, wrappingKeyArg, paramsArg) {
      const key = bytes(keyArg, "wrapKey: key");
      const wrappingKey = bytes(wrappingKeyArg, "wrapKey: wrappingKey");
      const params = object(paramsArg, "wrapKey: wrapAlgo");
      switch (params.name) {
        case "RSA-OAEP":
          return oaepEncrypt(rsaPublic(wrappingKey, "wrapKey: wrappingKey"), key, oaepLabel(params));
        case "AES-KWP":
          return aesKwpWrap(wrappingKey, key);
        case "RSA-OAEP-AES-KWP": {
          // A fresh AES key wraps the payload; RSA-OAEP wraps the AES key; RSA part first.
          const size = aesKeySize(params);
          const temporary = env.randomBytes(size / 8);
          const rsaPart = oaepEncrypt(
            rsaPublic(wrappingKey, "wrapKey: wrappingKey"),
            temporary,
            oaepLabel(params),
          );
          return new Uint8Array(Buffer.concat([rsaPart, aesKwpWrap(temporary, key)]));
        }
        default:
          throw new RangeError("wrapKey: wrapAlgo.name must be one of RSA-OAEP, AES-KWP, RSA-OAEP-AES-KWP");
      }
    },
    unwrapKey(wrappedArg, unwrappingKeyArg, paramsArg) {
      const wrapped = bytes(wrappedArg, "unwrapKey: key");
      const unwrappingKey = bytes(unwrappingKeyArg, "unwrapKey: unwrappingKey");
      const params = object(paramsArg, "unwrapKey: wrapAlgo");
      switch (params.name) {
        case "RSA-OAEP":
          return oaepDecrypt(
            rsaPrivate(unwrappingKey, "unwrapKey: unwrappingKey"),
            wrapped,
            oaepLabel(params),
          );
        case "AES-KWP":
          return aesKwpUnwrap(unwrappingKey, wrapped);
        case "RSA-OAEP-AES-KWP": {
          const key = rsaPrivate(unwrappingKey, "unwrapKey: unwrappingKey");
          const modulusBytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
          if (wrapped.length <= modulusBytes) throw new RangeError("unwrapKey: wrapped key is too short");
          const temporary = oaepDecrypt(key, wrapped.subarray(0, modulusBytes), oaepLabel(params));
          return aesKwpUnwrap(temporary, wrapped.subarray(modulusBytes));
        }
        default:
          throw new RangeError("unwrapKey: wrapAlgo.name must be one of RSA-OAEP, AES-KWP, RSA-OAEP-AES-KWP");
      }
    },
    pubPemToJwk: pemToJwk("pubPemToJwk", "public", EC),
    pemToJwk: pemToJwk("pemToJwk", "private", EC),
    pubRsaPemToJwk: pemToJwk("pubRsaPemToJwk", "public", RSA),
    rsaPemToJwk: pemToJwk("rsaPemToJwk", "private", RSA),
    pubEddsaPemToJwk: pemToJwk("pubEddsaPemToJwk", "public", EDDSA),
    eddsaPemToJwk: pemToJwk("eddsaPemToJwk", "private", EDDSA),
    pubJwkToPem: (jwk) => fromJwk(jwk, "public", EC, "pubJwkToPem: jwk"),
    jwkToPem: (jwk) => fromJwk(jwk, "private", EC, "jwkToPem: jwk"),
    pubRsaJwkToPem: (jwk) => fromJwk(jwk, "public", RSA, "pubRsaJwkToPem: jwk"),
    rsaJwkToPem: (jwk) => fromJwk(jwk, "private", RSA, "rsaJwkToPem: jwk"),
    pubEddsaJwkToPem: (jwk) => fromJwk(jwk, "public", EDDSA, "pubEddsaJwkToPem: jwk"),
    eddsaJwkToPem: (jwk) => fromJwk(jwk, "private", EDDSA, "eddsaJwkToPem: jwk"),
  };
}
