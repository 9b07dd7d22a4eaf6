import { createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto";
import {
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  CoseError,
  type CoseHeader,
  coseAlgForKey,
  coseCborDecode,
  coseCborEncode,
  coseDecodeSign1,
  coseEncodeSign1,
  coseSign1,
  coseVerifySign1,
} from "./cose.ts";
import { sha256, toHex } from "./hash.ts";
import { type ProofStep, rootFromPath, transactionLeaf } from "./merkle.ts";

/**
 * Receipts: offline proof that a transaction is in the ledger, checkable with only the service
 * certificate. Two forms, as CCF's:
 * - JSON: the node's signature over the Merkle root, the node certificate (endorsed by the
 *   service), the inclusion path and the leaf's components.
 * - COSE: the service's COSE_Sign1 over the root (detached payload), with the leaf and path in
 *   unprotected header 396, per draft-ietf-scitt-receipts-ccf-profile.
 * docs/receipts.md describes both and how to check them without Coco.
 */

/** COSE labels from draft-ietf-scitt-receipts-ccf-profile and RFC 9597 (CWT claims in headers). */
export const COSE_HEADER_VDS = 395;
export const COSE_HEADER_VDP = 396;
export const COSE_VDP_INCLUSION = -1;
export const COSE_VDS_CCF_LEDGER_SHA256 = 2;
export const COSE_HEADER_CWT_CLAIMS = 15;
export const CWT_CLAIM_IAT = 6;
export const COSE_HEADER_CCF = "ccf.v1";

const DIGEST_SIZE = 32;
const MAX_EVIDENCE_BYTES = 1024;
const TXID_PATTERN = /^(0|[1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,15})$/;
/** `ce:<view>.<seqno>:<hex nonce>`; the TxID in it is what the receipt is about. */
const COMMIT_EVIDENCE_PATTERN = /^ce:((?:0|[1-9][0-9]{0,15})\.(?:0|[1-9][0-9]{0,15})):((?:[0-9a-f]{2})+)$/;
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bad input to a receipt builder. Verifiers never throw: they return a VerifyResult. */
export class ReceiptError extends Error {
  override name = "ReceiptError";
}

export interface LeafComponents {
  write_set_digest: string;
  commit_evidence: string;
  claims_digest: string;
}

export interface JsonReceipt {
  cert: string;
  node_id: string;
  signature: string;
  proof: Array<{ left: string } | { right: string }>;
  leaf_components: LeafComponents;
  service_endorsements: string[];
  is_signature_transaction?: boolean;
}

export type VerifyCheck =
  | "format"
  | "leaf"
  | "node_id"
  | "signature"
  | "endorsement"
  | "certificate_validity";

/** On success: the root (hex) the receipt proves, and the receipted transaction's id. */
export type VerifyResult =
  | { ok: true; root: string; txid?: string }
  | { ok: false; check: VerifyCheck; message: string };

function checkDigest(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== DIGEST_SIZE) {
    throw new ReceiptError(`${what} must be ${DIGEST_SIZE} bytes`);
  }
  return value;
}

/** The Merkle leaf of a transaction: SHA256(write_set_digest || SHA256(commit_evidence) || claims_digest). */
export function leafFromComponents(c: {
  writeSetDigest: Uint8Array;
  commitEvidence: string;
  claimsDigest: Uint8Array;
}): Uint8Array {
  const writeSet = checkDigest(c.writeSetDigest, "write set digest");
  const claims = checkDigest(c.claimsDigest, "claims digest");
  if (typeof c.commitEvidence !== "string") throw new ReceiptError("commit evidence must be a string");
  return transactionLeaf(writeSet, sha256(Buffer.from(c.commitEvidence, "utf8")), claims);
}

/** ECDSA hash by curve, as CCF signs roots: P-384 keys use SHA-384. */
function hashForKey(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== "ec") return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === "prime256v1") return "sha256";
  if (curve === "secp384r1") return "sha384";
  if (curve === "secp521r1") return "sha512";
  return undefined;
}

function loadPrivateKey(pem: string | KeyObject, what: string): KeyObject {
  if (typeof pem !== "string") return pem;
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new ReceiptError(`${what} is not a PEM private key: ${(err as Error).message}`);
  }
}

/** The node's signature over a root (the `signature` of a JSON receipt): ECDSA, DER-encoded. */
export function signRootNode(opts: { root: Uint8Array; nodePrivateKeyPem: string | KeyObject }): Uint8Array {
  const root = checkDigest(opts.root, "Merkle root");
  const key = loadPrivateKey(opts.nodePrivateKeyPem, "node key");
  const hash = hashForKey(key);
  if (hash === undefined) throw new ReceiptError("node key must be an EC key on P-256, P-384 or P-521");
  return sign(hash, root, key);
}

