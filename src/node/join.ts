import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
} from "node:crypto";
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  certificateRequestKey,
  nodeIdOf,
  p384PrivateKey,
  sha256,
  signP384,
  verifyP384,
} from "../crypto/index.ts";
import { Tables as GovTables } from "../ledger/index.ts";
import {
  type AttestationPlatform,
  type AttestationView,
  checkNodeAttestation,
  type JoinPolicy,
  snpPolicyFromTables,
} from "../tee/index.ts";
import type { NodeIdentity } from "./identity.ts";

/** What a joining node sends to `POST /node/join`. */
export interface JoinRequest {
  node_public_key: string;
  encryption_public_key: string;
  rpc_address: string;
  node_address: string;
  attestation: unknown;
  /**
   * Base64 ECDSA P-384 signature by the node key over `joinProofDigest(encryption_public_key)`:
   * only the holder of the node key can ask for the secrets to be wrapped to an encryption key.
   * (A node's public key and attestation are public; without this anyone could replay them with
   * an encryption key of their own.)
   */
  encryption_key_signature: string;
  /**
   * PKCS#10 request for the node key (PEM), recorded with the node: governance endorses the
   * node's certificate from it when it trusts the node (`transition_node_to_trusted`) and renews
   * it later (`set_node_certificate_validity`). Required: a node gets no certificate otherwise.
   */
  certificate_signing_request: string;
}

/** What a joiner signs with its node key: its encryption key, under a domain label. */
export function joinProofDigest(encryptionPublicKeyPem: string): Uint8Array {
  return sha256(
    new TextEncoder().encode("coco.join.encryption-key.v1\0"),
    new TextEncoder().encode(encryptionPublicKeyPem),
  );
}

/** Signs the join proof with the joiner's node key. */
export function signJoinProof(nodePrivateKeyPem: string, encryptionPublicKeyPem: string): string {
  return Buffer.from(
    signP384(p384PrivateKey(nodePrivateKeyPem), joinProofDigest(encryptionPublicKeyPem)),
  ).toString("base64");
}

/** A node of the service as a newly trusted joiner first learns it: where, and which certificate. */
export interface JoinPeer {
  node_id: string;
  node_address: string;
  /** Its endorsed certificate: the only one the joiner's node-to-node channels accept for it. */
  certificate: string;
}

/**
 * What it gets back. A Pending (or Retired) joiner learns its id and status only; once the
 * members have trusted it, its endorsed certificate, the trusted nodes, and the service's
 * secrets wrapped to its encryption key.
 */
export interface JoinResponse {
  node_id: string;
  status: "Trusted" | "Pending" | "Retired";
  service_certificate: string;
  node_certificate?: string;
  wrapped_secrets?: WrappedSecrets;
  peers?: JoinPeer[];
}

export interface WrappedSecrets {
  /** A fresh AES-256 key, RSA-OAEP-SHA256 encrypted to the joiner's encryption key. */
  key: string;
  iv: string;
  /** AES-256-GCM over the JSON of {service_private_key, ledger_secrets}; tag appended. */
  ciphertext: string;
}

export interface ServiceSecrets {
  service_private_key: string;
  ledger_secrets: NodeIdentity["ledgerSecrets"];
}

export class JoinError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const ADDRESS = /^[0-9A-Za-z.[\]:-]{1,255}:[0-9]{1,5}$/;

/** Validates a join request from outside; the attestation is checked separately. */
export function parseJoinRequest(body: unknown): JoinRequest {
  const bad = (message: string): never => {
    throw new JoinError(400, "InvalidInput", message);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body))
    bad("join request must be a JSON object");
  const r = body as Record<string, unknown>;
  for (const field of [
    "node_public_key",
    "encryption_public_key",
    "rpc_address",
    "node_address",
    "encryption_key_signature",
  ]) {
    if (typeof r[field] !== "string") bad(`${field} must be a string`);
  }
  for (const field of ["rpc_address", "node_address"]) {
    if (!ADDRESS.test(r[field] as string)) bad(`${field} must be host:port`);
  }
  try {
    const key = createPublicKey(r.node_public_key as string);
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (key.asymmetricKeyType !== "ec" || (curve !== "secp384r1" && curve !== "prime256v1")) {
      bad("node_public_key must be an EC P-384 or P-256 public key (the service's curve)");
    }
  } catch (e) {
    if (e instanceof JoinError) throw e;
    bad(`node_public_key is not a public key: ${(e as Error).message}`);
  }
  try {
    const key = createPublicKey(r.encryption_public_key as string);
    if (key.asymmetricKeyType !== "rsa" || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      bad("encryption_public_key must be an RSA key of at least 2048 bits");
    }
  } catch (e) {
    if (e instanceof JoinError) throw e;
    bad(`encryption_public_key is not a public key: ${(e as Error).message}`);
  }
  const csr = r.certificate_signing_request;
  if (csr === undefined) {
    bad(
      "certificate_signing_request is required: the node's certificate is endorsed from it when the members trust the node",
    );
  }
  if (typeof csr !== "string") bad("certificate_signing_request must be a PEM string");
  let csrKey = "";
  try {
    csrKey = certificateRequestKey(csr as string);
  } catch (e) {
    bad(`certificate_signing_request: ${(e as Error).message}`);
  }
  if (nodeIdOf(csrKey) !== nodeIdOf(r.node_public_key as string)) {
    bad("certificate_signing_request is for another key than node_public_key");
  }
  return {
    certificate_signing_request: csr as string,
    node_public_key: r.node_public_key as string,
    encryption_public_key: r.encryption_public_key as string,
    rpc_address: r.rpc_address as string,
    node_address: r.node_address as string,
    attestation: r.attestation,
    encryption_key_signature: r.encryption_key_signature as string,
  };
}

