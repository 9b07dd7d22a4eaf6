import type { SnpCert } from "./certs.ts";
import { children, decodeTime, encoded, expectTag, readWhole, serialHex, TAG } from "./der.ts";
import { SnpError } from "./errors.ts";
import { bitStringBytes, verifySigned } from "./signed.ts";

/** A certificate revocation list, as AMD publishes one per product at /vcek/v1/{product}/crl. */
export interface SnpCrl {
  /** The issuer Name, DER. */
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serial numbers: lower-case hex without leading zeros. */
  revoked: Set<string>;
  /** The whole CRL, DER. */
  der: Uint8Array;
}

/** Accepts DER bytes or PEM text. */
export function crlBytes(crl: string | Uint8Array): Uint8Array {
  if (crl instanceof Uint8Array) return crl;
  if (typeof crl !== "string") throw new SnpError("bad-crl", "a CRL must be PEM text or DER bytes");
  // RFC 7468 names the block "X509 CRL"; some tools write "CRL".
  const match = /-----BEGIN (X509 CRL|CRL)-----([\s\S]*?)-----END \1-----/.exec(crl);
  if (!match) throw new SnpError("bad-crl", "the CRL text holds no X509 CRL PEM block");
  const body = (match[2] ?? "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body))
    throw new SnpError("bad-crl", "the CRL PEM block is not valid base64");
  return new Uint8Array(Buffer.from(body, "base64"));
}

interface ParsedCrl extends SnpCrl {
  tbs: Uint8Array;
  algId: ReturnType<typeof expectTag>;
  signature: Uint8Array;
}

export function parseCrl(input: string | Uint8Array): ParsedCrl {
  const der = crlBytes(input);
  const where = "CRL";
  try {
    const list = readWhole(der, TAG.SEQUENCE, where);
    const [tbs, algId, sig] = children(list, where);
    if (!tbs || !algId || !sig)
      throw new SnpError("bad-crl", "CRL: expected tbsCertList, algorithm and signature");
    const fields = children(expectTag(tbs, TAG.SEQUENCE, where), where);
    let i = fields[0]?.tag === TAG.INTEGER ? 1 : 0; // optional version
    i += 1; // inner signature algorithm
    const issuer = fields[i++];
    const thisUpdate = fields[i++];
    if (!issuer || !thisUpdate) throw new SnpError("bad-crl", "CRL: missing issuer or thisUpdate");
    const crl: ParsedCrl = {
      issuerDer: encoded(issuer),
      thisUpdate: decodeTime(thisUpdate, where),
      revoked: new Set(),
      der,
      tbs: encoded(tbs),
      algId: expectTag(algId, TAG.SEQUENCE, where),
      signature: bitStringBytes(sig, where),
    };
    const next = fields[i];
    if (next && (next.tag === TAG.UTC_TIME || next.tag === TAG.GENERALIZED_TIME)) {
      crl.nextUpdate = decodeTime(next, where);
      i++;
    }
    const revoked = fields[i];
    if (revoked && revoked.tag === TAG.SEQUENCE) {
      for (const entry of children(revoked, where)) {
        const [serial] = children(expectTag(entry, TAG.SEQUENCE, where), where);
        if (!serial) throw new SnpError("bad-crl", "CRL: revoked entry without a serial");
        crl.revoked.add(serialHex(serial, where));
      }
    }
    return crl;
  } catch (e) {
    if (e instanceof SnpError && e.code === "bad-der") throw new SnpError("bad-crl", e.message);
    throw e;
  }
}

/** Outcome of checking a CRL against its issuer (the ARK) and the certificates below it. */
export function checkCrl(
  input: string | Uint8Array,
  ark: SnpCert,
  certs: SnpCert[],
  now: number | undefined,
): { ok: boolean; detail: string } {
  let crl: ParsedCrl;
  try {
    crl = parseCrl(input);
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
  if (Buffer.compare(Buffer.from(crl.issuerDer), Buffer.from(ark.subjectDer)) !== 0) {
    return { ok: false, detail: `the CRL is not issued by ${ark.subjectCn}` };
  }
  let signed: boolean;
  try {
    signed = verifySigned(crl.tbs, crl.algId, crl.signature, ark.publicKey, "CRL");
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
  if (!signed) return { ok: false, detail: `the CRL's signature does not verify under ${ark.subjectCn}` };
  if (now !== undefined && crl.nextUpdate && crl.nextUpdate.getTime() < now) {
    return { ok: false, detail: `the CRL is stale: its next update was due ${crl.nextUpdate.toISOString()}` };
  }
  for (const cert of certs) {
    if (crl.revoked.has(cert.serial)) {
      return { ok: false, detail: `${cert.subjectCn} (serial ${cert.serial}) is revoked` };
    }
  }
  return {
    ok: true,
    detail: `signed by ${ark.subjectCn}, ${crl.revoked.size} revoked serial(s), none of ${certs.map((c) => c.subjectCn).join(", ")}`,
  };
}