/** The service's COSE_Sign1 over a root, payload detached; buildCoseReceipt adds proofs to it. */
export function signRootCose(opts: {
  root: Uint8Array;
  /** PEM, or a parsed key to skip parsing on every signature. */
  servicePrivateKeyPem: string | KeyObject;
  serviceKid: Uint8Array;
  txid: string;
  issuedAt: number;
}): Uint8Array {
  const root = checkDigest(opts.root, "Merkle root");
  if (!(opts.serviceKid instanceof Uint8Array) || opts.serviceKid.length === 0) {
    throw new ReceiptError("service kid must be non-empty bytes");
  }
  if (typeof opts.txid !== "string" || !TXID_PATTERN.test(opts.txid)) {
    throw new ReceiptError(`txid must be <view>.<seqno>, got ${JSON.stringify(opts.txid)}`);
  }
  if (!Number.isSafeInteger(opts.issuedAt) || opts.issuedAt < 0) {
    throw new ReceiptError(`issuedAt must be whole seconds since the epoch, got ${opts.issuedAt}`);
  }
  const key = loadPrivateKey(opts.servicePrivateKeyPem, "service key");
  const alg = coseAlgForKey(key);
  if (alg === undefined) throw new ReceiptError("service key must be an EC key on P-256, P-384 or P-521");
  const protectedHeader: CoseHeader = new Map<number | string, unknown>([
    [COSE_HEADER_ALG, alg],
    [COSE_HEADER_KID, opts.serviceKid],
    [COSE_HEADER_CWT_CLAIMS, new Map([[CWT_CLAIM_IAT, opts.issuedAt]])],
    [COSE_HEADER_VDS, COSE_VDS_CCF_LEDGER_SHA256],
    [COSE_HEADER_CCF, new Map([["txid", opts.txid]])],
  ]);
  return coseSign1({
    protectedHeader,
    payload: null,
    detachedPayload: root,
    privateKeyPem: key,
  });
}

export function buildJsonReceipt(opts: {
  nodeCertPem: string;
  nodeId: string;
  signature: Uint8Array;
  proof: ProofStep[];
  leafComponents: LeafComponents;
  serviceEndorsements?: string[];
}): JsonReceipt {
  if (typeof opts.nodeCertPem !== "string" || !opts.nodeCertPem.includes("BEGIN CERTIFICATE")) {
    throw new ReceiptError("node certificate must be a PEM certificate");
  }
  if (typeof opts.nodeId !== "string" || !HEX_DIGEST.test(opts.nodeId)) {
    throw new ReceiptError("node id must be 64 hex digits");
  }
  if (!(opts.signature instanceof Uint8Array) || opts.signature.length === 0) {
    throw new ReceiptError("signature must be non-empty bytes");
  }
  const { write_set_digest, commit_evidence, claims_digest } = opts.leafComponents;
  if (!HEX_DIGEST.test(write_set_digest) || !HEX_DIGEST.test(claims_digest)) {
    throw new ReceiptError("write_set_digest and claims_digest must be 64 hex digits");
  }
  if (typeof commit_evidence !== "string") throw new ReceiptError("commit_evidence must be a string");
  const proof = opts.proof.map((step, i) =>
    "left" in step
      ? { left: toHex(checkDigest(step.left, `proof step ${i}`)) }
      : { right: toHex(checkDigest(step.right, `proof step ${i}`)) },
  );
  return {
    cert: opts.nodeCertPem,
    node_id: opts.nodeId.toLowerCase(),
    signature: Buffer.from(opts.signature).toString("base64"),
    proof,
    leaf_components: {
      write_set_digest: write_set_digest.toLowerCase(),
      commit_evidence,
      claims_digest: claims_digest.toLowerCase(),
    },
    service_endorsements: [...(opts.serviceEndorsements ?? [])],
  };
}

