import { type AppAnswer, errorAnswer } from "./answers.ts";
import type { RpcNode } from "./port.ts";

/**
 * Respond-on-commit: holds the answer until the transaction is committed. Returns an error answer
 * if it cannot be (timeout, rolled back, node stopping), otherwise undefined.
 *
 * One promise and one timer per waiting request (no race of two promises): this runs once for
 * every write a client waits on.
 */
export function waitForCommit(node: RpcNode, seqno: number, txid: string): Promise<AppAnswer | undefined> {
  const timeoutMs = node.settings.commitWaitTimeoutMs;
  return new Promise<AppAnswer | undefined>((resolve) => {
    const timer = setTimeout(() => {
      resolve(
        errorAnswer(
          504,
          "CommitTimeout",
          `transaction ${txid} was not committed within ${timeoutMs} ms; its status is at /app/tx?transaction_id=${txid}`,
          txid,
        ),
      );
    }, timeoutMs);
    let committed: Promise<void>;
    try {
      committed = node.waitForCommit(seqno);
    } catch (e) {
      clearTimeout(timer);
      resolve(unavailable(txid, e));
      return;
    }
    committed.then(
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
      (e: unknown) => {
        clearTimeout(timer);
        resolve(unavailable(txid, e));
      },
    );
  });
}

function unavailable(txid: string, e: unknown): AppAnswer {
  return errorAnswer(503, "CommitUnavailable", `transaction ${txid}: ${(e as Error).message}`, txid);
}
