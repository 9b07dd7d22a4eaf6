import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
  X509Certificate,
} from "node:crypto";
import { Decoder, Encoder, Tag } from "cbor-x";

/**
 * A small, strict COSE_Sign1 (RFC 9052 section 4.2) with ECDSA (RFC 9053 section 2.1):
 * ES256, ES384 and ES512, signatures in COSE's raw r || s form.
 *
 * Strict means: the message must be tagged 18, every CBOR item well-formed, definite-length,
 * shortest-form and free of duplicate map keys (so two parsers cannot read different headers out
 * of the same bytes), labels are integers or text, no label is both protected and unprotected,
 * and `alg` must be protected.
 */

export type CoseHeader = Map<number | string, unknown>;

export class CoseError extends Error {
  override name = "CoseError";
}

/** Header labels used here (RFC 9052 section 3.1). */
export const COSE_HEADER_ALG = 1;
export const COSE_HEADER_CRIT = 2;
export const COSE_HEADER_KID = 4;
const COSE_SIGN1_TAG = 18;

interface EcAlgorithm {
  name: string;
  hash: string;
  curve: string;
  /** Bytes in each of r and s. */
  scalarSize: number;
}

const ALGORITHMS = new Map<number, EcAlgorithm>([
  [-7, { name: "ES256", hash: "sha256", curve: "prime256v1", scalarSize: 32 }],
  [-35, { name: "ES384", hash: "sha384", curve: "secp384r1", scalarSize: 48 }],
  [-36, { name: "ES512", hash: "sha512", curve: "secp521r1", scalarSize: 66 }],
]);

/** The COSE algorithm that signs with this EC key, or undefined for other keys and curves. */
export function coseAlgForKey(key: KeyObject): number | undefined {
  if (key.asymmetricKeyType !== "ec") return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  for (const [alg, spec] of ALGORITHMS) if (spec.curve === curve) return alg;
  return undefined;
}

// Maps stay Maps (integer labels), byte strings stay plain bstr (no tag 64), no cbor-x extensions.
const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  variableMapSize: true,
  useTag259ForMaps: false,
} as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false, copyBuffers: true });

const MAX_DEPTH = 16;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Walks one CBOR item (RFC 8949) without building it and throws unless the whole input is exactly
 * one well-formed item that is definite-length, shortest-form in every length and integer, holds
 * valid UTF-8 text, has no duplicate map keys, no simple values other than false/true/null/
 * undefined, and no tags except `allowTag` on the outermost item. cbor-x alone would accept
 * duplicate keys (last wins) and quietly turn tags into Dates and other objects.
 */
