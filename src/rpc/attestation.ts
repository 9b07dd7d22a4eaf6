import type { FastifyInstance } from "fastify";
import { parseJsonBytes } from "../ledger/index.ts";
import { NODE_ATTESTATIONS } from "../node/join.ts";
import type { CocoNode } from "../node/node.ts";
import { type AttestationView, attestationProvider, attestationView, VIRTUAL_WARNING } from "../tee/index.ts";
import { sendError } from "./errors.ts";

/**
 * This node's own attestation, made once and kept: on SNP a report binding the node's key (the
 * one its TLS certificate carries), so a client can check which code and hardware it talks to.
 * A failed attempt is not kept; the next request tries again. The node's in-process attestation
 * seams (tests) apply here as they did to its join.
 */
function selfAttestation(node: CocoNode): () => Promise<AttestationView> {
  const provider = attestationProvider(node.config.attestation, node.attestationSeams);
  let made: Promise<AttestationView> | undefined;
  return () => {
    made ??= provider.attest(node.identity.nodeCertPem).then(attestationView);
    made.catch(() => {
      made = undefined;
    });
    return made;
  };
}

/** Unauthenticated: what each node attested, so clients can judge the service before trusting it. */
export function registerAttestationRoutes(server: FastifyInstance, node: CocoNode): void {
  const self = selfAttestation(node);
  if (node.config.attestation.platform === "virtual") {
    node.log.warn({ platform: "virtual" }, `INSECURE: ${VIRTUAL_WARNING}`);
  } else {
    self().then(
      (view) => node.log.info({ platform: "snp", measurement: view.measurement }, "attested this node"),
      (e: Error) => node.log.error({ err: e }, "cannot attest this node"),
    );
  }

  server.get("/node/attestations/self", async (_req, reply) => {
    try {
      return { node_id: node.nodeId, ...(await self()) };
    } catch (e) {
      return sendError(
        reply,
        503,
        "AttestationUnavailable",
        `cannot attest this node: ${(e as Error).message}`,
      );
    }
  });

  server.get("/node/attestations", async () => {
    const recorded = new Map(node.state.readSmallMap(NODE_ATTESTATIONS));
    const mine = await self().catch(() => null);
    return {
      attestations: node.nodes().map(([id, info]) => {
        const bytes = recorded.get(id);
        if (bytes)
          return { node_id: id, status: info.status, source: "join", attestation: parseJsonBytes(bytes) };
        // The node that started the service joined no one, so no join recorded its attestation.
        if (id === node.nodeId && mine)
          return { node_id: id, status: info.status, source: "self", attestation: mine };
        return { node_id: id, status: info.status, source: null, attestation: null };
      }),
    };
  });
}
