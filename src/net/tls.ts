import { X509Certificate } from "node:crypto";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { nodeIdOf } from "../crypto/index.ts";

/** The node id (hex SHA-256 of the SPKI DER) of the key in a DER certificate, or undefined. */
export function nodeIdOfDer(der: Uint8Array | undefined): string | undefined {
  if (!der || der.length === 0) return undefined;
  try {
    return nodeIdOf(new X509Certificate(der).toString());
  } catch {
    return undefined;
  }
}

/** The node id of the certificate the other end of an authenticated TLS socket presented. */
export function peerNodeId(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  return nodeIdOfDer(cert?.raw);
}

/** The DER bytes of a PEM certificate (what TLS shows of the other end's certificate). */
export function certificateDer(pem: string): Buffer {
  return new X509Certificate(pem).raw;
}

/**
 * checkServerIdentity for dialing `expectedId`: the chain to the service certificate has been
 * checked by then, so what remains is to pin the node we meant to reach, and the very
 * certificate the service endorsed for it (`accepted()`: see NodeChannels.setPeer). Host names
 * are not checked: nodes are named by key, and an address may change hands.
 */
export function pinNode(
  expectedId: string,
  accepted: () => readonly Buffer[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const actual = nodeIdOfDer(cert.raw);
    let err: Error;
    if (actual !== expectedId) {
      err = new Error(
        `server certificate is for node ${actual ?? "(unreadable)"}, expected node ${expectedId}`,
      );
      (err as NodeJS.ErrnoException).code = "ERR_COCO_NODE_ID_MISMATCH";
    } else if (!accepted().some((der) => cert.raw?.equals(der))) {
      err = new Error(`node ${expectedId} presented a certificate that is not its endorsed certificate`);
      (err as NodeJS.ErrnoException).code = "ERR_COCO_NODE_CERT_MISMATCH";
    } else {
      return undefined;
    }
    return err;
  };
}
