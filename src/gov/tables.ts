import type { Tx } from "../kv/index.ts";

/**
 * Governance tables, named as CCF names them so that CCF constitutions run unchanged. Keys are
 * UTF-8 ids; values JSON unless noted (certificates, constitution and ballots are plain text).
 */
export const GovTables = {
  constitution: "public:ccf.gov.constitution",
  proposals: "public:ccf.gov.proposals",
  proposalsInfo: "public:ccf.gov.proposals_info",
  history: "public:ccf.gov.history",
  recentRequests: "public:ccf.gov.cose_recent_proposals",
  membersCerts: "public:ccf.gov.members.certs",
  membersInfo: "public:ccf.gov.members.info",
  membersEncryptionKeys: "public:ccf.gov.members.encryption_public_keys",
  membersAcks: "public:ccf.gov.members.acks",
  usersCerts: "public:ccf.gov.users.certs",
  usersInfo: "public:ccf.gov.users.info",
  nodesInfo: "public:ccf.gov.nodes.info",
  nodesEndorsedCertificates: "public:ccf.gov.nodes.endorsed_certificates",
  nodesVirtualMeasurements: "public:ccf.gov.nodes.virtual.measurements",
  nodesSnpMeasurements: "public:ccf.gov.nodes.snp.measurements",
  nodesSnpHostData: "public:ccf.gov.nodes.snp.host_data",
  nodesSnpTcbVersions: "public:ccf.gov.nodes.snp.tcb_versions",
  serviceInfo: "public:ccf.gov.service.info",
  serviceConfig: "public:ccf.gov.service.config",
  modules: "public:ccf.gov.modules",
  endpoints: "public:ccf.gov.endpoints",
  jsRuntimeOptions: "public:ccf.gov.js_runtime_options",
  interpreterFlush: "public:ccf.gov.interpreter.flush",
  modulesQuickJsBytecode: "public:ccf.gov.modules_quickjs_bytecode",
  modulesQuickJsVersion: "public:ccf.gov.modules_quickjs_version",
  signatures: "public:ccf.internal.signatures",
} as const;

/** Single-row tables (service info and config, signatures, the constitution) use this key: eight zero bytes, as in CCF. */
export const SINGLETON = new Uint8Array(8);

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function readJson<T>(tx: Tx, map: string, key: Uint8Array): T | undefined {
  const value = tx.map(map).get(key);
  return value === undefined ? undefined : (JSON.parse(decoder.decode(value)) as T);
}

export function writeJson(tx: Tx, map: string, key: Uint8Array, value: unknown): void {
  tx.map(map).set(key, encoder.encode(JSON.stringify(value)));
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