/** Adds one inclusion proof to the signed root, as unprotected header 396 {-1: [proof]}. */
export function buildCoseReceipt(opts: {
  signedRoot: Uint8Array;
  proof: ProofStep[];
  writeSetDigest: Uint8Array;
  commitEvidence: string;
  claimsDigest: Uint8Array;
}): Uint8Array {
  const signed = coseDecodeSign1(opts.signedRoot);
  if (signed.payload !== null) throw new ReceiptError("the signed root must have a detached payload");
  if (signed.protectedHeader.get(COSE_HEADER_VDS) !== COSE_VDS_CCF_LEDGER_SHA256) {
    throw new ReceiptError("the signed root must carry vds (395) = 2, CCF_LEDGER_SHA256");
  }
  if (typeof opts.commitEvidence !== "string") throw new ReceiptError("commit evidence must be a string");
  const leaf = [
    checkDigest(opts.writeSetDigest, "write set digest"),
    opts.commitEvidence,
    checkDigest(opts.claimsDigest, "claims digest"),
  ];
  const path = opts.proof.map((step, i) =>
    "left" in step
      ? [true, checkDigest(step.left, `proof step ${i}`)]
      : [false, checkDigest(step.right, `proof step ${i}`)],
  );
  const inclusionProof = coseCborEncode(
    new Map<number, unknown>([
      [1, leaf],
      [2, path],
    ]),
  );
  const unprotectedHeader: CoseHeader = new Map(signed.unprotectedHeader);
  unprotectedHeader.set(COSE_HEADER_VDP, new Map([[COSE_VDP_INCLUSION, [inclusionProof]]]));
  return coseEncodeSign1({
    protectedBytes: signed.protectedBytes,
    unprotectedHeader,
    payload: null,
    signature: signed.signature,
  });
}

// ---- verification -------------------------------------------------------------------------

/** Thrown inside the verifiers only, turned into a failed VerifyResult at their edge. */
class CheckFailed extends Error {
  constructor(
    readonly check: VerifyCheck,
    message: string,
  ) {
    super(message);
  }
}

function fail(check: VerifyCheck, message: string): never {
  throw new CheckFailed(check, message);
}

function settle(run: () => { root: string; txid: string }): VerifyResult {
  try {
    const { root, txid } = run();
    return { ok: true, root, txid };
  } catch (err) {
    if (err instanceof CheckFailed) return { ok: false, check: err.check, message: err.message };
    throw err;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, allowed: string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail("format", `${where} has an unknown field ${JSON.stringify(key)}`);
  }
}

function hexDigestField(value: unknown, where: string): Uint8Array {
  if (typeof value !== "string" || !HEX_DIGEST.test(value)) fail("format", `${where} must be 64 hex digits`);
  return Buffer.from(value, "hex");
}

function parseCert(pem: unknown, where: string): X509Certificate {
  if (typeof pem !== "string") fail("format", `${where} must be a PEM certificate string`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    return fail("format", `${where} is not a PEM certificate: ${(err as Error).message}`);
  }
}

/** The TxID inside commit evidence, or a "leaf" failure when it is not Coco's (and CCF's) format. */
function txidFromEvidence(evidence: string, where: string): string {
  const bytes = Buffer.byteLength(evidence, "utf8");
  if (bytes < 1 || bytes > MAX_EVIDENCE_BYTES) {
    fail("leaf", `${where} must be 1 to ${MAX_EVIDENCE_BYTES} bytes, got ${bytes}`);
  }
  const match = COMMIT_EVIDENCE_PATTERN.exec(evidence);
  if (!match) fail("leaf", `${where} must be ce:<view>.<seqno>:<hex>, got ${JSON.stringify(evidence)}`);
  const txid = match[1]!;
  if (txid.endsWith(".0")) fail("leaf", `${where} names seqno 0, which no transaction has`);
  return txid;
}

interface ParsedJsonReceipt {
  cert: X509Certificate;
  nodeId: string;
  signature: Uint8Array;
  proof: ProofStep[];
  writeSetDigest: Uint8Array;
  commitEvidence: string;
  claimsDigest: Uint8Array;
  endorsements: X509Certificate[];
}

function parseProof(value: unknown): ProofStep[] {
  if (!Array.isArray(value)) fail("format", "proof must be an array");
  return value.map((step: unknown, i): ProofStep => {
    const where = `proof[${i}]`;
    if (!isPlainObject(step) || Object.keys(step).length !== 1) {
      fail("format", `${where} must be an object with exactly one of "left" or "right"`);
    }
    if ("left" in step) return { left: hexDigestField(step.left, `${where}.left`) };
    if ("right" in step) return { right: hexDigestField(step.right, `${where}.right`) };
    return fail("format", `${where} must be an object with exactly one of "left" or "right"`);
  });
}

