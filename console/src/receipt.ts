import { type Bytes, DerError, derSignatureToRaw, type ParsedCert, parseCertificate } from "./der.ts";

/** A JSON receipt as nodes serve it (docs/receipts.md). */
export interface JsonReceipt {
  cert: string;
  node_id: string;
  signature: string;
  proof: Array<{ left?: string; right?: string }>;
  leaf_components: { write_set_digest: string; commit_evidence: string; claims_digest: string };
  service_endorsements?: string[];
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface PathStep {
  side: "left" | "right";
  sibling: string;
  /** The hash after combining with this sibling. */
  result: string;
}

export interface Verification {
  ok: boolean;
  checks: Check[];
  leaf?: string;
  root?: string;
  steps: PathStep[];
}

const CURVES: Record<string, { name: string; size: number }> = {
  "2a8648ce3d030107": { name: "P-256", size: 32 },
  "2b81040022": { name: "P-384", size: 48 },
  "2b81040023": { name: "P-521", size: 66 },
};
const SIGNATURE_HASHES: Record<string, string> = {
  "2a8648ce3d040302": "SHA-256",
  "2a8648ce3d040303": "SHA-384",
  "2a8648ce3d040304": "SHA-512",
};
/** Receipt signatures use the hash that matches the node key's curve. */
const CURVE_HASH: Record<string, string> = { "P-256": "SHA-256", "P-384": "SHA-384", "P-521": "SHA-512" };

const toHex = (b: ArrayBuffer | Uint8Array) =>
  Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

function fromHex(text: string, what: string): Bytes {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${what} is not 64 hex digits`);
  return Uint8Array.from(text.match(/../g)!, (h) => Number.parseInt(h, 16));
}

async function sha256(...parts: Uint8Array[]): Promise<Bytes> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

async function verifyEcdsa(
  key: ParsedCert,
  hash: string,
  signatureDer: Uint8Array,
  data: Bytes,
): Promise<boolean> {
  const curve = CURVES[key.curve];
  if (!curve) throw new Error("the key is not on a supported curve (P-256, P-384, P-521)");
  const publicKey = await crypto.subtle.importKey(
    "spki",
    key.spki,
    { name: "ECDSA", namedCurve: curve.name },
    false,
    ["verify"],
  );
  return crypto.subtle.verify(
    { name: "ECDSA", hash },
    publicKey,
    derSignatureToRaw(signatureDer, curve.size),
    data,
  );
}

/** Whether `issuer` signed `cert`: names match and the signature over the signed part verifies. */
async function issuedBy(cert: ParsedCert, issuer: ParsedCert): Promise<string | null> {
  if (cert.issuer !== issuer.subject) return "the certificate names another issuer";
  const hash = SIGNATURE_HASHES[cert.signatureAlgorithm];
  if (!hash) return "the certificate's signature algorithm is not ECDSA with SHA-2";
  return (await verifyEcdsa(issuer, hash, cert.signature, cert.tbs))
    ? null
    : "the issuer's signature does not verify";
}

/**
 * Checks a JSON receipt with WebCrypto, as docs/receipts.md describes: the leaf from its
 * components, the Merkle path to the root, the node's signature over the root, and the node's
 * certificate chained to the service certificate. Every check is reported, passed or not.
 */
export async function verifyReceipt(
  receipt: JsonReceipt,
  serviceCertPem: string,
  expect: { txid?: string; writeSetDigest?: string; commitEvidenceDigest?: string } = {},
): Promise<Verification> {
  const checks: Check[] = [];
  const steps: PathStep[] = [];
  const done = (): Verification => ({ ok: checks.every((c) => c.ok), checks, steps, leaf, root });
  let leaf: string | undefined;
  let root: string | undefined;
  try {
    const lc = receipt.leaf_components;
    if (!lc || typeof lc.commit_evidence !== "string") throw new Error("the receipt has no leaf_components");
    const txid = /^ce:([0-9]+\.[0-9]+):[0-9a-f]{64}$/.exec(lc.commit_evidence)?.[1];
    if (expect.txid !== undefined) {
      checks.push({
        name: "Transaction",
        ok: txid === expect.txid,
        detail:
          txid === expect.txid
            ? `the commit evidence names ${txid}`
            : `the commit evidence names ${txid ?? "nothing"}, not ${expect.txid}`,
      });
    }
    const ceDigest = await sha256(new TextEncoder().encode(lc.commit_evidence));
    if (expect.writeSetDigest !== undefined && expect.commitEvidenceDigest !== undefined) {
      const same =
        lc.write_set_digest === expect.writeSetDigest && toHex(ceDigest) === expect.commitEvidenceDigest;
      checks.push({
        name: "Ledger entry",
        ok: same,
        detail: same
          ? "its digests are those of the ledger entry shown"
          : "its digests differ from the ledger entry shown",
      });
    }
    let h = await sha256(
      fromHex(lc.write_set_digest, "write_set_digest"),
      ceDigest,
      fromHex(lc.claims_digest, "claims_digest"),
    );
    leaf = toHex(h);
    for (const [i, step] of (receipt.proof ?? []).entries()) {
      const side = step.left !== undefined ? "left" : "right";
      const sibling = fromHex((step.left ?? step.right) as string, `proof step ${i + 1}`);
      h = side === "left" ? await sha256(sibling, h) : await sha256(h, sibling);
      steps.push({ side, sibling: toHex(sibling), result: toHex(h) });
    }
    root = toHex(h);
    checks.push({
      name: "Merkle path",
      ok: true,
      detail: `${steps.length} steps from the leaf to root ${root.slice(0, 16)}…`,
    });

    const node = parseCertificate(receipt.cert);
    const nodeId = toHex(await sha256(node.spki));
    checks.push({
      name: "Node id",
      ok: nodeId === receipt.node_id?.toLowerCase(),
      detail:
        nodeId === receipt.node_id?.toLowerCase()
          ? "node_id is the certificate's key"
          : "node_id does not name the certificate's key",
    });
    const curve = CURVES[node.curve];
    const signature = Uint8Array.from(atob(receipt.signature), (c) => c.charCodeAt(0));
    const signed = await verifyEcdsa(node, CURVE_HASH[curve?.name ?? "P-384"]!, signature, h);
    checks.push({
      name: "Root signature",
      ok: signed,
      detail: signed
        ? "the node signed this root"
        : "the node's signature does not match this root: the receipt was altered",
    });
    let cert = node;
    const chain = [...(receipt.service_endorsements ?? []), serviceCertPem];
    for (const [i, pem] of chain.entries()) {
      const issuer = parseCertificate(pem);
      const problem = await issuedBy(cert, issuer);
      const last = i === chain.length - 1;
      checks.push({
        name: last ? "Service endorsement" : `Endorsement ${i + 1}`,
        ok: problem === null,
        detail:
          problem ??
          (last
            ? "the service certificate endorses the signing node"
            : "the earlier service identity is endorsed"),
      });
      cert = issuer;
    }
  } catch (e) {
    checks.push({
      name: "Receipt",
      ok: false,
      detail: e instanceof DerError ? `a certificate in it is malformed: ${e.message}` : (e as Error).message,
    });
  }
  return done();
}