function checkStrictCbor(bytes: Uint8Array, allowTag: number | undefined): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;

  const need = (n: number): void => {
    if (bytes.length - pos < n) throw new Error(`truncated at byte ${pos}`);
  };
  const readArgument = (info: number, at: number): number => {
    if (info < 24) return info;
    let value: number;
    let min: number;
    if (info === 24) {
      need(1);
      value = view.getUint8(pos);
      min = 24;
      pos += 1;
    } else if (info === 25) {
      need(2);
      value = view.getUint16(pos);
      min = 0x100;
      pos += 2;
    } else if (info === 26) {
      need(4);
      value = view.getUint32(pos);
      min = 0x10000;
      pos += 4;
    } else if (info === 27) {
      need(8);
      const big = view.getBigUint64(pos);
      if (big < 0x100000000n) throw new Error(`non-shortest integer encoding at byte ${at}`);
      pos += 8;
      // Only integers may be this large; a length this large cannot fit in the input anyway.
      return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    } else if (info === 31) {
      throw new Error(`indefinite-length item at byte ${at}`);
    } else {
      throw new Error(`reserved additional information ${info} at byte ${at}`);
    }
    if (value < min) throw new Error(`non-shortest integer encoding at byte ${at}`);
    return value;
  };

  const item = (depth: number): void => {
    if (depth > MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels at byte ${pos}`);
    const at = pos;
    need(1);
    const initial = view.getUint8(pos);
    pos += 1;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) {
      if (info >= 20 && info <= 23) return; // false, true, null, undefined
      if (info >= 25 && info <= 27) {
        const size = 2 ** (info - 24);
        need(size);
        pos += size;
        return;
      }
      throw new Error(`unsupported simple value at byte ${at}`);
    }
    const argument = readArgument(info, at);
    switch (major) {
      case 0:
      case 1:
        return;
      case 2:
      case 3: {
        need(argument);
        if (major === 3) {
          try {
            utf8.decode(bytes.subarray(pos, pos + argument));
          } catch {
            throw new Error(`invalid UTF-8 in text string at byte ${at}`);
          }
        }
        pos += argument;
        return;
      }
      case 4:
        need(argument); // each item takes at least one byte
        for (let i = 0; i < argument; i++) item(depth + 1);
        return;
      case 5: {
        need(2 * argument);
        const keys = new Set<string>();
        for (let i = 0; i < argument; i++) {
          const keyStart = pos;
          item(depth + 1);
          const key = Buffer.from(bytes.subarray(keyStart, pos)).toString("hex");
          if (keys.has(key)) throw new Error(`duplicate map key at byte ${keyStart}`);
          keys.add(key);
          item(depth + 1);
        }
        return;
      }
      default: // 6: tag
        if (depth !== 0 || argument !== allowTag) throw new Error(`unexpected tag ${argument} at byte ${at}`);
        item(depth + 1);
    }
  };

  item(0);
  if (pos !== bytes.length) throw new Error(`${bytes.length - pos} trailing bytes after the CBOR item`);
}

/** CBOR encoding as COSE needs it: shortest forms, Maps as CBOR maps, bytes as plain bstr. */
export function coseCborEncode(value: unknown): Uint8Array {
  // cbor-x hands back a view into its shared scratch buffer: copy it out so the result stands alone.
  return new Uint8Array(encoder.encode(value));
}

/**
 * Decodes one strict CBOR item; `what` names it in errors. `allowTag` admits that one tag, and only
 * on the outermost item.
 */
export function coseCborDecode(bytes: Uint8Array, what: string, allowTag?: number): unknown {
  try {
    checkStrictCbor(bytes, allowTag);
  } catch (err) {
    throw new CoseError(`${what}: ${(err as Error).message}`);
  }
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new CoseError(`${what}: ${(err as Error).message}`);
  }
}

export interface CoseSign1Parts {
  protectedHeader: CoseHeader;
  /** The protected header exactly as it was encoded: what the signature covers. */
  protectedBytes: Uint8Array;
  unprotectedHeader: CoseHeader;
  payload: Uint8Array | null;
  signature: Uint8Array;
}

function isLabel(value: unknown): value is number | string {
  return typeof value === "string" || (typeof value === "number" && Number.isSafeInteger(value));
}

function checkHeader(value: unknown, where: string): CoseHeader {
  if (!(value instanceof Map)) throw new CoseError(`${where} must be a CBOR map`);
  for (const label of value.keys()) {
    if (!isLabel(label)) throw new CoseError(`${where} has a label that is neither an integer nor text`);
  }
  return value as CoseHeader;
}

function decodeProtected(bytes: Uint8Array): CoseHeader {
  // RFC 9052 section 3: no protected parameters is a zero-length bstr, never an encoded empty map.
  if (bytes.length === 0) return new Map();
  const header = checkHeader(coseCborDecode(bytes, "protected header"), "protected header");
  if (header.size === 0) {
    throw new CoseError("protected header: an empty map must be sent as a zero-length byte string");
  }
  return header;
}

function checkCrit(protectedHeader: CoseHeader, unprotectedHeader: CoseHeader): void {
  if (unprotectedHeader.has(COSE_HEADER_CRIT)) throw new CoseError("crit (label 2) must be protected");
  if (!protectedHeader.has(COSE_HEADER_CRIT)) return;
  const crit = protectedHeader.get(COSE_HEADER_CRIT);
  if (!Array.isArray(crit) || crit.length === 0 || !crit.every(isLabel)) {
    throw new CoseError("crit (label 2) must be a non-empty array of labels");
  }
  for (const label of crit) {
    if (!protectedHeader.has(label)) throw new CoseError(`crit names label ${label}, which is not protected`);
  }
}

export function coseDecodeSign1(bytes: Uint8Array): CoseSign1Parts {
  if (!(bytes instanceof Uint8Array)) throw new CoseError("COSE_Sign1 input must be bytes");
  const top = coseCborDecode(bytes, "COSE_Sign1", COSE_SIGN1_TAG);
  if (!(top instanceof Tag) || top.tag !== COSE_SIGN1_TAG) {
    throw new CoseError("COSE_Sign1 must be a CBOR array tagged 18");
  }
  const body: unknown = top.value;
  if (!Array.isArray(body) || body.length !== 4) {
    throw new CoseError(
      "COSE_Sign1 must be an array of 4 items [protected, unprotected, payload, signature]",
    );
  }
  const [protectedBytes, unprotected, payload, signature] = body as unknown[];
  if (!(protectedBytes instanceof Uint8Array))
    throw new CoseError("COSE_Sign1 protected header must be a bstr");
  if (!(payload === null || payload instanceof Uint8Array)) {
    throw new CoseError("COSE_Sign1 payload must be a bstr or nil");
  }
  if (!(signature instanceof Uint8Array)) throw new CoseError("COSE_Sign1 signature must be a bstr");
  const protectedHeader = decodeProtected(protectedBytes);
  const unprotectedHeader = checkHeader(unprotected, "unprotected header");
  for (const label of unprotectedHeader.keys()) {
    if (protectedHeader.has(label)) {
      throw new CoseError(`header label ${label} appears in both the protected and unprotected headers`);
    }
  }
  checkCrit(protectedHeader, unprotectedHeader);
  if (unprotectedHeader.has(COSE_HEADER_ALG)) throw new CoseError("alg (label 1) must be protected");
  return { protectedHeader, protectedBytes, unprotectedHeader, payload, signature };
}

/** Assembles tagged COSE_Sign1 bytes from parts; the signature is taken as given. */
export function coseEncodeSign1(parts: {
  protectedBytes: Uint8Array;
  unprotectedHeader?: CoseHeader;
  payload: Uint8Array | null;
  signature: Uint8Array;
}): Uint8Array {
  const unprotected = parts.unprotectedHeader ?? new Map();
  checkHeader(unprotected, "unprotected header");
  return coseCborEncode(
    new Tag([parts.protectedBytes, unprotected, parts.payload, parts.signature], COSE_SIGN1_TAG),
  );
}

/** The bytes a COSE_Sign1 signature covers (RFC 9052 section 4.4), with no external AAD. */
function toBeSigned(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return coseCborEncode(["Signature1", protectedBytes, new Uint8Array(0), payload]);
}

function algorithmOf(header: CoseHeader): EcAlgorithm {
  const alg = header.get(COSE_HEADER_ALG);
  if (alg === undefined) throw new CoseError("protected header must carry alg (label 1)");
  const spec = typeof alg === "number" ? ALGORITHMS.get(alg) : undefined;
  if (spec === undefined) {
    throw new CoseError(`unsupported alg ${String(alg)}: expected ES256 (-7), ES384 (-35) or ES512 (-36)`);
  }
  return spec;
}

function choosePayload(embedded: Uint8Array | null, detached: Uint8Array | undefined): Uint8Array {
  if (embedded === null) {
    if (!(detached instanceof Uint8Array)) throw new CoseError("the payload is detached but none was given");
    return detached;
  }
  if (detached !== undefined) throw new CoseError("a detached payload was given but the payload is embedded");
  return embedded;
}

export function coseSign1(opts: {
  protectedHeader: CoseHeader;
  unprotectedHeader?: CoseHeader;
  /** null: detached, then detachedPayload is what gets signed. */
  payload: Uint8Array | null;
  detachedPayload?: Uint8Array;
  /** PEM, or an already parsed private key. */
  privateKeyPem: string | KeyObject;
}): Uint8Array {
  const protectedHeader = checkHeader(opts.protectedHeader, "protected header");
  const spec = algorithmOf(protectedHeader);
  let key: KeyObject;
  try {
    key = typeof opts.privateKeyPem === "string" ? createPrivateKey(opts.privateKeyPem) : opts.privateKeyPem;
  } catch (err) {
    throw new CoseError(`signing key is not a PEM private key: ${(err as Error).message}`);
  }
  const keyAlg = coseAlgForKey(key);
  if (keyAlg === undefined || ALGORITHMS.get(keyAlg) !== spec) {
    throw new CoseError(`${spec.name} needs an EC key on ${spec.curve}, got a different key`);
  }
  const payload = choosePayload(opts.payload, opts.detachedPayload);
  const protectedBytes = coseCborEncode(protectedHeader);
  const signature = sign(spec.hash, toBeSigned(protectedBytes, payload), { key, dsaEncoding: "ieee-p1363" });
  const parts = { protectedBytes, payload: opts.payload, signature };
  return coseEncodeSign1(
    opts.unprotectedHeader ? { ...parts, unprotectedHeader: opts.unprotectedHeader } : parts,
  );
}

/** A public key from a PEM public key, certificate or private key. */
function publicKeyFromPem(pem: string): KeyObject {
  try {
    if (pem.includes("-----BEGIN CERTIFICATE-----")) return new X509Certificate(pem).publicKey;
    return createPublicKey(pem);
  } catch (err) {
    throw new CoseError(`not a PEM public key or certificate: ${(err as Error).message}`);
  }
}

/**
 * True when the signature is valid for this key. Throws CoseError when the message is malformed
 * or cannot be checked (no or unknown alg, payload missing); false for any other mismatch.
 */
export function coseVerifySign1(
  bytes: Uint8Array,
  publicKeyPemOrCertPem: string,
  detachedPayload?: Uint8Array,
): boolean {
  const message = coseDecodeSign1(bytes);
  const spec = algorithmOf(message.protectedHeader);
  const payload = choosePayload(message.payload, detachedPayload);
  const key = publicKeyFromPem(publicKeyPemOrCertPem);
  const keyAlg = coseAlgForKey(key);
  if (keyAlg === undefined || ALGORITHMS.get(keyAlg) !== spec) return false;
  if (message.signature.length !== 2 * spec.scalarSize) return false;
  return verify(
    spec.hash,
    toBeSigned(message.protectedBytes, payload),
    { key, dsaEncoding: "ieee-p1363" },
    message.signature,
  );
}