function parseJsonReceipt(receipt: unknown): ParsedJsonReceipt {
  if (!isPlainObject(receipt)) fail("format", "receipt must be a JSON object");
  checkKeys(
    receipt,
    [
      "cert",
      "node_id",
      "signature",
      "proof",
      "leaf_components",
      "service_endorsements",
      "is_signature_transaction",
    ],
    "receipt",
  );
  const cert = parseCert(receipt.cert, "cert");
  if (typeof receipt.node_id !== "string" || !HEX_DIGEST.test(receipt.node_id)) {
    fail("format", "node_id must be 64 hex digits");
  }
  const signature = receipt.signature;
  if (typeof signature !== "string" || signature.length === 0 || !BASE64.test(signature)) {
    fail("format", "signature must be non-empty base64");
  }
  const leaf = receipt.leaf_components;
  if (!isPlainObject(leaf)) fail("format", "leaf_components must be an object");
  checkKeys(leaf, ["write_set_digest", "commit_evidence", "claims_digest"], "leaf_components");
  if (typeof leaf.commit_evidence !== "string")
    fail("format", "leaf_components.commit_evidence must be a string");
  const endorsements = receipt.service_endorsements;
  if (!Array.isArray(endorsements)) fail("format", "service_endorsements must be an array");
  if (
    receipt.is_signature_transaction !== undefined &&
    typeof receipt.is_signature_transaction !== "boolean"
  ) {
    fail("format", "is_signature_transaction must be a boolean");
  }
  return {
    cert,
    nodeId: receipt.node_id.toLowerCase(),
    signature: Buffer.from(signature, "base64"),
    proof: parseProof(receipt.proof),
    writeSetDigest: hexDigestField(leaf.write_set_digest, "leaf_components.write_set_digest"),
    commitEvidence: leaf.commit_evidence,
    claimsDigest: hexDigestField(leaf.claims_digest, "leaf_components.claims_digest"),
    endorsements: endorsements.map((pem: unknown, i) => parseCert(pem, `service_endorsements[${i}]`)),
  };
}

function checkIssuedBy(
  child: X509Certificate,
  issuer: X509Certificate,
  childName: string,
  issuerName: string,
) {
  if (!child.checkIssued(issuer)) {
    fail("endorsement", `${childName} names issuer "${child.issuer}", not ${issuerName} "${issuer.subject}"`);
  }
  let signed = false;
  try {
    signed = child.verify(issuer.publicKey);
  } catch {
    signed = false; // an issuer key OpenSSL cannot use signs nothing we accept
  }
  if (!signed) {
    fail("endorsement", `${childName} is not signed by the key of ${issuerName}`);
  }
}

function checkValidAt(cert: X509Certificate, name: string, at: Date): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (at < from || at > to) {
    fail(
      "certificate_validity",
      `${name} is valid from ${from.toISOString()} to ${to.toISOString()}, not at ${at.toISOString()}`,
    );
  }
}

/**
 * Checks a JSON receipt against the service certificate: shape, commit evidence, node_id against
 * the node certificate, the chain node cert -> service_endorsements[0] -> ... -> service cert,
 * each certificate's validity at `opts.at` (skipped without it: receipts outlive node
 * certificates), and the node's signature over the root the proof folds to.
 */
export function verifyJsonReceipt(
  receipt: unknown,
  serviceCertPem: string,
  opts?: { at?: Date },
): VerifyResult {
  return settle(() => {
    const service = parseCert(serviceCertPem, "service certificate");
    const r = parseJsonReceipt(receipt);
    const txid = txidFromEvidence(r.commitEvidence, "leaf_components.commit_evidence");

    const spki = r.cert.publicKey.export({ type: "spki", format: "der" });
    const certId = toHex(sha256(spki));
    if (certId !== r.nodeId) {
      fail("node_id", `node_id ${r.nodeId} is not the SHA-256 of cert's public key (${certId})`);
    }

    // The chain, in CCF's order: each certificate is issued by the next, the last by the service.
    const chain = [r.cert, ...r.endorsements, service];
    const names = [
      "cert",
      ...r.endorsements.map((_, i) => `service_endorsements[${i}]`),
      "service certificate",
    ];
    for (let i = 0; i + 1 < chain.length; i++)
      checkIssuedBy(chain[i]!, chain[i + 1]!, names[i]!, names[i + 1]!);
    const at = opts?.at;
    if (at !== undefined) for (const [i, cert] of chain.entries()) checkValidAt(cert, names[i]!, at);

    const leaf = leafFromComponents(r);
    const root = rootFromPath(leaf, r.proof);
    const hash = hashForKey(r.cert.publicKey);
    if (hash === undefined) fail("signature", "cert's key is not an EC key on P-256, P-384 or P-521");
    let valid = false;
    try {
      valid = verify(hash, root, r.cert.publicKey, r.signature);
    } catch {
      valid = false;
    }
    if (!valid) fail("signature", `signature does not verify over root ${toHex(root)} with cert's key`);
    return { root: toHex(root), txid };
  });
}

