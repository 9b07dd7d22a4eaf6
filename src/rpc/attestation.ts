import type { FastifyInstance } from "fastify";
import { VIRTUAL_WARNING } from "../tee/index.ts";
import { sendError } from "./errors.ts";
import type { RpcNode } from "./port.ts";

/** Unauthenticated: what each node attested, so clients can judge the service before trusting it. */
export function registerAttestationRoutes(server: FastifyInstance, node: RpcNode): void {
  const self = () => node.attestSelf();
  if (node.settings.platform === "virtual") {
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
    const recorded = node.recordedAttestations();
    const mine = await self().catch(() => null);
    return {
      attestations: node.nodes().map(([id, info]) => {
        const bytes = recorded.get(id);
        if (bytes) return { node_id: id, status: info.status, source: "join", attestation: bytes };
        // The node that started the service joined no one, so no join recorded its attestation.
        if (id === node.nodeId && mine)
          return { node_id: id, status: info.status, source: "self", attestation: mine };
        return { node_id: id, status: info.status, source: null, attestation: null };
      }),
    };
  });
}
