import { decodeRlp, encodeRlp, type Wallet } from "ethers";
import { Agent, request } from "undici";
import type { RunningNode } from "../../src/node/index.ts";
import type { Identity } from "../helpers/network.ts";

/**
 * The raw calls web3js-quorum makes for a GoQuorum private transaction
 * (`priv.generateAndSendRawTransaction` with `isQuorum`), with ethers for signing:
 * 1. `ptm.storeRaw`: `POST {privateUrl}/storeraw` `{payload: base64(data), from: privateFrom}`
 *    answers `{key}` (base64 of 64 bytes);
 * 2. sign a Homestead (pre-EIP-155) legacy transaction whose data is that key;
 * 3. `utils.setPrivate`: v 27/28 becomes 37/38;
 * 4. `eth_sendRawPrivateTransaction(raw, {privateFor})`;
 * 5. `priv.waitForTransactionReceipt`: `eth_getTransactionReceipt` until it answers.
 */
export class QuorumClient {
  private readonly dispatcher: Agent;

  constructor(
    readonly node: RunningNode,
    serviceCert: string,
    readonly user: Identity,
    readonly wallet: Wallet,
    readonly tesseraKey: string,
  ) {
    this.dispatcher = new Agent({
      connect: { ca: serviceCert, cert: user.certPem, key: user.privateKeyPem },
    });
  }

  async http(method: "GET" | "POST", path: string, body?: unknown) {
    const res = await request(`https://127.0.0.1:${this.node.port}/app${path}`, {
      method,
      dispatcher: this.dispatcher,
      headers: { "content-type": "application/json", "x-coco-wait": "commit" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, text };
  }

  // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are checked field by field
  async rpc(method: string, params: unknown[]): Promise<any> {
    const { text } = await this.http("POST", "/eth", { jsonrpc: "2.0", id: 1, method, params });
    const json = JSON.parse(text) as { result?: unknown; error?: { message: string } };
    if (json.error) throw new Error(json.error.message);
    return json.result;
  }

  async storeRaw(dataHex: string): Promise<string> {
    const payload = Buffer.from(dataHex.slice(2), "hex").toString("base64");
    const res = await this.http("POST", "/tessera/storeraw", { payload, from: this.tesseraKey });
    if (res.status !== 200) throw new Error(`storeraw: ${res.status} ${res.text}`);
    return `0x${Buffer.from((JSON.parse(res.text) as { key: string }).key, "base64").toString("hex")}`;
  }

  /** Stores the data, signs, marks private, sends; answers the transaction hash. */
  async sendPrivate(tx: { to?: string; data: string }, privateFor: string[]): Promise<string> {
    const key = await this.storeRaw(tx.data);
    const nonce = Number(BigInt(await this.rpc("eth_getTransactionCount", [this.wallet.address, "latest"])));
    const signed = await this.wallet.signTransaction({
      type: 0,
      to: tx.to ?? null,
      data: key,
      nonce,
      gasLimit: 8_000_000,
      gasPrice: 0,
    });
    return this.rpc("eth_sendRawPrivateTransaction", [setPrivate(signed), { privateFor }]);
  }

  async receipt(hash: string) {
    for (let i = 0; i < 200; i++) {
      const r = await this.rpc("eth_getTransactionReceipt", [hash]);
      if (r) return r;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error(`no receipt for ${hash}`);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

/** web3js-quorum's `utils.setPrivate`: v 28 (0x1c) becomes 38, anything else 37. */
export function setPrivate(raw: string): string {
  const fields = decodeRlp(raw) as string[];
  fields[6] = fields[6] === "0x1c" ? "0x26" : "0x25";
  return encodeRlp(fields);
}
