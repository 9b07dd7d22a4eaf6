import type { Logger } from "pino";
import type { LedgerState } from "../ledger/index.ts";
import { Tables, utf8 } from "../ledger/index.ts";
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
  /** The service certificate the store holds (service info), if any yet. */
  storedServiceCert(): string | undefined;
}

/**
 * The certificates a node serves, following governance's renewals (cert-renewal.ts checks them
 * every tick): RPC and node-to-node TLS, signatures (which carry the node certificate), the
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
        const endorsed = host.state.store.read(Tables.nodesEndorsedCertificates, utf8(host.identity.nodeId));
        return {
          nodeCertPem: endorsed ? new TextDecoder().decode(endorsed) : host.identity.nodeCertPem,
          serviceCertPem: host.storedServiceCert() ?? host.identity.serviceCertPem,
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
