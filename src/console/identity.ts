import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { certFingerprint, parseCertificate } from "../crypto/index.ts";

/** Who the console acts for, and which service it talks to: read once, kept in this process only. */
export interface ConsoleIdentity {
  /** The member's id: hex SHA-256 of its certificate's DER. */
  memberId: string;
  /** The certificate's subject, for display. */
  subject: string;
  certPem: string;
  /** Never leaves this process: it signs governance requests and opens mutual TLS. */
  keyPem: string;
  /** The member's recovery share decryption key, if it is a recovery member. */
  encryptionKeyPem?: string;
  serviceCertPem: string;
  /** Node RPC addresses (host:port) to start from; the others are found through them. */
  nodes: string[];
}

export interface IdentityFiles {
  cert: string;
  key: string;
  encryptionKey?: string;
  serviceCert: string;
  /** Node addresses; may be empty when `network` names a sandbox's network.json. */
  nodes: string[];
  network?: string;
}

export class ConsoleSetupError extends Error {}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConsoleSetupError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Files a sandbox workspace holds for its first member. */
export function sandboxIdentityFiles(workspace: string): IdentityFiles {
  const dir = resolve(workspace);
  const enc = join(dir, "member0_enc_privk.pem");
  return {
    cert: join(dir, "member0_cert.pem"),
    key: join(dir, "member0_privk.pem"),
    ...(existsSync(enc) ? { encryptionKey: enc } : {}),
    serviceCert: join(dir, "service_cert.pem"),
    nodes: [],
    network: join(dir, "network.json"),
  };
}

export function loadIdentity(files: IdentityFiles): ConsoleIdentity {
  const certPem = readText(files.cert, "the member certificate");
  const keyPem = readText(files.key, "the member private key");
  const serviceCertPem = readText(files.serviceCert, "the service certificate");
  let nodes = [...files.nodes];
  if (nodes.length === 0 && files.network) {
    const network = JSON.parse(readText(files.network, "the network file")) as {
      nodes?: Array<{ rpc_address?: string }>;
    };
    nodes = (network.nodes ?? []).flatMap((n) => (n.rpc_address ? [n.rpc_address] : []));
  }
  if (nodes.length === 0) {
    throw new ConsoleSetupError("no node to talk to: give --node <host:port> (or a sandbox workspace)");
  }
  let subject: string;
  try {
    subject = parseCertificate(certPem).subject;
  } catch (e) {
    throw new ConsoleSetupError(`${files.cert} is not a certificate: ${(e as Error).message}`);
  }
  return {
    memberId: certFingerprint(certPem),
    subject,
    certPem,
    keyPem,
    ...(files.encryptionKey
      ? { encryptionKeyPem: readText(files.encryptionKey, "the encryption private key") }
      : {}),
    serviceCertPem,
    nodes: nodes.map((n) => n.replace(/^https:\/\//, "")),
  };
}
