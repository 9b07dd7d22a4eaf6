import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";

/**
 * Sawtooth 1.2's protocol messages, read at run time from the .proto files the `sawtooth-sdk`
 * package ships, so Coco speaks exactly the wire format the SDKs speak.
 */
const FILES = [
  "validator.proto",
  "network.proto",
  "processor.proto",
  "state_context.proto",
  "events.proto",
  "transaction.proto",
  "batch.proto",
  "transaction_receipt.proto",
];

function load(): protobuf.Root {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve("sawtooth-sdk/package.json")), "protos");
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(dir, target.split("/").pop()!);
  root.loadSync(FILES.map((f) => join(dir, f)));
  root.resolveAll();
  return root;
}

const root = load();
const type = (name: string): protobuf.Type => root.lookupType(name);

export const pb = {
  Message: type("Message"),
  PingRequest: type("PingRequest"),
  PingResponse: type("PingResponse"),
  TpRegisterRequest: type("TpRegisterRequest"),
  TpRegisterResponse: type("TpRegisterResponse"),
  TpUnregisterRequest: type("TpUnregisterRequest"),
  TpUnregisterResponse: type("TpUnregisterResponse"),
  TpProcessRequest: type("TpProcessRequest"),
  TpProcessResponse: type("TpProcessResponse"),
  TpStateGetRequest: type("TpStateGetRequest"),
  TpStateGetResponse: type("TpStateGetResponse"),
  TpStateSetRequest: type("TpStateSetRequest"),
  TpStateSetResponse: type("TpStateSetResponse"),
  TpStateDeleteRequest: type("TpStateDeleteRequest"),
  TpStateDeleteResponse: type("TpStateDeleteResponse"),
  TpReceiptAddDataRequest: type("TpReceiptAddDataRequest"),
  TpReceiptAddDataResponse: type("TpReceiptAddDataResponse"),
  TpEventAddRequest: type("TpEventAddRequest"),
  TpEventAddResponse: type("TpEventAddResponse"),
  TransactionHeader: type("TransactionHeader"),
  Transaction: type("Transaction"),
  BatchHeader: type("BatchHeader"),
  Batch: type("Batch"),
  BatchList: type("BatchList"),
};

/** `Message.MessageType` values by name, from validator.proto. */
export const MessageType = root.lookupEnum("Message.MessageType").values as Record<string, number>;

export function encode(t: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  const err = t.verify(value);
  if (err) throw new Error(`${t.name}: ${err}`);
  return t.encode(t.create(value)).finish();
}

/** Decodes to a plain object: camelCase fields, bytes as Buffers, 64-bit ints as strings. */
export function decode<T = Record<string, unknown>>(t: protobuf.Type, bytes: Uint8Array): T {
  return t.toObject(t.decode(bytes), { longs: String, enums: Number, defaults: true }) as T;
}

export interface TransactionHeader {
  batcherPublicKey: string;
  dependencies: string[];
  familyName: string;
  familyVersion: string;
  inputs: string[];
  nonce: string;
  outputs: string[];
  payloadSha512: string;
  signerPublicKey: string;
}

export interface BatchHeader {
  signerPublicKey: string;
  transactionIds: string[];
}
