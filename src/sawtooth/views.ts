import type { Tx } from "../kv/index.ts";
import { decode, pb } from "./protos.ts";
import { BATCHES_MAP, type BatchRecord, scan } from "./tables.ts";

/** Sawtooth's JSON views of batches, transactions and blocks, built from what the KV holds. */
export interface RawTxn {
  header: Buffer;
  headerSignature: string;
  payload: Buffer;
}

export function transactionJson(t: RawTxn) {
  const h = decode<Record<string, unknown>>(pb.TransactionHeader, t.header);
  return {
    header: {
      batcher_public_key: h.batcherPublicKey,
      dependencies: h.dependencies,
      family_name: h.familyName,
      family_version: h.familyVersion,
      inputs: h.inputs,
      nonce: h.nonce,
      outputs: h.outputs,
      payload_sha512: h.payloadSha512,
      signer_public_key: h.signerPublicKey,
    },
    header_signature: t.headerSignature,
    payload: t.payload.toString("base64"),
  };
}

export function batchOf(record: BatchRecord): {
  header: Buffer;
  headerSignature: string;
  transactions: RawTxn[];
} {
  return decode(pb.Batch, Buffer.from(record.batch, "base64"));
}

export function batchJson(record: BatchRecord) {
  const b = batchOf(record);
  const h = decode<{ signerPublicKey: string; transactionIds: string[] }>(pb.BatchHeader, b.header);
  return {
    header: { signer_public_key: h.signerPublicKey, transaction_ids: h.transactionIds },
    header_signature: b.headerSignature,
    trace: false,
    transactions: b.transactions.map(transactionJson),
  };
}

export interface Block {
  num: number;
  id: string;
  previous: string;
  seqno: number;
  record: BatchRecord;
}

const GENESIS = "0".repeat(128);

/**
 * The chain: one block per committed batch, numbered in the order Coco committed them (the KV
 * version of the batch record is its seqno). A block's id is its batch's id.
 */
export function chain(tx: Tx): Block[] {
  const map = tx.map(BATCHES_MAP);
  const rows = scan(tx, BATCHES_MAP).map(([id, v]) => ({
    id,
    record: JSON.parse(new TextDecoder().decode(v)) as BatchRecord,
    seqno: map.getVersionOfPreviousWrite(new TextEncoder().encode(id)) ?? Number.MAX_SAFE_INTEGER,
  }));
  rows.sort((a, b) => a.seqno - b.seqno || (a.id < b.id ? -1 : 1));
  return rows.map((r, i) => ({ ...r, num: i, previous: i === 0 ? GENESIS : rows[i - 1]!.id }));
}

export function blockJson(block: Block, txid: string) {
  return {
    header: {
      batch_ids: [block.id],
      block_num: String(block.num),
      consensus: Buffer.from(`coco:${txid}`).toString("base64"),
      previous_block_id: block.previous,
      signer_public_key: "",
      state_root_hash: "",
    },
    header_signature: block.id,
    batches: [batchJson(block.record)],
  };
}
