import { createHash, type KeyObject, X509Certificate } from "node:crypto";
import {
  children,
  content,
  decodeInteger,
  decodeOid,
  expectTag,
  readTlv,
  readWhole,
  TAG,
  type Tlv,
} from "./der.ts";
import { SnpError } from "./errors.ts";
import { SNP_PRODUCTS, type SnpProduct } from "./report.ts";

/** A certificate as the SNP checks need it: Node's view plus the raw parts Node does not expose. */
export interface SnpCert {
  pem: string;
  der: Uint8Array;
  x509: X509Certificate;
  subjectCn: string;
  issuerCn: string;
  /** SHA-256 of the DER, lower-case hex: how roots are compared. */
  fingerprint: string;
  /** Serial magnitude, lower-case hex without leading zeros. */
  serial: string;
  keyType: "ec" | "rsa" | "other";
  publicKey: KeyObject;
  /** The DER of the subject Name (compared with a CRL's issuer). */
  subjectDer: Uint8Array;
  /** Extension OID -> extnValue contents (the bytes inside the OCTET STRING). */
  extensions: Map<string, Uint8Array>;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const MAX_PEM = 1 << 20;

/** Every CERTIFICATE block in `pem`, in order. Other PEM blocks are refused. */
export function splitPem(pem: string, where: string): Uint8Array[] {
  if (typeof pem !== "string") throw new SnpError("bad-certificate", `${where} must be PEM text`);
  if (pem.length > MAX_PEM)
    throw new SnpError("bad-certificate", `${where} is larger than ${MAX_PEM} characters`);
  const out: Uint8Array[] = [];
  for (const [, label, body = ""] of pem.matchAll(PEM_BLOCK)) {
    if (label !== "CERTIFICATE") {
      throw new SnpError("bad-certificate", `${where} holds a ${label} block; only certificates belong here`);
    }
    const clean = body.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
      throw new SnpError("bad-certificate", `${where}: certificate ${out.length + 1} is not valid base64`);
    }
    out.push(new Uint8Array(Buffer.from(clean, "base64")));
  }
  return out;
}

export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}

function commonName(name: string): string {
  // Node prints one attribute per line, e.g. "O=Advanced Micro Devices\nCN=ARK-Milan".
  const line = name.split("\n").find((l) => l.startsWith("CN="));
  return line ? line.slice(3) : "";
}

/** Reads the TBSCertificate far enough to return the subject Name and the extensions. */
function tbsParts(
  der: Uint8Array,
  where: string,
): { subjectDer: Uint8Array; extensions: Map<string, Uint8Array> } {
  const cert = readWhole(der, TAG.SEQUENCE, where);
  const [tbs] = children(cert, where);
  if (!tbs) throw new SnpError("bad-der", `${where}: empty certificate`);
  const fields = children(expectTag(tbs, TAG.SEQUENCE, where), where);
  // [0] version is optional; then serial, signature, issuer, validity, subject, spki.
  let i = fields[0]?.tag === 0xa0 ? 1 : 0;
  i += 4;
  const subject = fields[i];
  if (!subject) throw new SnpError("bad-der", `${where}: certificate has no subject`);
  const extensions = new Map<string, Uint8Array>();
  for (const field of fields.slice(i + 2)) {
    if (field.tag !== 0xa3) continue;
    const [list] = children(field, where);
    if (!list) continue;
    for (const ext of children(expectTag(list, TAG.SEQUENCE, where), where)) {
      const parts = children(expectTag(ext, TAG.SEQUENCE, where), where);
      const oid = decodeOid(parts[0] as Tlv, where);
      const value = parts[parts.length - 1];
      if (!value || value.tag !== TAG.OCTET_STRING) {
        throw new SnpError("bad-der", `${where}: extension ${oid} has no value`);
      }
      if (extensions.has(oid)) throw new SnpError("bad-der", `${where}: extension ${oid} appears twice`);
      extensions.set(oid, content(value));
    }
  }
  return { subjectDer: subject.buf.subarray(subject.offset, subject.end), extensions };
}

