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
