import { type AppAnswer, errorAnswer } from "./answers.ts";
import type { RpcNode } from "./port.ts";

/**
 * Respond-on-commit: holds the answer until the transaction is committed. Returns an error answer
 * if it cannot be (timeout, rolled back, node stopping), otherwise undefined.
 */
export async function waitForCommit(
  node: RpcNode,
  seqno: number,
  txid: string,
): Promise<AppAnswer | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), node.settings.commitWaitTimeoutMs);
  });
  try {
    const outcome = await Promise.race([node.waitForCommit(seqno).then(() => "committed" as const), timeout]);
    if (outcome === "timeout") {
      return errorAnswer(
        504,
        "CommitTimeout",
        `transaction ${txid} was not committed within ${node.settings.commitWaitTimeoutMs} ms; its status is at /app/tx?transaction_id=${txid}`,
        txid,
      );
    }
    return undefined;
  } catch (e) {
    return errorAnswer(503, "CommitUnavailable", `transaction ${txid}: ${(e as Error).message}`, txid);
  } finally {
    clearTimeout(timer);
  }
}