export function loadCert(der: Uint8Array, where: string): SnpCert {
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = new X509Certificate(der);
    // Node parses the key lazily: a certificate can be readable while its key is not.
    publicKey = x509.publicKey;
  } catch (e) {
    throw new SnpError(
      "bad-certificate",
      `${where} is not a readable X.509 certificate: ${(e as Error).message}`,
    );
  }
  const { subjectDer, extensions } = tbsParts(der, where);
  const keyType = publicKey.asymmetricKeyType;
  return {
    pem: derToPem(der),
    der,
    x509,
    subjectCn: commonName(x509.subject),
    issuerCn: commonName(x509.issuer),
    fingerprint: createHash("sha256").update(der).digest("hex"),
    serial: x509.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""),
    keyType: keyType === "ec" ? "ec" : keyType === "rsa" || keyType === "rsa-pss" ? "rsa" : "other",
    publicKey,
    subjectDer,
    extensions,
  };
}

/** The one certificate in a PEM text (first one if several). */
export function loadPemCert(pem: string, where: string): SnpCert {
  const [der] = splitPem(pem, where);
  if (!der) throw new SnpError("bad-certificate", `${where} holds no certificate`);
  return loadCert(der, where);
}

/** The product an AMD CA's common name names: "ARK-Milan", "SEV-Genoa", "SEV-VLEK-Turin". */
export function productFromCn(cn: string): SnpProduct | undefined {
  const match = /^(?:ARK|SEV|SEV-VLEK)-([A-Za-z]+)$/.exec(cn);
  return SNP_PRODUCTS.find((p) => p === match?.[1]);
}

// AMD's VCEK/VLEK extensions (AMD's "VCEK Certificate and KDS Interface Specification").
export const AMD_OID = {
  structVersion: "1.3.6.1.4.1.3704.1.1",
  productName: "1.3.6.1.4.1.3704.1.2",
  blSPL: "1.3.6.1.4.1.3704.1.3.1",
  teeSPL: "1.3.6.1.4.1.3704.1.3.2",
  snpSPL: "1.3.6.1.4.1.3704.1.3.3",
  ucodeSPL: "1.3.6.1.4.1.3704.1.3.8",
  fmcSPL: "1.3.6.1.4.1.3704.1.3.9",
  hwID: "1.3.6.1.4.1.3704.1.4",
  cspID: "1.3.6.1.4.1.3704.1.5",
} as const;

export interface AmdTcbExtensions {
  blSPL?: number;
  teeSPL?: number;
  snpSPL?: number;
  ucodeSPL?: number;
  fmcSPL?: number;
  /** Hex of the hardware ID (64 bytes for Milan/Genoa, 8 for Turin); absent on a VLEK. */
  hwID?: string;
  productName?: string;
  cspID?: string;
}

function splInteger(value: Uint8Array, name: string): number {
  const n = decodeInteger(readWhole(value, TAG.INTEGER, `VCEK extension ${name}`), `VCEK extension ${name}`);
  if (n < 0n || n > 255n) throw new SnpError("bad-certificate", `VCEK extension ${name} is ${n}, not a byte`);
  return Number(n);
}

function text(value: Uint8Array): string {
  const tlv = readTlv(value);
  return Buffer.from(content(tlv)).toString("utf8");
}

/** Reads the AMD TCB extensions of a VCEK or VLEK. */
export function amdExtensions(cert: SnpCert): AmdTcbExtensions {
  const out: AmdTcbExtensions = {};
  const e = cert.extensions;
  for (const name of ["blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL"] as const) {
    const value = e.get(AMD_OID[name]);
    if (value) out[name] = splInteger(value, name);
  }
  const hw = e.get(AMD_OID.hwID);
  if (hw) {
    // Older VCEKs carry the 64 raw bytes; newer ones wrap them in a DER OCTET STRING.
    if (hw.length === 64) out.hwID = Buffer.from(hw).toString("hex");
    else {
      const tlv = readWhole(hw, TAG.OCTET_STRING, "VCEK extension hwID");
      out.hwID = Buffer.from(content(tlv)).toString("hex");
    }
  }
  const product = e.get(AMD_OID.productName);
  if (product) out.productName = text(product);
  const csp = e.get(AMD_OID.cspID);
  if (csp) out.cspID = text(csp);
  return out;
}
