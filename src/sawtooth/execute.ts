import type { Tx } from "../kv/index.ts";
import type { CheckedBatch, CheckedTransaction } from "./batches.ts";
import { type ContextHandler, ProcessorGone, type ProcessorServer, responseMessage } from "./processors.ts";
import { decode, encode, MessageType, pb } from "./protos.ts";
import {
  BATCHES_MAP,
  INVALID_MAP,
  type InvalidRecord,
  key,
  STATE_MAP,
  type StateChange,
  TRANSACTIONS_MAP,
  type TransactionRecord,
} from "./tables.ts";

/** How often a transaction is retried after INTERNAL_ERROR or a processor that left. */
export const MAX_ATTEMPTS = 3;

/** No processor could run a transaction: the request fails and nothing is written. */
export class ProcessorUnavailable extends Error {}

type Outcome = { ok: true } | { ok: false; id: string; message: string; extendedData: Uint8Array };

const ADDRESS = /^[0-9a-f]{70}$/;

/**
 * Runs one batch against the transaction processors inside `tx`: every transaction's writes go to
 * an overlay, and only a batch whose every transaction is valid reaches the KV. An invalid batch
 * leaves only its INVALID status behind.
 */
export async function executeBatch(server: ProcessorServer, tx: Tx, batch: CheckedBatch): Promise<boolean> {
  const overlay = new Map<string, Uint8Array | null>();
  const records: Array<[string, TransactionRecord]> = [];
  for (const txn of batch.transactions) {
    const result = await runTransaction(server, tx, txn, overlay, batch);
    if ("invalid" in result) {
      const record: InvalidRecord = {
        invalid_transactions: [
          {
            id: result.invalid.id,
            message: result.invalid.message,
            extended_data: Buffer.from(result.invalid.extendedData).toString("base64"),
          },
        ],
      };
      tx.map(INVALID_MAP).set(key(batch.id), new TextEncoder().encode(JSON.stringify(record)));
      return false;
    }
    records.push([txn.id, result.record]);
  }
  const state = tx.map(STATE_MAP);
  for (const [address, value] of overlay) {
    if (value === null) state.delete(key(address));
    else state.set(key(address), value);
  }
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  for (const [id, record] of records) tx.map(TRANSACTIONS_MAP).set(key(id), json(record));
  tx.map(BATCHES_MAP).set(key(batch.id), json({ batch: Buffer.from(batch.bytes).toString("base64") }));
  return true;
}

function dependencyMissing(tx: Tx, txn: CheckedTransaction, batch: CheckedBatch): string | undefined {
  const earlier = new Set(batch.transactions.slice(0, batch.transactions.indexOf(txn)).map((t) => t.id));
  return txn.header.dependencies.find((d) => !earlier.has(d) && !tx.map(TRANSACTIONS_MAP).has(key(d)));
}

async function runTransaction(
  server: ProcessorServer,
  tx: Tx,
  txn: CheckedTransaction,
  batchOverlay: Map<string, Uint8Array | null>,
  batch: CheckedBatch,
): Promise<{ record: TransactionRecord } | { invalid: Outcome & { ok: false } }> {
  const invalid = (message: string) => ({
    invalid: { ok: false as const, id: txn.id, message, extendedData: new Uint8Array(0) },
  });
  if (tx.map(TRANSACTIONS_MAP).has(key(txn.id))) return invalid("the transaction was already committed");
  const missing = dependencyMissing(tx, txn, batch);
  if (missing) return invalid(`dependency ${missing} is not committed`);
  const tried = new Set<string>();
  let lastError = "";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const processor = server.pick(txn.header.familyName, txn.header.familyVersion, tried);
    if (!processor) break;
    const run = new TransactionContext(tx, txn, processor.namespaces, batchOverlay);
    const contextId = server.openContext(run);
    try {
      const request = encode(pb.TpProcessRequest, {
        header: pb.TransactionHeader.decode(txn.headerBytes),
        payload: txn.payload,
        signature: txn.id,
        contextId,
      });
      const answer = decode<{ status: number; message: string; extendedData: Buffer }>(
        pb.TpProcessResponse,
        await server.request(processor, MessageType.TP_PROCESS_REQUEST!, request),
      );
      if (answer.status === 1) {
        for (const [a, v] of run.writes) batchOverlay.set(a, v);
        return { record: run.record(batch.id) };
      }
      if (answer.status === 2) {
        return {
          invalid: { ok: false, id: txn.id, message: answer.message, extendedData: answer.extendedData },
        };
      }
      lastError = `INTERNAL_ERROR: ${answer.message}`;
    } catch (e) {
      if (!(e instanceof ProcessorGone)) throw e;
      tried.add(processor.key);
      lastError = e.message;
    } finally {
      server.closeContext(contextId);
    }
  }
  throw new ProcessorUnavailable(
    `no transaction processor of ${txn.header.familyName} ${txn.header.familyVersion} completed transaction ` +
      `${txn.id.slice(0, 16)}…${lastError ? ` (${lastError})` : ""}`,
  );
}

