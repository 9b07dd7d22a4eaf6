import { createHash } from "node:crypto";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { type BatchHeader, decode, pb, type TransactionHeader } from "./protos.ts";

/** A transaction of a submitted batch, with its header decoded and its signature checked. */
export interface CheckedTransaction {
  id: string;
  header: TransactionHeader;
  headerBytes: Uint8Array;
  payload: Uint8Array;
}

export interface CheckedBatch {
  id: string;
  header: BatchHeader;
  /** The batch as submitted (protobuf `Batch`), kept for the block and transaction views. */
  bytes: Uint8Array;
  transactions: CheckedTransaction[];
}

/** A submission that breaks Sawtooth's structural rules: the whole BatchList is refused. */
export class InvalidBatchError extends Error {}

const HEX_SIGNATURE = /^[0-9a-f]{128}$/;
const HEX_PUBLIC_KEY = /^(02|03)[0-9a-f]{64}$/;
const ADDRESS_PREFIX = /^[0-9a-f]{0,70}$/;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();
export const sha512Hex = (b: Uint8Array) => createHash("sha512").update(b).digest("hex");

/** Sawtooth's signatures: secp256k1 ECDSA over SHA-256 of the header bytes, compact r||s hex. */
function verifySignature(signatureHex: string, message: Uint8Array, publicKeyHex: string): boolean {
  if (!HEX_SIGNATURE.test(signatureHex) || !HEX_PUBLIC_KEY.test(publicKeyHex)) return false;
  try {
    return secp256k1.verify(
      Buffer.from(signatureHex, "hex"),
      sha256(message),
      Buffer.from(publicKeyHex, "hex"),
      { prehash: false },
    );
  } catch {
    return false;
  }
}

interface RawBatch {
  header: Uint8Array;
  headerSignature: string;
  transactions: Array<{ header: Uint8Array; headerSignature: string; payload: Uint8Array }>;
}

/** Decodes a `BatchList` and checks every signature and header rule Sawtooth's validator checks. */
export function parseBatchList(body: Uint8Array): CheckedBatch[] {
  let list: { batches: RawBatch[] };
  try {
    list = decode(pb.BatchList, body);
  } catch (e) {
    throw new InvalidBatchError(`the body is not a protobuf BatchList: ${(e as Error).message}`);
  }
  if (list.batches.length === 0) throw new InvalidBatchError("the BatchList holds no batches");
  return list.batches.map((raw) => checkBatch(raw));
}

function checkBatch(raw: RawBatch): CheckedBatch {
  const id = raw.headerSignature;
  let header: BatchHeader;
  try {
    header = decode<BatchHeader>(pb.BatchHeader, raw.header);
  } catch {
    throw new InvalidBatchError(`batch ${id}: the header is not a BatchHeader`);
  }
  if (!verifySignature(id, raw.header, header.signerPublicKey)) {
    throw new InvalidBatchError(`batch ${id}: the header signature does not verify`);
  }
  const ids = raw.transactions.map((t) => t.headerSignature);
  if (ids.length === 0) throw new InvalidBatchError(`batch ${id}: it holds no transactions`);
  if (ids.length !== header.transactionIds.length || ids.some((t, i) => t !== header.transactionIds[i])) {
    throw new InvalidBatchError(`batch ${id}: its transactions do not match the header's transaction_ids`);
  }
  if (new Set(ids).size !== ids.length) {
    throw new InvalidBatchError(`batch ${id}: a transaction appears twice`);
  }
  const transactions = raw.transactions.map((t) => checkTransaction(id, header, t));
  const bytes = pb.Batch.encode(pb.Batch.create(raw)).finish();
  return { id, header, bytes, transactions };
}

function checkTransaction(
  batchId: string,
  batch: BatchHeader,
  raw: RawBatch["transactions"][number],
): CheckedTransaction {
  const id = raw.headerSignature;
  const where = `batch ${batchId}, transaction ${id}`;
  let header: TransactionHeader;
  try {
    header = decode<TransactionHeader>(pb.TransactionHeader, raw.header);
  } catch {
    throw new InvalidBatchError(`${where}: the header is not a TransactionHeader`);
  }
  if (!verifySignature(id, raw.header, header.signerPublicKey)) {
    throw new InvalidBatchError(`${where}: the header signature does not verify`);
  }
  if (header.batcherPublicKey !== batch.signerPublicKey) {
    throw new InvalidBatchError(`${where}: batcher_public_key is not the batch's signer`);
  }
  if (header.payloadSha512 !== sha512Hex(raw.payload)) {
    throw new InvalidBatchError(`${where}: payload_sha512 does not match the payload`);
  }
  if (header.familyName === "" || header.familyVersion === "") {
    throw new InvalidBatchError(`${where}: family_name and family_version are required`);
  }
  for (const a of [...header.inputs, ...header.outputs]) {
    if (!ADDRESS_PREFIX.test(a)) throw new InvalidBatchError(`${where}: ${a} is not an address or prefix`);
  }
  for (const d of header.dependencies) {
    if (!HEX_SIGNATURE.test(d))
      throw new InvalidBatchError(`${where}: dependency ${d} is not a transaction id`);
  }
  return { id, header, headerBytes: raw.header, payload: raw.payload };
}
