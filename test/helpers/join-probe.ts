import { Agent, request } from "undici";
import { nodeIdOf } from "../../src/crypto/index.ts";
import { newNodeKey } from "../../src/node/identity.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { generateEncryptionKey, signJoinProof } from "../../src/node/join.ts";
import { virtualAttestation } from "../../src/tee/index.ts";
import { freePort } from "./cli.ts";

// A joiner driven by hand: its join requests are sent by the test, and it never runs as a node,
// so a test can read exactly what each node answers it.

/** A joiner with a real key and a virtual attestation; its node address is never listened on. */
export async function joiner() {
  const key = await newNodeKey("127.0.0.1");
  const encryption = generateEncryptionKey();
  const body = JSON.stringify({
    node_public_key: key.publicKeyPem,
    certificate_signing_request: key.csrPem,
    encryption_public_key: encryption.publicKeyPem,
    encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
    rpc_address: `127.0.0.1:${await freePort()}`,
    node_address: `127.0.0.1:${await freePort()}`,
    attestation: virtualAttestation(key.publicKeyPem),
  });
  return { nodeId: nodeIdOf(key.publicKeyPem), body, encryption };
}

export type Answer = { status: number; json: Record<string, unknown> };

export async function poll(node: RunningNode, body: string): Promise<Answer> {
  const dispatcher = new Agent({ connect: { ca: node.node.identity.serviceCertPem } });
  try {
    const res = await request(`https://127.0.0.1:${node.port}/node/join`, {
      method: "POST",
      dispatcher,
      headers: { "content-type": "application/json" },
      body,
    });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  } finally {
    await dispatcher.close();
  }
}
