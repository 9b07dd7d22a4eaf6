import type { FastifyReply, FastifyRequest } from "fastify";
import type { CocoNode } from "../node/node.ts";
import { sendError } from "./errors.ts";

export const TX_HEADER = "x-ms-ccf-transaction-id";
export const WAIT_HEADER = "x-coco-wait";

export function wantsCommitWait(req: FastifyRequest): "commit" | "none" | "invalid" {
  const value = req.headers[WAIT_HEADER];
  if (value === undefined) return "none";
  return value === "commit" ? "commit" : "invalid";
}

/**
 * Respond-on-commit: holds the answer until the transaction is committed. Returns a sent error
 * reply if it cannot be (timeout or node stopping), otherwise undefined.
 */
export async function waitForCommitOrReply(
  node: CocoNode,
  seqno: number,
  txid: string,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  node.wantCommit();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), node.config.commitWaitTimeoutMs);
  });
  try {
    const outcome = await Promise.race([
      node.state.waitForCommit(seqno).then(() => "committed" as const),
      timeout,
    ]);
    if (outcome === "timeout") {
      return sendError(
        reply,
        504,
        "CommitTimeout",
        `transaction ${txid} was not committed within ${node.config.commitWaitTimeoutMs} ms; its status is at /app/tx?transaction_id=${txid}`,
      );
    }
    return undefined;
  } catch (e) {
    return sendError(reply, 503, "CommitUnavailable", `transaction ${txid}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
