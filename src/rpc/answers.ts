/** The transaction id every `/app` answer names, as `<view>.<seqno>` (CCF's header). */
export const TX_HEADER = "x-ms-ccf-transaction-id";
/** `x-coco-wait: commit` asks to be answered only once the transaction is committed. */
export const WAIT_HEADER = "x-coco-wait";
/** `x-coco-read: linearizable` asks for a read that reflects every write committed before it. */
export const READ_HEADER = "x-coco-read";

/** An answer, ready to be written to HTTP or sent back to the backup that forwarded the call. */
export interface AppAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Coco's error body, `{"error": {"code", "message"}}`, naming the transaction when known. */
export function errorAnswer(status: number, code: string, message: string, txid?: string): AppAnswer {
  return {
    status,
    headers: { "content-type": "application/json", ...(txid ? { [TX_HEADER]: txid } : {}) },
    // Buffer.from(string) takes small strings' bytes from a shared pool: no allocation of its own.
    body: Buffer.from(JSON.stringify({ error: { code, message } })),
  };
}
