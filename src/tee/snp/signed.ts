import { constants, type KeyObject, verify } from "node:crypto";
import { children, content, decodeInteger, decodeOid, type Tlv } from "./der.ts";
import { SnpError } from "./errors.ts";

const HASHES: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const RSA_PKCS1: Record<string, string> = {
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};
const ECDSA: Record<string, string> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
};
const RSASSA_PSS = "1.2.840.113549.1.1.10";
const MGF1 = "1.2.840.113549.1.1.8";

function hashOf(algId: Tlv | undefined, where: string): string {
  const [oid] = algId ? children(algId, where) : [];
  const name = oid ? HASHES[decodeOid(oid, where)] : undefined;
  if (!name) throw new SnpError("bad-der", `${where}: unsupported hash algorithm`);
  return name;
}

/** Parameters of RSASSA-PSS (RFC 4055), with its defaults: SHA-1, MGF1-SHA-1, salt 20. */
function pssParams(params: Tlv | undefined, where: string): { hash: string; saltLength: number } {
  let hash = "sha1";
  let mgfHash = "sha1";
  let saltLength = 20;
  for (const field of params ? children(params, where) : []) {
    const [inner] = children(field, where);
    if (!inner) continue;
    if (field.tag === 0xa0) hash = hashOf(inner, where);
    else if (field.tag === 0xa1) {
      const [mgf, mgfParams] = children(inner, where);
      if (!mgf || decodeOid(mgf, where) !== MGF1)
        throw new SnpError("bad-der", `${where}: mask generation is not MGF1`);
      mgfHash = hashOf(mgfParams, where);
    } else if (field.tag === 0xa2) saltLength = Number(decodeInteger(inner, where));
  }
  if (mgfHash !== hash) throw new SnpError("bad-der", `${where}: MGF1 hash ${mgfHash} differs from ${hash}`);
  return { hash, saltLength };
}

/**
 * Verifies `signature` over `tbs` as the AlgorithmIdentifier `algId` says, under `key`. Used for
 * CRLs, which Node cannot verify itself; the algorithms are the ones AMD and X.509 use.
 */
export function verifySigned(
  tbs: Uint8Array,
  algId: Tlv,
  signature: Uint8Array,
  key: KeyObject,
  where: string,
): boolean {
  const [oidTlv, params] = children(algId, where);
  if (!oidTlv) throw new SnpError("bad-der", `${where}: empty signature algorithm`);
  const oid = decodeOid(oidTlv, where);
  if (oid === RSASSA_PSS) {
    const { hash, saltLength } = pssParams(params, where);
    return verify(hash, tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
  }
  const rsa = RSA_PKCS1[oid];
  if (rsa) return verify(rsa, tbs, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  const ec = ECDSA[oid];
  if (ec) return verify(ec, tbs, key, signature);
  throw new SnpError("bad-der", `${where}: unsupported signature algorithm ${oid}`);
}

/** The bytes of a BIT STRING with no unused bits (how signatures are carried). */
export function bitStringBytes(tlv: Tlv, where: string): Uint8Array {
  const bytes = content(tlv);
  if (tlv.tag !== 0x03 || bytes[0] !== 0)
    throw new SnpError("bad-der", `${where}: signature is not a whole-byte BIT STRING`);
  return bytes.subarray(1);
}
