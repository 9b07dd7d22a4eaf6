/**
 * Transaction IDs: `<view>.<seqno>`, as clients see them in `x-ms-ccf-transaction-id`.
 * The view is the consensus term in which the primary assigned the seqno; the seqno is the
 * transaction's position in the ledger, contiguous from 1.
 */
export interface TxId {
  view: number;
  seqno: number;
}

const TXID_PATTERN = /^(0|[1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,15})$/;

export class TxIdError extends Error {}

/** Parses `v.s`; refuses anything else (signs, spaces, leading zeros, values past 2^53). */
export function parseTxId(text: string): TxId {
  const match = TXID_PATTERN.exec(text);
  if (!match) {
    throw new TxIdError(
      `transaction id must be <view>.<seqno> with decimal integers, got ${JSON.stringify(text)}`,
    );
  }
  const view = Number(match[1]);
  const seqno = Number(match[2]);
  if (!Number.isSafeInteger(view) || !Number.isSafeInteger(seqno)) {
    throw new TxIdError(`transaction id ${text} is out of range`);
  }
  return { view, seqno };
}

export function formatTxId(id: TxId): string {
  return `${id.view}.${id.seqno}`;
}
