import { fromUtf8, GovTables, SINGLETON, utf8 } from "../gov/index.ts";

/**
 * Framework tables. Names follow CCF's so its tools and habits carry over. Keys are UTF-8
 * strings (ids in lower-case hex), values UTF-8 JSON unless noted; certificates are stored as
 * PEM text.
 */
export const Tables = {
  serviceInfo: GovTables.serviceInfo,
  membersCerts: GovTables.membersCerts,
  membersInfo: GovTables.membersInfo,
  usersCerts: GovTables.usersCerts,
  usersInfo: GovTables.usersInfo,
  nodesInfo: GovTables.nodesInfo,
  nodesEndorsedCertificates: GovTables.nodesEndorsedCertificates,
  nodesVirtualMeasurements: GovTables.nodesVirtualMeasurements,
  signatures: GovTables.signatures,
  coseSignatures: "public:ccf.internal.cose_signatures",
  snapshotEvidence: "public:ccf.internal.snapshot_evidence",
  historicalEncryptedLedgerSecret: "public:ccf.internal.historical_encrypted_ledger_secret",
} as const;

/** Single-row tables (signatures, service info, ...) use this key: eight zero bytes, as CCF's constitutions expect. */
export const SINGLETON_KEY = SINGLETON;

export { fromUtf8, utf8 };

export function jsonBytes(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

export function parseJsonBytes<T>(bytes: Uint8Array): T {
  return JSON.parse(fromUtf8(bytes)) as T;
}

/** The value of `public:ccf.internal.signatures` written by every signature transaction. */
export interface SignatureRecord {
  seqno: number;
  view: number;
  commit_seqno: number;
  commit_view: number;
  /** Hex Merkle root over every transaction before this one. */
  root: string;
  /** Base64 DER ECDSA P-384/SHA-384 signature over the root bytes, by the node key. */
  sig: string;
  node: string;
  cert: string;
}

export interface ServiceInfo {
  cert: string;
  status: "Opening" | "Open" | "Recovering" | "WaitingForRecoveryShares";
  /** A recovered service: the certificate of the service it recovered. */
  previous_service_identity?: string;
  /** The previous identity's key and name, certified by this service (for old receipts). */
  previous_service_identity_endorsement?: string;
  recovery_count?: number;
}

export interface NodeInfo {
  status: "Pending" | "Trusted" | "Retired";
  /**
   * The certificate the node started with, for the service's first node and for nodes trusted
   * at once by the development option. A node trusted by the members' vote has none here: its
   * certificate is in `nodes.endorsed_certificates`, the record every node-to-node channel
   * checks.
   */
  cert?: string;
  rpc_address: string;
  /** Where other nodes reach this one. */
  node_address?: string;
  /** PKCS#10 request for the node's key: governance renews its certificate from it. */
  certificate_signing_request?: string;
}
