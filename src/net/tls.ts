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

/**
 * checkServerIdentity for dialing `expectedId`: the chain to the service certificate has been
 * checked by then, so what remains is to pin the node we meant to reach. Host names are not
 * checked: nodes are named by key, and an address may change hands.
 */
export function pinNodeId(expectedId: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const actual = nodeIdOfDer(cert.raw);
    if (actual === expectedId) return undefined;
    const err = new Error(
      `server certificate is for node ${actual ?? "(unreadable)"}, expected node ${expectedId}`,
    );
    (err as NodeJS.ErrnoException).code = "ERR_COCO_NODE_ID_MISMATCH";
    return err;
  };
}
