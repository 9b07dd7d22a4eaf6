import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { nodeIdOf, parseCertificate, verifyIssuedBy } from "../crypto/index.ts";
import { parseTxId, TxIdError } from "../kv/index.ts";
import { TX_HEADER } from "./answers.ts";
import { authenticate, identifyPeer } from "./auth.ts";
import { addressKey } from "./connection-limits.ts";
import { sendError } from "./errors.ts";
import { jsonContentTypeProblem } from "./http-checks.ts";
import { JoinLimiter, type JoinLimits } from "./join-limits.ts";
import type { PeerLink, RpcNode } from "./port.ts";

function txIdParam(req: FastifyRequest, reply: FastifyReply): { view: number; seqno: number } | FastifyReply {
  const text = (req.query as Record<string, unknown>).transaction_id;
  if (typeof text !== "string") {
    return sendError(reply, 400, "InvalidQueryParameterValue", "transaction_id=<view>.<seqno> is required");
  }
  try {
    return parseTxId(text);
  } catch (e) {
    if (e instanceof TxIdError) return sendError(reply, 400, "InvalidQueryParameterValue", e.message);
    throw e;
  }
}

/** The node id a join request names (SHA-256 of its key), or undefined for a malformed one. */
function joinerIdOf(body: unknown): string | undefined {
  const key = (body as { node_public_key?: unknown } | null)?.node_public_key;
  if (typeof key !== "string") return undefined;
  try {
    return nodeIdOf(key);
  } catch {
    return undefined;
  }
}

/**
 * A node's liveness as the answering node sees it: whether a node-to-node connection with it is
 * up either way, and when a frame last came from it. Backups hear from the primary (and it from
 * them) all the time; two backups only keep their connections up, so `last_contact` between them
 * is old while `state` is still `reachable`.
 */
function livenessOf(link: PeerLink | undefined, now: number) {
  if (!link) return { state: "not_a_peer", last_contact: null, ms_since_last_contact: null };
  const at = link.lastReceivedAt;
  return {
    state: link.connected || link.inbound ? "reachable" : "unreachable",
    last_contact: at === null ? null : new Date(at).toISOString(),
    ms_since_last_contact: at === null ? null : Math.max(0, now - at),
  };
}

