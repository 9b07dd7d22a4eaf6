import type { Logger } from "pino";
import { issueNodeCertificate } from "../crypto/index.ts";
import type { Tx } from "../kv/index.ts";
import { fromUtf8, jsonBytes, type NodeInfo, Tables, utf8 } from "../ledger/index.ts";
import type { AttestationPlatform } from "../tee/index.ts";
import type { Environment } from "./env.ts";
import { hostAltNames, type NodeIdentity } from "./identity.ts";
import {
  checkJoinProof,
  type JoinPeer,
  type JoinRequest,
  type JoinResponse,
  type JoinVerifier,
  joinerNodeId,
  NODE_ATTESTATIONS,
  readJoinPolicy,
  wrapSecrets,
} from "./join.ts";

/** What admitting a joiner needs from the node (the primary, or any node for a recorded joiner). */
export interface AdmissionHost {
  log: Logger;
  env: Environment;
  identity: NodeIdentity;
  platform: AttestationPlatform;
  /** The virtual platform's development option (see NodeConfig.trustJoinersWhileOpening). */
  trustJoinersWhileOpening: boolean;
  verifier: JoinVerifier;
  nodes(): Array<[string, NodeInfo]>;
  serviceStatus(): string;
  readSmallMap(map: string): Array<[string, Uint8Array]>;
  endorsedCertificate(nodeId: string): string | undefined;
  begin(): Tx;
  mustCommit(tx: Tx): void;
}

/** The loud start-up warning of the development option; tests look for it. */
export const INSTANT_TRUST_WARNING =
  "INSECURE: attestation.virtual.trustJoinersWhileOpening is set: while the service is Opening, any node that presents a virtual attestation (which anyone can forge) is trusted at once and receives the service key and the ledger secrets. Development only; never use it for a service that will hold real data.";

/** True when `nodes.info` already records the node making this join request. */
export function hasJoined(host: Pick<AdmissionHost, "nodes">, request: JoinRequest): boolean {
  const nodeId = joinerNodeId(request);
  return host.nodes().some(([id]) => id === nodeId);
}

/**
 * Admits a joining node: checks that the node key signed the encryption key and that the
 * attestation satisfies the join policy, and records a new joiner as Pending. Nothing is issued
 * then: the joiner's certificate is endorsed when the members vote `transition_node_to_trusted`
 * (from the certificate signing request recorded here), and only a Trusted joiner's answer
 * carries it, the nodes to connect to and the service's secrets wrapped to its encryption key.
 * A Pending answer names the node and its status, nothing else. The development option
 * `trustJoinersWhileOpening` (virtual platform only) trusts a joiner at once while Opening.
 */
export async function admit(host: AdmissionHost, request: JoinRequest): Promise<JoinResponse> {
  checkJoinProof(request);
  const attestation = host.verifier.check(
    request,
    readJoinPolicy((map) => host.readSmallMap(map)),
    { now: host.env.now(), platform: host.platform },
  );
  const nodeId = joinerNodeId(request);
  let known = host.nodes().find(([id]) => id === nodeId)?.[1];
  if (!known) {
    const instant =
      host.trustJoinersWhileOpening && host.platform === "virtual" && host.serviceStatus() === "Opening";
    const info: NodeInfo = {
      status: instant ? "Trusted" : "Pending",
      rpc_address: request.rpc_address,
      node_address: request.node_address,
      certificate_signing_request: request.certificate_signing_request,
    };
    const tx = host.begin();
    if (instant) {
      info.cert = await issueNodeCertificate({
        service: { certPem: host.identity.serviceCertPem, privateKeyPem: host.identity.servicePrivateKeyPem },
        nodePublicKeyPem: request.node_public_key,
        altNames: hostAltNames(request.rpc_address.slice(0, request.rpc_address.lastIndexOf(":"))),
        now: new Date(host.env.now()),
        serial: host.env.randomBytes(16),
      });
      tx.map(Tables.nodesEndorsedCertificates).set(utf8(nodeId), utf8(info.cert));
    }
    tx.map(Tables.nodesInfo).set(utf8(nodeId), jsonBytes(info));
    tx.map(NODE_ATTESTATIONS).set(utf8(nodeId), jsonBytes(attestation));
    host.mustCommit(tx);
    known = info;
    const logged = {
      nodeId,
      status: info.status,
      rpc: request.rpc_address,
      platform: attestation.format,
      measurement: attestation.measurement,
    };
    if (instant) host.log.warn(logged, "a node joined and was trusted at once (trustJoinersWhileOpening)");
    else host.log.info(logged, "a node joined; it waits, Pending, until the members vote to trust it");
  }
  const base = { node_id: nodeId, service_certificate: host.identity.serviceCertPem };
  if (known.status !== "Trusted") return { ...base, status: known.status };
  const certificate = host.endorsedCertificate(nodeId);
  // Trusted by a constitution that endorsed no certificate (yet): nothing to hand over.
  if (!certificate) return { ...base, status: "Trusted" };
  return {
    ...base,
    status: "Trusted",
    node_certificate: certificate,
    peers: peersFor(host, nodeId),
    wrapped_secrets: wrapSecrets(
      {
        service_private_key: host.identity.servicePrivateKeyPem,
        ledger_secrets: host.identity.ledgerSecrets,
      },
      request.encryption_public_key,
      (n) => host.env.randomBytes(n),
    ),
  };
}

/** The trusted nodes a newly trusted joiner connects to, each pinned by its endorsed certificate. */
function peersFor(host: AdmissionHost, joinerId: string): JoinPeer[] {
  const peers: JoinPeer[] = [];
  for (const [id, info] of host.nodes()) {
    if (id === joinerId || info.status !== "Trusted" || !info.node_address) continue;
    const certificate = host.endorsedCertificate(id);
    if (certificate) peers.push({ node_id: id, node_address: info.node_address, certificate });
  }
  return peers;
}

/** A node's certificate as `nodes.endorsed_certificates` records it, if any. */
export function readEndorsedCertificate(
  read: (map: string, key: Uint8Array) => Uint8Array | undefined,
  nodeId: string,
): string | undefined {
  const bytes = read(Tables.nodesEndorsedCertificates, utf8(nodeId));
  return bytes ? fromUtf8(bytes) : undefined;
}
