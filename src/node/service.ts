import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { certFingerprint, endorsePreviousService, normalizePem, parseCertificate } from "../crypto/index.ts";
import { defaultConstitution, joinConstitution } from "../gov/index.ts";
import type { Tx } from "../kv/index.ts";
import type { LedgerState } from "../ledger/index.ts";
import {
  jsonBytes,
  type NodeInfo,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  Tables,
  utf8,
} from "../ledger/index.ts";
import { type AttestationView, codeMeasurement, parseSnpReport } from "../tee/index.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import type { NodeIdentity } from "./identity.ts";
import { NODE_ATTESTATIONS } from "./join.ts";
import { NodeError } from "./node-error.ts";

/** What the service's lifecycle transactions need of the node that makes them. */
export interface ServiceHost {
  readonly config: NodeConfig;
  readonly identity: NodeIdentity;
  readonly state: LedgerState;
  /** The node-to-node port actually bound (the config may ask for port 0). */
  readonly nodePort: number;
  mustCommit(tx: Tx): void;
}

/** This node as the first (or recovering) node of a service records itself. */
export function selfNodeInfo(host: ServiceHost): NodeInfo {
  const { config, identity } = host;
  return {
    status: "Trusted",
    cert: identity.nodeCertPem,
    rpc_address: `${config.rpc.host}:${config.rpc.port}`,
    node_address: `${config.nodeAddress.host}:${host.nodePort}`,
    ...(identity.nodeCsrPem ? { certificate_signing_request: identity.nodeCsrPem } : {}),
  };
}

/** Genesis (seqno 1): the service, this node, and the initial members and users. */
export function createService(host: ServiceHost, ownSnp?: Extract<AttestationView, { format: "snp" }>): void {
  const { config, identity } = host;
  const nodeId = identity.nodeId;
  const tx = host.state.store.begin();
  const info: ServiceInfo = {
    cert: identity.serviceCertPem,
    status: "Opening",
    ...(config.openAtNodes > 0 ? { open_at_nodes: config.openAtNodes } : {}),
  };
  tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes(info));
  tx.map(Tables.nodesInfo).set(utf8(nodeId), jsonBytes(selfNodeInfo(host)));
  // The join policy starts with the code this node runs; members change it by vote.
  tx.map(Tables.nodesVirtualMeasurements).set(utf8(codeMeasurement()), jsonBytes("AllowedToJoin"));
  // On SEV-SNP the first node's own report seeds the SNP join policy, as in CCF: nodes running
  // the same launch measurement, with the same host data, on at least this TCB may join.
  if (ownSnp) seedSnpPolicy(tx, nodeId, ownSnp);
  tx.map(Tables.nodesEndorsedCertificates).set(utf8(nodeId), utf8(identity.nodeCertPem));
  tx.map(Tables.constitution).set(SINGLETON_KEY, utf8(genesisConstitution(config)));
  tx.map(Tables.serviceConfig).set(SINGLETON_KEY, jsonBytes({ recovery_threshold: 1 }));
  for (const member of config.members) {
    const pem = readCertFile(member.cert);
    tx.map(Tables.membersCerts).set(utf8(certFingerprint(pem)), utf8(pem));
    tx.map(Tables.membersInfo).set(utf8(certFingerprint(pem)), jsonBytes({ status: "Accepted" }));
    if (member.encryptionPublicKey) {
      tx.map(Tables.membersEncryptionKeys).set(
        utf8(certFingerprint(pem)),
        utf8(readEncryptionKey(member.encryptionPublicKey)),
      );
    }
  }
  for (const user of config.users) {
    const pem = readCertFile(user.cert);
    tx.map(Tables.usersCerts).set(utf8(certFingerprint(pem)), utf8(pem));
  }
  host.mustCommit(tx);
}

function seedSnpPolicy(tx: Tx, nodeId: string, ownSnp: Extract<AttestationView, { format: "snp" }>): void {
  tx.map(NODE_ATTESTATIONS).set(utf8(nodeId), jsonBytes(ownSnp));
  tx.map(Tables.nodesSnpMeasurements).set(utf8(ownSnp.measurement), jsonBytes("AllowedToJoin"));
  tx.map(Tables.nodesSnpHostData).set(utf8(ownSnp.host_data), jsonBytes(""));
  if (!ownSnp.cpuid) return;
  const tcb = parseSnpReport(Buffer.from(ownSnp.report, "base64")).reportedTcb;
  tx.map(Tables.nodesSnpTcbVersions).set(
    utf8(ownSnp.cpuid),
    jsonBytes({
      boot_loader: tcb.bootloader,
      tee: tcb.tee,
      snp: tcb.snp,
      microcode: tcb.microcode,
      ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}),
    }),
  );
}

/**
 * The first transaction of a recovered service: the new service identity (recording the
 * previous one), this node as the only trusted node, the lost nodes retired. The service is
 * `Recovering` until members vote it open and submit their recovery shares.
 */
export async function beginRecoveredService(
  host: ServiceHost,
  env: Environment,
  previousServiceCertPem: string,
): Promise<void> {
  const { identity, state } = host;
  const endorsement = await endorsePreviousService({
    service: { certPem: identity.serviceCertPem, privateKeyPem: identity.servicePrivateKeyPem },
    previousCertPem: previousServiceCertPem,
    now: new Date(env.now()),
    serial: env.randomBytes(16),
  });
  const tx = state.store.begin();
  const bytes = state.store.read(Tables.serviceInfo, SINGLETON_KEY);
  const previous = bytes ? parseJsonBytes<{ recovery_count?: number }>(bytes) : null;
  const info = {
    cert: identity.serviceCertPem,
    status: "Recovering",
    previous_service_identity: previousServiceCertPem,
    previous_service_identity_endorsement: endorsement,
    recovery_count: (previous?.recovery_count ?? 0) + 1,
  };
  tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes(info));
  for (const [id, node] of state.nodes()) {
    if (node.status !== "Retired")
      tx.map(Tables.nodesInfo).set(utf8(id), jsonBytes({ ...node, status: "Retired" }));
  }
  tx.map(Tables.nodesInfo).set(utf8(identity.nodeId), jsonBytes(selfNodeInfo(host)));
  tx.map(Tables.nodesEndorsedCertificates).set(utf8(identity.nodeId), utf8(identity.nodeCertPem));
  tx.map(Tables.nodesVirtualMeasurements).set(utf8(codeMeasurement()), jsonBytes("AllowedToJoin"));
  host.mustCommit(tx);
}

/** The constitution a new service starts with: the configured files, or Coco's default. */
function genesisConstitution(config: NodeConfig): string {
  if (config.constitution.length === 0) return defaultConstitution();
  return joinConstitution(
    config.constitution.map((file) => {
      try {
        return readFileSync(file, "utf8");
      } catch (e) {
        throw new NodeError(`cannot read constitution file ${file}: ${(e as Error).message}`);
      }
    }),
  );
}

function readEncryptionKey(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
    const key = createPublicKey(text);
    if (key.asymmetricKeyType !== "rsa" || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new Error("it must be an RSA public key of at least 2048 bits");
    }
  } catch (e) {
    throw new NodeError(`${path} is not a usable member encryption key: ${(e as Error).message}`);
  }
  return text;
}

export function readCertFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new NodeError(`cannot read certificate ${path}: ${(e as Error).message}`);
  }
  try {
    parseCertificate(text);
  } catch (e) {
    throw new NodeError(`${path} is not a usable certificate: ${(e as Error).message}`);
  }
  return normalizePem(text);
}