const within = (address: string, prefixes: string[]) => prefixes.some((p) => address.startsWith(p));

/** The state one transaction sees: the KV, then earlier transactions of the batch, then its own writes. */
class TransactionContext implements ContextHandler {
  readonly writes = new Map<string, Uint8Array | null>();
  private readonly changes: StateChange[] = [];
  private readonly events: TransactionRecord["events"] = [];
  private readonly data: string[] = [];

  constructor(
    private readonly tx: Tx,
    private readonly txn: CheckedTransaction,
    private readonly namespaces: string[],
    private readonly batchOverlay: Map<string, Uint8Array | null>,
  ) {}

  responseType(): number | undefined {
    return undefined;
  }

  private allowed(address: string, declared: string[]): boolean {
    return ADDRESS.test(address) && within(address, declared) && within(address, this.namespaces);
  }

  private read(address: string): Uint8Array | null {
    if (this.writes.has(address)) return this.writes.get(address)!;
    if (this.batchOverlay.has(address)) return this.batchOverlay.get(address)!;
    return this.tx.map(STATE_MAP).get(key(address)) ?? null;
  }

  handle(type: number, content: Uint8Array): Uint8Array {
    const h = this.txn.header;
    switch (type) {
      case MessageType.TP_STATE_GET_REQUEST: {
        const { addresses } = decode<{ addresses: string[] }>(pb.TpStateGetRequest, content);
        if (!addresses.every((a) => this.allowed(a, h.inputs))) return this.refuse(type);
        const entries = addresses.map((address) => ({
          address,
          data: this.read(address) ?? new Uint8Array(0),
        }));
        return encode(pb.TpStateGetResponse, { status: 1, entries });
      }
      case MessageType.TP_STATE_SET_REQUEST: {
        const { entries } = decode<{ entries: Array<{ address: string; data: Buffer }> }>(
          pb.TpStateSetRequest,
          content,
        );
        if (!entries.every((e) => this.allowed(e.address, h.outputs))) return this.refuse(type);
        for (const e of entries) {
          this.writes.set(e.address, new Uint8Array(e.data));
          this.changes.push({ address: e.address, value: e.data.toString("base64"), type: "SET" });
        }
        return encode(pb.TpStateSetResponse, { status: 1, addresses: entries.map((e) => e.address) });
      }
      case MessageType.TP_STATE_DELETE_REQUEST: {
        const { addresses } = decode<{ addresses: string[] }>(pb.TpStateDeleteRequest, content);
        if (!addresses.every((a) => this.allowed(a, h.outputs))) return this.refuse(type);
        const deleted = addresses.filter((a) => this.read(a) !== null);
        for (const a of deleted) {
          this.writes.set(a, null);
          this.changes.push({ address: a, value: "", type: "DELETE" });
        }
        return encode(pb.TpStateDeleteResponse, { status: 1, addresses: deleted });
      }
      case MessageType.TP_RECEIPT_ADD_DATA_REQUEST: {
        const { data } = decode<{ data: Buffer }>(pb.TpReceiptAddDataRequest, content);
        this.data.push(data.toString("base64"));
        return encode(pb.TpReceiptAddDataResponse, { status: 1 });
      }
      case MessageType.TP_EVENT_ADD_REQUEST: {
        const { event } = decode<{
          event: { eventType: string; attributes: Array<{ key: string; value: string }>; data: Buffer };
        }>(pb.TpEventAddRequest, content);
        this.events.push({
          event_type: event.eventType,
          attributes: event.attributes.map((a) => ({ key: a.key, value: a.value })),
          data: event.data.toString("base64"),
        });
        return encode(pb.TpEventAddResponse, { status: 1 });
      }
    }
    return this.refuse(type);
  }

  private refuse(type: number): Uint8Array {
    const m = responseMessage(type);
    return m ? encode(m, { status: 2 }) : new Uint8Array(0);
  }

  record(batchId: string): TransactionRecord {
    return { batch_id: batchId, state_changes: this.changes, events: this.events, data: this.data };
  }
}
