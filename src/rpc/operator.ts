import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseTxId, TxIdError } from "../kv/index.ts";
import { COCO_VERSION, type CocoNode } from "../node/node.ts";
import { authenticate, identifyPeer } from "./auth.ts";
import { TX_HEADER } from "./commit-wait.ts";
import { sendError } from "./errors.ts";

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

function commitTxId(node: CocoNode): string {
  return node.state.txIdOf(node.state.commitSeqno);
}

/** Unauthenticated operator endpoints, and the built-in `/app` endpoints for status and receipts. */
export function registerOperatorRoutes(server: FastifyInstance, node: CocoNode): void {
  server.get("/node/state", async () => ({
    node_id: node.nodeId,
    state: "PartOfNetwork",
    last_signed_seqno: node.state.lastSignatureSeqno,
    startup_seqno: node.startupSeqno,
  }));
  server.get("/node/commit", async () => ({ transaction_id: commitTxId(node) }));
  server.get("/node/version", async () => ({
    coco_version: COCO_VERSION,
    platform: "virtual",
    unsafe: true,
  }));
  server.get("/node/network", async () => {
    const info = node.serviceInfo();
    return {
      service_certificate: info.cert,
      service_status: info.status,
      current_view: node.state.view,
      primary_id: node.nodeId,
    };
  });
  server.get("/node/ready/app", async (_req, reply) =>
    node.serviceInfo().status === "Open"
      ? reply.status(204).send()
      : sendError(reply, 503, "ServiceNotOpen", "the service is not open yet"),
  );
  server.get("/node/ready/gov", async (_req, reply) => reply.status(204).send());

  server.get("/app/commit", async (_req, reply) => {
    const txid = commitTxId(node);
    reply.header(TX_HEADER, txid);
    return { transaction_id: txid };
  });
  server.get("/app/tx", async (req, reply) => {
    reply.header(TX_HEADER, commitTxId(node));
    const id = txIdParam(req, reply);
    if (!("view" in id)) return id;
    return { transaction_id: `${id.view}.${id.seqno}`, status: node.state.txStatus(id.view, id.seqno) };
  });
  const receipt =
    (format: "json" | "cose" | "negotiate") => async (req: FastifyRequest, reply: FastifyReply) => {
      reply.header(TX_HEADER, commitTxId(node));
      const auth = authenticate(["any_cert"], identifyPeer(req.raw.socket as TLSSocket, node.state.store));
      if (!auth.ok) return sendError(reply, auth.status, auth.code, auth.message);
      const id = txIdParam(req, reply);
      if (!("view" in id)) return id;
      const txid = `${id.view}.${id.seqno}`;
      const found = node.state.receipt(id.view, id.seqno);
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
      if (found.status !== "ok") throw new Error("unreachable receipt status");
      const accept = String(req.headers.accept ?? "");
      if (format === "cose" || (format === "negotiate" && accept.includes("application/cose"))) {
        return reply.type("application/cose").send(Buffer.from(found.cose));
      }
      return found.json;
    };
  server.get("/app/receipt", receipt("negotiate"));
  server.get("/app/receipt/cose", receipt("cose"));
}
