// CCF's historical adapter for `mode: historical` endpoints (the transaction named by the
// x-ms-ccf-transaction-id header), and `ccf.historical.getStateRange` over the node's ledger.
import type { JsHistoricalState } from "../js/index.ts";
import { parseTxId, TxIdError } from "../kv/index.ts";
import type { JsAppHost } from "./host.ts";
import { writeSetKv } from "./kv.ts";

export const TX_ID_HEADER = "x-ms-ccf-transaction-id";
/** The most seqnos one getStateRange call may ask for. */
export const MAX_STATE_RANGE = 10_000;

export interface PlainAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

const encoder = new TextEncoder();

function jsonError(status: number, code: string, message: string): PlainAnswer {
  return {
    status,
    headers: { "content-type": "application/json" },
    body: encoder.encode(JSON.stringify({ error: { code, message } })),
  };
}

function stillFetching(txid: string): PlainAnswer {
  return {
    status: 202,
    headers: { "content-type": "text/plain", "retry-after": "3" },
    body: encoder.encode(`Historical transaction ${txid} is not yet available, fetching now`),
  };
}

/** The historical state a request names, or the answer that ends it before the handler runs. */
export function historicalStateFor(
  host: JsAppHost,
  header: string | string[] | undefined,
): { state: JsHistoricalState } | { answer: PlainAnswer } {
  if (typeof header !== "string") {
    return {
      answer: jsonError(400, "MissingRequiredHeader", `this endpoint needs the header ${TX_ID_HEADER}`),
    };
  }
  let id: { view: number; seqno: number };
  try {
    id = parseTxId(header);
  } catch (e) {
    if (!(e instanceof TxIdError)) throw e;
    return {
      answer: jsonError(400, "InvalidHeaderValue", `${TX_ID_HEADER} must be <view>.<seqno>: ${e.message}`),
    };
  }
  const txid = `${id.view}.${id.seqno}`;
  const status = host.txStatus(id.view, id.seqno);
  if (status === "Invalid") {
    return {
      answer: jsonError(404, "TransactionInvalid", `transaction ${txid} does not exist and never will`),
    };
  }
  if (status !== "Committed") {
    return {
      answer: jsonError(
        404,
        "TransactionPendingOrUnknown",
        `transaction ${txid} is not committed or not known to this node`,
      ),
    };
  }
  const found = host.historicalState(id.seqno);
  if (found.status === "fetching" || (found.status === "ok" && found.receipt === null)) {
    return { answer: stillFetching(txid) };
  }
  if (found.status === "unavailable") {
    return { answer: jsonError(404, "TransactionNotAvailable", found.reason) };
  }
  return { state: { transactionId: txid, receipt: found.receipt, kv: writeSetKv(found.writeSet) } };
}

function seqnoArg(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new TypeError(`ccf.historical.getStateRange: ${what} must be a positive integer`);
  }
  return value as number;
}

/** `ccf.historical.getStateRange`: every state from `start` to `end`, or null while fetching. */
export function stateRange(host: JsAppHost, start: unknown, end: unknown): JsHistoricalState[] | null {
  const from = seqnoArg(start, "startSeqno");
  const to = seqnoArg(end, "endSeqno");
  if (to < from) throw new RangeError("ccf.historical.getStateRange: endSeqno is before startSeqno");
  if (to - from + 1 > MAX_STATE_RANGE) {
    throw new RangeError(`ccf.historical.getStateRange: at most ${MAX_STATE_RANGE} seqnos per call`);
  }
  const last = host.lastCommittedTxId().seqno;
  if (to > last) throw new RangeError(`ccf.historical.getStateRange: ${to} is not committed yet`);
  const states: JsHistoricalState[] = [];
  let fetching = false;
  // Every seqno is asked for, so that the host fetches the whole range at once.
  for (let seqno = from; seqno <= to; seqno++) {
    const found = host.historicalState(seqno);
    if (found.status === "fetching") fetching = true;
    else if (found.status === "unavailable") throw new Error(found.reason);
    else if (!fetching) {
      states.push({
        transactionId: found.transactionId,
        receipt: found.receipt,
        kv: writeSetKv(found.writeSet),
      });
    }
  }
  return fetching ? null : states;
}
