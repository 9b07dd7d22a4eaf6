import { X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import { equalBytes, nodeIdOf, publicKeyDer, verifyIssuedBy } from "../crypto/index.ts";
import type { NodeIdentity } from "./identity.ts";

/**
 * Why certificates found in the store cannot replace `identity`'s now, or undefined if they can:
 * the service certificate must be self-signed for the same service key, the node certificate
 * issued by it for this node's key, and both valid `at` (a problem that time alone will solve
 * is not `permanent`).
 */
export function renewalProblem(
  identity: NodeIdentity,
  nodeCertPem: string,
  serviceCertPem: string,
  at: Date,
): { reason: string; permanent: boolean } | undefined {
  try {
    if (!equalBytes(publicKeyDer(serviceCertPem), publicKeyDer(identity.serviceCertPem))) {
      return { reason: "the service certificate is for another key", permanent: true };
    }
    const selfSigned = verifyIssuedBy(serviceCertPem, serviceCertPem);
    if (!selfSigned.ok) return { reason: `the service certificate: ${selfSigned.reason}`, permanent: true };
    if (nodeIdOf(nodeCertPem) !== identity.nodeId) {
      return { reason: "the node certificate is for another key", permanent: true };
    }
    const current = verifyIssuedBy(nodeCertPem, serviceCertPem, at);
    if (!current.ok) {
      // Only a validity window that time may yet open is worth another look later.
      const issued = verifyIssuedBy(nodeCertPem, serviceCertPem);
      if (!issued.ok) return { reason: `the node certificate: ${issued.reason}`, permanent: true };
      return { reason: current.reason, permanent: false };
    }
  } catch (e) {
    return { reason: (e as Error).message, permanent: true };
  }
  return undefined;
}

/** What adopting renewed certificates touches on the node. */
export interface RenewalHost {
  readonly identity: NodeIdentity;
  readonly log: Logger;
  now(): number;
  /** The node's endorsed certificate and the service certificate as the store has them committed. */
  storedCertificates(): { nodeCertPem: string; serviceCertPem: string };
  /** Serves the renewed certificates everywhere (sealed identity, files, TLS, signatures). */
  adopt(certs: { nodeCertPem: string; serviceCertPem: string; serviceRenewed: boolean }): void;
}

/**
 * Governance renews certificates by writing them to the KV (`set_node_certificate_validity`,
 * `set_service_certificate_validity`, `transition_node_to_trusted`): same keys, new validity.
 * Checked every tick; certificates that fail the checks are logged once and looked at again
 * only when time may have made them valid.
 */
export class CertificateAdopter {
  /** Certificates from the store that failed the checks: logged once, checked again `until`. */
  private refused = { certs: "", until: 0 };
  /** Why the certificates in the store are not the ones served, while they are not. */
  private notServed: { reason: string; permanent: boolean } | undefined;

  constructor(private readonly host: RenewalHost) {}

  /**
   * Why this node serves other certificates than the store records for it (shown by
   * `/node/state`, so a difference is never only a line in the log), or undefined.
   */
  get problem(): { reason: string; permanent: boolean } | undefined {
    return this.notServed;
  }

  check(): void {
    const { identity } = this.host;
    const { nodeCertPem, serviceCertPem } = this.host.storedCertificates();
    if (nodeCertPem === identity.nodeCertPem && serviceCertPem === identity.serviceCertPem) {
      this.notServed = undefined;
      return;
    }
    const found = nodeCertPem + serviceCertPem;
    const now = this.host.now();
    if (this.refused.certs === found && now < this.refused.until) return;
    const problem = renewalProblem(identity, nodeCertPem, serviceCertPem, new Date(now));
    if (problem) {
      if (this.refused.certs !== found) {
        this.host.log.warn({ reason: problem.reason }, "not serving the renewed certificates in the store");
      }
      // A certificate that is not valid yet is served once it is: look again in a second.
      this.refused = { certs: found, until: problem.permanent ? Number.POSITIVE_INFINITY : now + 1000 };
      this.notServed = problem;
      return;
    }
    this.notServed = undefined;
    const serviceRenewed = serviceCertPem !== identity.serviceCertPem;
    this.host.adopt({ nodeCertPem, serviceCertPem, serviceRenewed });
    const validTo = (pem: string) => new X509Certificate(pem).validTo;
    this.host.log.info(
      { nodeCertValidTo: validTo(nodeCertPem), serviceCertValidTo: validTo(serviceCertPem) },
      "serving renewed certificates",
    );
  }
}