interface CoseInclusionProof {
  leaf: Uint8Array;
  path: ProofStep[];
  commitEvidence: string;
}

function bstr32(value: unknown, where: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== DIGEST_SIZE) {
    fail("format", `${where} must be a ${DIGEST_SIZE}-byte bstr`);
  }
  return value;
}

function parseInclusionProof(encoded: unknown, where: string): CoseInclusionProof {
  if (!(encoded instanceof Uint8Array)) fail("format", `${where} must be a bstr holding the CBOR proof`);
  let proof: unknown;
  try {
    proof = coseCborDecode(encoded, where);
  } catch (err) {
    fail("format", (err as Error).message);
  }
  if (!(proof instanceof Map) || proof.size !== 2 || !proof.has(1) || !proof.has(2)) {
    fail("format", `${where} must be a map with exactly keys 1 (leaf) and 2 (path)`);
  }
  const leaf: unknown = proof.get(1);
  if (!Array.isArray(leaf) || leaf.length !== 3) {
    fail("format", `${where} leaf must be [write set digest, commit evidence, claims digest]`);
  }
  const writeSetDigest = bstr32(leaf[0], `${where} leaf write set digest`);
  const commitEvidence: unknown = leaf[1];
  if (typeof commitEvidence !== "string") fail("format", `${where} leaf commit evidence must be text`);
  const claimsDigest = bstr32(leaf[2], `${where} leaf claims digest`);
  const path: unknown = proof.get(2);
  if (!Array.isArray(path)) fail("format", `${where} path must be an array`);
  const steps = path.map((element: unknown, i): ProofStep => {
    if (!Array.isArray(element) || element.length !== 2 || typeof element[0] !== "boolean") {
      fail("format", `${where} path[${i}] must be [left: bool, hash: bstr]`);
    }
    const hash = bstr32(element[1], `${where} path[${i}] hash`);
    return element[0] ? { left: hash } : { right: hash };
  });
  return {
    leaf: leafFromComponents({ writeSetDigest, commitEvidence, claimsDigest }),
    path: steps,
    commitEvidence,
  };
}

/**
 * Checks a COSE receipt against the service certificate: a strict COSE_Sign1 with vds 2 and a
 * detached payload, every inclusion proof in header 396 folding to the same root, and the
 * service's signature over that root. Validity of the service certificate is checked at
 * `opts.at` when given.
 */
export function verifyCoseReceipt(
  bytes: Uint8Array,
  serviceCertPem: string,
  opts?: { at?: Date },
): VerifyResult {
  return settle(() => {
    const service = parseCert(serviceCertPem, "service certificate");
    if (!(bytes instanceof Uint8Array)) fail("format", "COSE receipt must be bytes");
    let message: ReturnType<typeof coseDecodeSign1>;
    try {
      message = coseDecodeSign1(bytes);
    } catch (err) {
      return fail("format", (err as Error).message);
    }
    const vds = message.protectedHeader.get(COSE_HEADER_VDS);
    if (vds !== COSE_VDS_CCF_LEDGER_SHA256) {
      fail("format", `protected header vds (395) must be 2 (CCF_LEDGER_SHA256), got ${String(vds)}`);
    }
    if (message.payload !== null)
      fail("format", "the payload must be detached (nil): the root is recomputed");
    const proofs: unknown = message.unprotectedHeader.get(COSE_HEADER_VDP);
    if (!(proofs instanceof Map)) fail("format", "unprotected header 396 (verifiable proofs) must be a map");
    const inclusion: unknown = proofs.get(COSE_VDP_INCLUSION);
    if (!Array.isArray(inclusion) || inclusion.length === 0) {
      fail("format", "header 396 must hold a non-empty array of inclusion proofs under -1");
    }
    const parsed = inclusion.map((p: unknown, i) => parseInclusionProof(p, `inclusion proof ${i}`));
    const txids = parsed.map((p, i) =>
      txidFromEvidence(p.commitEvidence, `inclusion proof ${i} commit evidence`),
    );
    const roots = parsed.map((p) => toHex(rootFromPath(p.leaf, p.path)));
    const root = roots[0]!;
    if (roots.some((r) => r !== root)) fail("format", "the inclusion proofs fold to different roots");

    if (opts?.at !== undefined) checkValidAt(service, "service certificate", opts.at);
    let valid: boolean;
    try {
      valid = coseVerifySign1(bytes, serviceCertPem, Buffer.from(root, "hex"));
    } catch (err) {
      if (err instanceof CoseError) fail("format", err.message);
      throw err;
    }
    if (!valid) fail("signature", `COSE signature does not verify over root ${root} with the service key`);
    return { root, txid: txids[0]! };
  });
}
