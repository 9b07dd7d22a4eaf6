import type { Tx } from "../kv/index.ts";

/**
 * Framework tables: every map Coco itself reads or writes, named as CCF names them so that CCF's
 * constitutions, tools and habits carry over. Keys are UTF-8 strings (ids in lower-case hex);
 * values are UTF-8 JSON unless noted (certificates, the constitution and ballots are plain text).
 * Governance, the node and rpc all read their names and codecs here; this file loads nothing but
 * the KV's types, so reaching it starts no JS runtime.
 */
export const Tables = {
  // Governance
  constitution: "public:ccf.gov.constitution",
  proposals: "public:ccf.gov.proposals",
  proposalsInfo: "public:ccf.gov.proposals_info",
  history: "public:ccf.gov.history",
  /** Coco's per-member replay windows (gov/replay.ts); CCF keeps one shared window instead. */
  membersRecentRequests: "public:ccf.gov.members.recent_requests",
  modules: "public:ccf.gov.modules",
  endpoints: "public:ccf.gov.endpoints",
  jsRuntimeOptions: "public:ccf.gov.js_runtime_options",
  interpreterFlush: "public:ccf.gov.interpreter.flush",
  modulesQuickJsBytecode: "public:ccf.gov.modules_quickjs_bytecode",
  modulesQuickJsVersion: "public:ccf.gov.modules_quickjs_version",
  // Members and users
  membersCerts: "public:ccf.gov.members.certs",
  membersInfo: "public:ccf.gov.members.info",
  membersEncryptionKeys: "public:ccf.gov.members.encryption_public_keys",
  membersAcks: "public:ccf.gov.members.acks",
  usersCerts: "public:ccf.gov.users.certs",
  usersInfo: "public:ccf.gov.users.info",
  // Nodes and their admission policy
  nodesInfo: "public:ccf.gov.nodes.info",
  nodesEndorsedCertificates: "public:ccf.gov.nodes.endorsed_certificates",
  nodesVirtualMeasurements: "public:ccf.gov.nodes.virtual.measurements",
  nodesSnpMeasurements: "public:ccf.gov.nodes.snp.measurements",
  nodesSnpHostData: "public:ccf.gov.nodes.snp.host_data",
  nodesSnpTcbVersions: "public:ccf.gov.nodes.snp.tcb_versions",
  // The service
  serviceInfo: "public:ccf.gov.service.info",
  serviceConfig: "public:ccf.gov.service.config",
  // Written by the framework itself
  signatures: "public:ccf.internal.signatures",
  coseSignatures: "public:ccf.internal.cose_signatures",
  snapshotEvidence: "public:ccf.internal.snapshot_evidence",
  historicalEncryptedLedgerSecret: "public:ccf.internal.historical_encrypted_ledger_secret",
} as const;

/**
 * Single-row tables (service info and config, signatures, the constitution) use this key: eight
 * zero bytes, as CCF's constitutions expect.
 */
export const SINGLETON_KEY = new Uint8Array(8);

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strict UTF-8 decoding: malformed bytes throw rather than turn into replacement characters. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function jsonBytes(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

export function parseJsonBytes<T>(bytes: Uint8Array): T {
  return JSON.parse(fromUtf8(bytes)) as T;
}

export function readJson<T>(tx: Tx, map: string, key: Uint8Array): T | undefined {
  const value = tx.map(map).get(key);
  return value === undefined ? undefined : parseJsonBytes<T>(value);
}

export function writeJson(tx: Tx, map: string, key: Uint8Array, value: unknown): void {
  tx.map(map).set(key, jsonBytes(value));
}

/** Every entry of a map, in key order, page by page. */
export function scanMap(tx: Tx, map: string): Array<[Uint8Array, Uint8Array]> {
  const out: Array<[Uint8Array, Uint8Array]> = [];
  let after: string | undefined;
  do {
    const page = tx.map(map).range({ limit: 10_000, ...(after ? { after } : {}) });
    out.push(...page.entries);
    after = page.next;
  } while (after);
  return out;
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

/** The value of `public:ccf.gov.service.info`. */
export interface ServiceInfo {
  cert: string;
  status: "Opening" | "Open" | "Recovering" | "WaitingForRecoveryShares";
  /** A recovered service: the certificate of the service it recovered. */
  previous_service_identity?: string;
  /** The previous identity's key and name, certified by this service (for old receipts). */
  previous_service_identity_endorsement?: string;
  recovery_count?: number;
  /**
   * Coco only: a new service created with `openAtNodes` opens by itself once that many nodes are
   * trusted. Recorded at genesis so that whichever node is primary opens it, not only the first.
   */
  open_at_nodes?: number;
}

/** A value of `public:ccf.gov.nodes.info`. */
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
