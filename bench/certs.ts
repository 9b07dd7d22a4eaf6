import {
  createIdentityCertificate,
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
} from "../src/crypto/index.ts";

export interface TlsFiles {
  caPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
}

const serial = () => crypto.getRandomValues(new Uint8Array(16));

/** A CA with a server and a client certificate, so the peer runs with mutual TLS like Coco. */
export async function makeTls(): Promise<TlsFiles> {
  const now = new Date();
  const ca = await createServiceIdentity({ now, serial: serial(), subjectName: "Bench CA" });
  const issue = async () => {
    const key = generateP384KeyPair();
    const certPem = await issueNodeCertificate({
      service: ca,
      nodePublicKeyPem: key.publicKeyPem,
      now,
      serial: serial(),
    });
    return { certPem, keyPem: key.privateKeyPem };
  };
  return { caPem: ca.certPem, server: await issue(), client: await issue() };
}

export async function makeUser(): Promise<{ certPem: string; keyPem: string }> {
  const user = await createIdentityCertificate({ name: "bench-user", now: new Date(), serial: serial() });
  return { certPem: user.certPem, keyPem: user.privateKeyPem };
}
