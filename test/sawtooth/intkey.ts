import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { decode as cborDecode, encode as cborEncode } from "cbor-x";

/**
 * An intkey-style transaction family written against sawtooth-sdk the way any Sawtooth developer
 * writes one (TransactionHandler + TransactionProcessor), and a client that signs batches with
 * sawtooth-sdk/signing. The SDK is CommonJS without types, so it is loaded through require.
 */
// biome-ignore lint/suspicious/noExplicitAny: the SDK ships no type declarations
type Any = any;
const require = createRequire(import.meta.url);
const sdk: Any = require("sawtooth-sdk");
const { TransactionHandler }: Any = require("sawtooth-sdk/processor/handler");
const { InvalidTransaction }: Any = require("sawtooth-sdk/processor/exceptions");
const { TransactionProcessor }: Any = require("sawtooth-sdk/processor");
const { createContext, CryptoFactory }: Any = require("sawtooth-sdk/signing");

const sha512 = (s: string | Uint8Array) => createHash("sha512").update(s).digest("hex");
export const FAMILY = "intkey";
export const NAMESPACE = sha512(FAMILY).slice(0, 6);
export const addressOf = (name: string) => NAMESPACE + sha512(name).slice(-64);

class IntkeyHandler extends TransactionHandler {
  /** Called before each transaction: lets a test make the processor die mid-request. */
  onApply: () => void = () => {};

  constructor() {
    super(FAMILY, ["1.0"], [NAMESPACE]);
  }

  async apply(request: Any, context: Any): Promise<void> {
    this.onApply();
    let payload: { Verb: string; Name: string; Value: number };
    try {
      payload = cborDecode(request.payload);
    } catch {
      throw new InvalidTransaction("the payload is not CBOR");
    }
    const { Verb, Name, Value } = payload;
    if (!Number.isInteger(Value) || Value < 0) throw new InvalidTransaction("Value must be a natural number");
    const address = addressOf(Name);
    const found = await context.getState([address]);
    const raw = found[address];
    const current: Record<string, number> = raw && raw.length > 0 ? cborDecode(raw) : {};
    const now = current[Name];
    let next: number;
    if (Verb === "set") {
      if (now !== undefined) throw new InvalidTransaction(`${Name} is already set`);
      next = Value;
    } else if (Verb === "inc" || Verb === "dec") {
      if (now === undefined) throw new InvalidTransaction(`${Name} is not set`);
      next = Verb === "inc" ? now + Value : now - Value;
      if (next < 0) throw new InvalidTransaction(`${Name} would go below zero`);
    } else {
      throw new InvalidTransaction(`unknown verb ${Verb}`);
    }
    await context.setState({ [address]: cborEncode({ ...current, [Name]: next }) });
    await context.addReceiptData(Buffer.from(`${Name}=${next}`));
    await context.addEvent("intkey/update", [["name", Name]], Buffer.from(String(next)));
  }
}

/**
 * Starts a processor connected to `url`; `stop` closes its socket (as if the process died). With
 * `dieMidRequest`, it closes its socket on receiving a transaction, before answering.
 */
export function startProcessor(url: string, opts: { dieMidRequest?: boolean } = {}): { stop(): void } {
  const tp = new TransactionProcessor(url);
  const handler = new IntkeyHandler();
  const stop = () => {
    if (tp._stream._socket) tp._stream.close();
  };
  if (opts.dieMidRequest) handler.onApply = stop;
  tp.addHandler(handler);
  tp.start();
  return { stop };
}

export class IntkeyClient {
  readonly signer: Any;
  constructor() {
    const context = createContext("secp256k1");
    this.signer = new CryptoFactory(context).newSigner(context.newRandomPrivateKey());
  }

  get publicKey(): string {
    return this.signer.getPublicKey().asHex();
  }

  transaction(Verb: string, Name: string, Value: number, dependencies: string[] = []): Any {
    const { TransactionHeader, Transaction } = sdk.protobuf;
    const payload = cborEncode({ Verb, Name, Value });
    const header = TransactionHeader.encode({
      familyName: FAMILY,
      familyVersion: "1.0",
      inputs: [addressOf(Name)],
      outputs: [addressOf(Name)],
      signerPublicKey: this.publicKey,
      batcherPublicKey: this.publicKey,
      dependencies,
      nonce: Math.random().toString(36),
      payloadSha512: sha512(payload),
    }).finish();
    return Transaction.create({ header, headerSignature: this.signer.sign(header), payload });
  }

  batch(transactions: Any[]): Any {
    const { BatchHeader, Batch } = sdk.protobuf;
    const header = BatchHeader.encode({
      signerPublicKey: this.publicKey,
      transactionIds: transactions.map((t: Any) => t.headerSignature),
    }).finish();
    return Batch.create({ header, headerSignature: this.signer.sign(header), transactions });
  }

  batchList(batches: Any[]): Uint8Array {
    return sdk.protobuf.BatchList.encode({ batches }).finish();
  }
}

export const decodeIntkey = (base64: string): Record<string, number> =>
  cborDecode(Buffer.from(base64, "base64"));
