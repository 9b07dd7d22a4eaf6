import type { SecureContextOptions } from "node:tls";

/**
 * What the client port's TLS accepts; the server and every later setSecureContext (renewed
 * certificates) use this one object, so a renewal cannot quietly widen it.
 *
 * TLS 1.3 is preferred (clients that offer it get it; all its suites are AEAD). TLS 1.2 remains
 * for clients that lack 1.3, limited to forward-secret ECDHE key exchange with AES-GCM or
 * ChaCha20-Poly1305: no CBC suites (padding oracles, Lucky13), none with a SHA-1 MAC, no static
 * RSA or finite-field DHE. TLS 1.1 and older are refused. Node-to-node channels are TLS 1.3 only
 * (src/net).
 */
export const CLIENT_TLS_POLICY = {
  minVersion: "TLSv1.2",
  ciphers: [
    // TLS 1.3
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    // TLS 1.2: node certificates are ECDSA; the RSA forms serve a deployment that fronts Coco
    // with its own RSA certificate through the same options.
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-RSA-AES128-GCM-SHA256",
  ].join(":"),
  honorCipherOrder: true,
} as const satisfies SecureContextOptions;