/** Unauthenticated operator endpoints, and the built-in `/app` endpoints for status and receipts. */
export function registerOperatorRoutes(
  server: FastifyInstance,
  node: RpcNode,
  joinLimits?: JoinLimits,
): void {
  const joins = new JoinLimiter(joinLimits);
  server.get("/node/state", async () => {
    const status = node.status();
    return {
      node_id: node.nodeId,
      state: status.retired ? "Retired" : node.serviceInfo() ? "PartOfNetwork" : "Pending",
      last_signed_seqno: status.lastSignedSeqno,
      startup_seqno: status.startupSeqno,
      // When the certificates this node serves expire: members renew them by vote before then.
      node_certificate_valid_to: parseCertificate(node.nodeCertPem).notAfter.toISOString(),
      service_certificate_valid_to: parseCertificate(node.serviceCertPem).notAfter.toISOString(),
      // Certificates the ledger records for this node but that it does not serve, and why.
      certificates_not_served: status.certificateProblem
        ? {
            reason: status.certificateProblem.reason,
            served_once_valid: !status.certificateProblem.permanent,
          }
        : null,
    };
  });
  server.get("/node/commit", async () => ({ transaction_id: node.commitTxId() }));
  server.get("/node/version", async () => ({
    coco_version: node.settings.version,
    platform: node.settings.platform,
    // The virtual platform proves nothing about the code or the hardware.
    unsafe: node.settings.platform === "virtual",
  }));
  server.get("/node/network", async () => {
    const info = node.serviceInfo();
    return {
      service_certificate: node.serviceCertPem,
      service_status: info?.status ?? "Unknown",
      current_view: node.consensus()?.view ?? node.status().view,
      primary_id: node.primaryId,
    };
  });
  server.get("/node/network/nodes", async () => {
    const links = node.peerLinks?.() ?? {};
    const now = Date.now();
    return {
      nodes: node.nodes().map(([id, info]) => ({
        node_id: id,
        status: info.status,
        rpc_address: info.rpc_address,
        node_address: info.node_address ?? null,
        primary: id === node.primaryId,
        liveness: id === node.nodeId ? { state: "self" } : livenessOf(links[id], now),
      })),
    };
  });
  server.get("/node/consensus", async () => node.consensus() ?? {});
  server.get("/node/ready/app", async (_req, reply) =>
    node.serviceInfo()?.status === "Open"
      ? reply.status(204).send()
      : sendError(
          reply,
          503,
          "ServiceNotOpen",
          "the service is not open yet (or this node has not caught up)",
        ),
  );
  server.get("/node/ready/gov", async (_req, reply) =>
    node.serviceInfo()
      ? reply.status(204).send()
      : sendError(reply, 503, "NodeNotReady", "this node has not received the service's state yet"),
  );
  server.post("/node/join", async (req, reply) => {
    const problem = jsonContentTypeProblem(req.headers["content-type"]);
    if (problem) return sendError(reply, 415, "UnsupportedContentType", problem);
    let body: unknown;
    try {
      body = JSON.parse(
        Buffer.from((req.body as Uint8Array | undefined) ?? new Uint8Array()).toString("utf8"),
      );
    } catch (e) {
      return sendError(reply, 400, "InvalidInput", `join request is not valid JSON: ${(e as Error).message}`);
    }
    // New joins reaching the primary are limited; a recorded node's polls (answered without
    // writing) and joins a backup sends on to the primary are not.
    const joinerId = joinerIdOf(body);
    const isNew = node.isPrimary && !node.nodes().some(([id]) => id === joinerId);
    const address = addressKey(req.socket.remoteAddress);
    if (isNew) {
      const refusal = joins.admit(
        address,
        (id) => node.nodes().find(([nodeId]) => nodeId === id)?.[1].status === "Pending",
      );
      if (refusal) {
        reply.header("retry-after", String(refusal.retryAfterSeconds));
        return sendError(reply, 429, refusal.code, refusal.message);
      }
    }
    const answer = await node.join(body);
    if (answer.ok) {
      const admitted = answer.body as { node_id?: string; status?: string };
      if (isNew && admitted.status === "Pending" && admitted.node_id) {
        joins.recordPending(address, admitted.node_id);
      }
      return answer.body;
    }
    return reply
      .status(answer.status)
      .type("application/json")
      .send({ error: { code: answer.code, message: answer.message }, ...answer.extra });
  });

  server.get("/app/commit", async (_req, reply) => {
    const txid = node.commitTxId();
    reply.header(TX_HEADER, txid);
    return { transaction_id: txid };
  });
  server.get("/app/tx", async (req, reply) => {
    reply.header(TX_HEADER, node.commitTxId());
    const id = txIdParam(req, reply);
    if (!("view" in id)) return id;
    return { transaction_id: `${id.view}.${id.seqno}`, status: node.txStatus(id.view, id.seqno) };
  });
  const receipt =
    (format: "json" | "cose" | "negotiate") => async (req: FastifyRequest, reply: FastifyReply) => {
      reply.header(TX_HEADER, node.commitTxId());
      const auth = authenticate(["any_cert"], identifyPeer(req.raw.socket as TLSSocket, node.store));
      if (!auth.ok) return sendError(reply, auth.status, auth.code, auth.message);
      const id = txIdParam(req, reply);
      if (!("view" in id)) return id;
      const txid = `${id.view}.${id.seqno}`;
      const found = await node.receipt(id.view, id.seqno);
      if (found.status === "Pending") {
        return reply
          .status(202)
          .header("retry-after", "1")
          .send({ transaction_id: txid, status: "Pending", message: "not committed yet; retry shortly" });
      }
      if (found.status === "Unknown") {
        return sendError(reply, 404, "TransactionNotFound", `transaction ${txid} is not known to this node`);
      }
      if (found.status === "Invalid") {
        return sendError(
          reply,
          410,
          "TransactionInvalid",
          `transaction ${txid} was rolled back and will never commit`,
        );
      }
      if (found.status === "BeforeSnapshot") {
        return sendError(
          reply,
          404,
          "ReceiptNotAvailable",
          `transaction ${txid} is committed, but this node started from a snapshot at ${found.snapshotSeqno} and holds no proof for it; ask a node that holds the whole ledger`,
        );
      }
      if (found.status !== "ok") throw new Error("unreachable receipt status");
      // Signed under the service this one recovered: chain the node's certificate to the current
      // service certificate through its endorsement of the previous identity.
      const endorsement = node.serviceInfo()?.previous_service_identity_endorsement;
      if (endorsement && !verifyIssuedBy(found.json.cert, node.serviceCertPem).ok) {
        found.json.service_endorsements = [endorsement];
      }
      const accept = String(req.headers.accept ?? "");
      if (format === "cose" || (format === "negotiate" && accept.includes("application/cose"))) {
        return reply.type("application/cose").send(Buffer.from(found.cose));
      }
      return found.json;
    };
  server.get("/app/receipt", receipt("negotiate"));
  server.get("/app/receipt/cose", receipt("cose"));
}
