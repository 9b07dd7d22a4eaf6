/**
 * Just enough DER to check a receipt in the browser: a certificate's signed part, its signature
 * algorithm and value, its issuer and subject names and its public key (SubjectPublicKeyInfo).
 * WebCrypto does the cryptography; this only finds the bytes.
 */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  end: number;
}

export class DerError extends Error {}

export function readTlv(bytes: Uint8Array, pos: number): Tlv {
  if (pos + 2 > bytes.length) throw new DerError("truncated DER");
  const tag = bytes[pos]!;
  let length = bytes[pos + 1]!;
  let body = pos + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || body + n > bytes.length) throw new DerError("bad DER length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[body + i]!;
    body += n;
  }
  const end = body + length;
  if (end > bytes.length) throw new DerError("DER element runs past the end");
  return { tag, start: pos, body, end };
}

export function children(bytes: Uint8Array, tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = tlv.body; pos < tlv.end; ) {
    const child = readTlv(bytes, pos);
    out.push(child);
    pos = child.end;
  }
  return out;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Bytes backed by a plain ArrayBuffer, as WebCrypto takes them. */
export type Bytes = Uint8Array<ArrayBuffer>;

export interface ParsedCert {
  der: Bytes;
  tbs: Bytes;
  /** OID of the signature algorithm, as hex of its DER contents. */
  signatureAlgorithm: string;
  signature: Bytes;
  issuer: string;
  subject: string;
  spki: Bytes;
  /** OID of the key's curve, as hex. */
  curve: string;
}

export function pemToDer(pem: string): Bytes {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function parseCertificate(pem: string): ParsedCert {
  const der = pemToDer(pem);
  const cert = readTlv(der, 0);
  const [tbs, algorithm, value] = children(der, cert);
  if (!tbs || !algorithm || !value) throw new DerError("not an X.509 certificate");
  const fields = children(der, tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = fields[offset + 2];
  const subject = fields[offset + 4];
  const spki = fields[offset + 5];
  if (!issuer || !subject || !spki) throw new DerError("certificate is missing its names or key");
  const oid = children(der, algorithm)[0]!;
  const keyAlgorithm = children(der, children(der, spki)[0]!);
  const curve = keyAlgorithm[1];
  return {
    der,
    tbs: der.slice(tbs.start, tbs.end),
    signatureAlgorithm: hex(der.slice(oid.body, oid.end)),
    // A BIT STRING: the first content byte counts unused bits (0 here).
    signature: der.slice(value.body + 1, value.end),
    issuer: hex(der.slice(issuer.start, issuer.end)),
    subject: hex(der.slice(subject.start, subject.end)),
    spki: der.slice(spki.start, spki.end),
    curve: curve ? hex(der.slice(curve.body, curve.end)) : "",
  };
}

/** DER ECDSA signature (SEQUENCE of r, s) to the fixed-size r || s WebCrypto wants. */
export function derSignatureToRaw(sig: Uint8Array, size: number): Bytes {
  const seq = readTlv(sig, 0);
  const parts = children(sig, seq);
  if (parts.length !== 2) throw new DerError("not an ECDSA signature");
  const out = new Uint8Array(size * 2);
  parts.forEach((p, i) => {
    let v = sig.slice(p.body, p.end);
    while (v.length > size && v[0] === 0) v = v.slice(1);
    if (v.length > size) throw new DerError("ECDSA signature component too long");
    out.set(v, i * size + (size - v.length));
  });
  return out;
}