/** Refuses a request whose encryption key the node key did not sign (see JoinRequest). */
export function checkJoinProof(request: JoinRequest): void {
  const signature = Buffer.from(request.encryption_key_signature, "base64");
  if (!verifyP384(request.node_public_key, joinProofDigest(request.encryption_public_key), signature)) {
    throw new JoinError(
      400,
      "InvalidInput",
      "encryption_key_signature is not the node key's signature over the encryption key",
    );
  }
}

/** Where the primary records each joiner's attestation, as checked at join (JSON, by node id). */
export const NODE_ATTESTATIONS = "public:ccf.gov.nodes.attestations";

/** Reads the join policy from the governance tables (CCF's names and value formats). */
export function readJoinPolicy(read: (map: string) => Array<[string, Uint8Array]>): JoinPolicy {
  const { policy, problems } = snpPolicyFromTables({
    measurements: read(GovTables.nodesSnpMeasurements),
    hostData: read(GovTables.nodesSnpHostData),
    tcbVersions: read(GovTables.nodesSnpTcbVersions),
  });
  return {
    virtualMeasurements: read(GovTables.nodesVirtualMeasurements).map(([m]) => m),
    snp: policy,
    snpTcbProblems: problems,
  };
}

/**
 * Checks joiners' attestations. A node's own verifier trusts only AMD's bundled roots. Tests that
 * sign reports with a chain of their own build one with `trustedRoots` and set it on the node
 * in-process; no configuration can.
 */
export class JoinVerifier {
  constructor(private readonly seams: { trustedRoots?: string[] } = {}) {}

  /**
   * Refuses (JoinError 400, naming the reason) a joiner whose attestation does not satisfy the
   * join policy of its platform; returns what to record otherwise.
   */
  check(
    request: JoinRequest,
    policy: JoinPolicy,
    context: { now: number; platform: AttestationPlatform },
  ): AttestationView {
    const verdict = checkNodeAttestation(request.attestation, request.node_public_key, policy, {
      now: context.now,
      platform: context.platform,
      ...(this.seams.trustedRoots ? { trustedRoots: this.seams.trustedRoots } : {}),
    });
    if (!verdict.ok) throw new JoinError(400, "InvalidAttestation", `join refused: ${verdict.reason}`);
    return verdict.view;
  }
}

export function joinerNodeId(request: JoinRequest): string {
  return nodeIdOf(request.node_public_key);
}

export function wrapSecrets(
  secrets: ServiceSecrets,
  encryptionPublicKeyPem: string,
  random: (n: number) => Uint8Array,
): WrappedSecrets {
  const key = random(32);
  const iv = random(12);
  const ciphertext = Buffer.from(aesGcmEncrypt(key, iv, Buffer.from(JSON.stringify(secrets), "utf8")));
  const wrappedKey = publicEncrypt(
    { key: encryptionPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    key,
  );
  return {
    key: wrappedKey.toString("base64"),
    iv: Buffer.from(iv).toString("base64"),
    ciphertext: ciphertext.toString("base64"),
  };
}

export function unwrapSecrets(wrapped: WrappedSecrets, encryptionPrivateKeyPem: string): ServiceSecrets {
  const key = privateDecrypt(
    {
      key: createPrivateKey(encryptionPrivateKeyPem),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: "sha256",
    },
    Buffer.from(wrapped.key, "base64"),
  );
  const sealed = Buffer.from(wrapped.ciphertext, "base64");
  const plain = aesGcmDecrypt(key, Buffer.from(wrapped.iv, "base64"), sealed);
  return JSON.parse(Buffer.from(plain).toString("utf8")) as ServiceSecrets;
}

const RSA_PEM = {
  modulusLength: 3072,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
} as const;
let earlyEncryptionKey: Promise<{ publicKeyPem: string; privateKeyPem: string }> | undefined;

/**
 * Starts generating this process's joiner encryption key on a worker thread. An RSA-3072 key
 * takes from 0.1 s to over a second of CPU; a node about to join (`coco start --wait-for`, while
 * it waits for the service certificate) starts it early so the join does not wait for it.
 */
export function startEncryptionKeyGeneration(): void {
  earlyEncryptionKey ??= new Promise((resolve, reject) =>
    generateKeyPair("rsa", RSA_PEM, (err, publicKeyPem, privateKeyPem) =>
      err ? reject(err) : resolve({ publicKeyPem, privateKeyPem }),
    ),
  );
  // A failure is reported where the key is taken, not as an unhandled rejection meanwhile.
  earlyEncryptionKey.catch(() => {});
}

/** The key started by startEncryptionKeyGeneration (started now if it was not), used once. */
export function takeEncryptionKey(): Promise<{ publicKeyPem: string; privateKeyPem: string }> {
  startEncryptionKeyGeneration();
  const key = earlyEncryptionKey!;
  earlyEncryptionKey = undefined;
  return key;
}

/** A joiner's RSA key for receiving the service's secrets. Never leaves the node. */
export function generateEncryptionKey(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 3072 });
  return {
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}
