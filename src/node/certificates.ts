import type { Logger } from "pino";
import type { LedgerState } from "../ledger/index.ts";
import { fromUtf8, parseJsonBytes, type ServiceInfo, SINGLETON_KEY, Tables, utf8 } from "../ledger/index.ts";
import type { NodeChannels } from "../net/index.ts";
import { CertificateAdopter } from "./cert-renewal.ts";
import { type NodeIdentity, writeFileAtomic } from "./identity.ts";
import type { IdentityStore } from "./sealed-identity.ts";

export interface ServedCertificates {
  nodeCertPem: string;
  serviceCertPem: string;
}

/** What serving renewed certificates touches on the node. */
export interface CertificatesHost {
  readonly identity: NodeIdentity;
  readonly identityStore: IdentityStore;
  readonly log: Logger;
  readonly state: LedgerState;
  readonly serviceCertFile: string;
  now(): number;
  channels(): NodeChannels | undefined;
}

/**
 * This node's endorsed certificate and the service certificate as the store has them at the
 * commit point, or undefined where nothing is recorded yet. Only committed renewals are served:
 * one still uncommitted may be rolled back by a view change, and a node serving it would present
 * a certificate its peers and clients no longer know (and would have sealed it and rewritten the
 * pinned service certificate file). The store keeps every version from the commit point on.
 */
export function committedCertificates(
  state: Pick<LedgerState, "store" | "commitSeqno">,
  nodeId: string,
): { nodeCertPem?: string; serviceCertPem?: string } {
  const read = (map: string, key: Uint8Array) => state.store.readAt(state.commitSeqno, map, key);
  const endorsed = read(Tables.nodesEndorsedCertificates, utf8(nodeId));
  const info = read(Tables.serviceInfo, SINGLETON_KEY);
  return {
    nodeCertPem: endorsed ? fromUtf8(endorsed) : undefined,
    serviceCertPem: info ? parseJsonBytes<ServiceInfo>(info).cert : undefined,
  };
}

/**
 * The certificates a node serves, following governance's renewals once they commit (cert-renewal.ts
 * checks them every tick, so a renewal is served from the first tick after its commit): RPC and node-to-node TLS, signatures (which carry the node certificate), the
 * sealed identity, and the service certificate file clients pin.
 */
export class NodeCertificates {
  private readonly listeners: Array<(certs: ServedCertificates) => void> = [];
  private readonly adopter: CertificateAdopter;

  constructor(private readonly host: CertificatesHost) {
    this.adopter = new CertificateAdopter({
      identity: host.identity,
      log: host.log,
      now: () => host.now(),
      storedCertificates: () => {
        const committed = committedCertificates(host.state, host.identity.nodeId);
        return {
          nodeCertPem: committed.nodeCertPem ?? host.identity.nodeCertPem,
          serviceCertPem: committed.serviceCertPem ?? host.identity.serviceCertPem,
        };
      },
      adopt: (certs) => this.adopt(certs),
    });
  }

  /** Why the certificates the store records for this node are not the ones it serves, if so. */
  get problem(): { reason: string; permanent: boolean } | undefined {
    return this.adopter.problem;
  }

  /** Called on every tick: adopts renewed certificates once they pass the checks. */
  check(): void {
    this.adopter.check();
  }

  /** Called with the node's certificates after governance renewed either of them. */
  onRenewed(listener: (certs: ServedCertificates) => void): void {
    this.listeners.push(listener);
  }

  private adopt(certs: ServedCertificates & { serviceRenewed: boolean }): void {
    const { host } = this;
    const { nodeCertPem, serviceCertPem } = certs;
    host.identity.nodeCertPem = nodeCertPem;
    host.identity.serviceCertPem = serviceCertPem;
    host.identityStore.save(host.identity);
    if (certs.serviceRenewed) {
      try {
        writeFileAtomic(host.serviceCertFile, serviceCertPem, 0o644);
      } catch (e) {
        host.log.error(
          { err: e, file: host.serviceCertFile },
          "could not write the renewed service certificate",
        );
      }
    }
    host.state.renewNodeCertificate(nodeCertPem);
    host.channels()?.renewCertificates(nodeCertPem, serviceCertPem);
    for (const listener of this.listeners) listener({ nodeCertPem, serviceCertPem });
  }
}
