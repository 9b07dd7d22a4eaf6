import https from "node:https";
import { createRequire } from "node:module";
import type { Wallet } from "ethers";
import { Agent, request } from "undici";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import type { Identity } from "../helpers/network.ts";

/** The web3 1.x instance web3js-quorum extends (its types describe only part of it). */
// biome-ignore lint/suspicious/noExplicitAny: web3js-quorum's extensions are untyped here
type QuorumWeb3 = any;

// web3 1.x and web3js-quorum are CommonJS packages whose typings do not describe the constructors.
const require = createRequire(import.meta.url);
const Web3 = require("web3");
const Web3Quorum = require("web3js-quorum");

let ptmTurn: Promise<unknown> = Promise.resolve();

/**
 * A Quorum application's client, unmodified: web3 1.x extended by web3js-quorum (GoQuorum mode),
 * configured for Coco by URL and TLS only. The JSON-RPC URL is the node's `/app/eth`, the
 * private transaction manager URL its `/app/tessera`.
 *
 * web3js-quorum 22.4.0 hands `tlsSettings.key`/`clcert` to its HTTP library (`request`) under
 * names that library ignores, so a client certificate set there is never sent; an application
 * gives its process's `https.globalAgent` the client certificate instead (docs/quorum.md). Three
 * parties share this test process, so each one's Tessera calls take turns with its own agent.
 */
export class QuorumClient {
  readonly web3: QuorumWeb3;
  private readonly agent: https.Agent;
  private readonly dispatcher: Agent;

  constructor(
    readonly node: RunningNode,
    serviceCert: string,
    readonly user: Identity,
    readonly wallet: Wallet,
    readonly tesseraKey: string,
  ) {
    const tls = { ca: serviceCert, cert: user.certPem, key: user.privateKeyPem };
    this.agent = new https.Agent({ ...tls, keepAlive: true });
    this.dispatcher = new Agent({ connect: tls });
    const base = `https://127.0.0.1:${node.port}/app`;
    const provider = new Web3.providers.HttpProvider(`${base}/eth`, {
      agent: { https: this.agent },
      headers: [{ name: "x-coco-wait", value: "commit" }],
    });
    this.web3 = new Web3Quorum(new Web3(provider), { privateUrl: `${base}/tessera` }, true);
  }

  /** Runs `fn` with this party's certificate on the process's global agent (Tessera calls). */
  private asParty<T>(fn: () => Promise<T>): Promise<T> {
    const run = ptmTurn.then(() => {
      https.globalAgent = this.agent;
      return fn();
    });
    ptmTurn = run.catch(() => undefined);
    return run;
  }

  /** A raw HTTP call under `/app`, for what the test checks beyond the client library. */
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

  /** A raw JSON-RPC call: the test reads answers as they are on the wire, unformatted. */
  // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are checked field by field
  async rpc(method: string, params: unknown[]): Promise<any> {
    const { text } = await this.http("POST", "/eth", { jsonrpc: "2.0", id: 1, method, params });
    const json = JSON.parse(text) as { result?: unknown; error?: { message: string } };
    if (json.error) throw new Error(json.error.message);
    return json.result;
  }

  private account() {
    return this.web3.eth.accounts.privateKeyToAccount(this.wallet.privateKey);
  }

  /**
   * GoQuorum's private transaction as web3js-quorum sends it (`priv.generateAndSendRawTransaction`
   * in Quorum mode: `storeraw`, a Homestead signature, v 37/38, `eth_sendRawPrivateTransaction`,
   * then the receipt); answers the transaction hash.
   */
  async sendPrivate(tx: { to?: string; data: string }, privateFor: string[]): Promise<string> {
    return this.asParty(async () => {
      const nonce = await this.web3.eth.getTransactionCount(this.wallet.address);
      const receipt = await this.web3.priv.generateAndSendRawTransaction({
        from: this.account(),
        to: tx.to,
        data: tx.data,
        value: 0,
        nonce,
        gasLimit: 8_000_000,
        gasPrice: 0,
        isPrivate: true,
        privateFrom: this.tesseraKey,
        privateFor,
      });
      return receipt.transactionHash as string;
    });
  }

  /**
   * GoQuorum's privacy marker flow, with web3js-quorum and web3: `storeraw`, the private
   * transaction signed and marked private, `eth_distributePrivateTransaction`, then a public
   * marker transaction to `eth_getPrivacyPrecompileAddress` carrying the answered key, sent with
   * `eth_sendSignedTransaction`. Answers the marker's hash and signed bytes.
   */
  async sendWithMarker(
    tx: { to?: string; data: string },
    privateFor: string[],
  ): Promise<{ hash: string; raw: string }> {
    return this.asParty(async () => {
      const { web3 } = this;
      const key = await web3.ptm.storeRaw({ data: tx.data, privateFrom: this.tesseraKey });
      const nonce = await web3.eth.getTransactionCount(this.wallet.address);
      const signed = await this.wallet.signTransaction({
        type: 0,
        to: tx.to ?? null,
        data: `0x${key}`,
        nonce,
        gasLimit: 8_000_000,
        gasPrice: 0,
      });
      const privateTx = `0x${web3.utils.setPrivate(signed).toString("hex")}`;
      const tmHash = await web3.eth.distributePrivateTransaction(privateTx, {
        privateFor,
        privateFrom: this.tesseraKey,
      });
      const precompile = await web3.eth.getPrivacyPrecompileAddress();
      const marker = await this.account().signTransaction({
        to: precompile,
        data: tmHash,
        nonce,
        gas: 100_000,
        gasPrice: 0,
        chainId: Number(await web3.eth.getChainId()),
      });
      const receipt = await web3.eth.sendSignedTransaction(marker.rawTransaction);
      return { hash: receipt.transactionHash as string, raw: marker.rawTransaction as string };
    });
  }

  async receipt(hash: string) {
    // An idle machine's 10 s, stretched by the load.
    const limit = budget(10_000);
    for (const end = Date.now() + limit; Date.now() < end; ) {
      const r = await this.rpc("eth_getTransactionReceipt", [hash]);
      if (r) return r;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error(`no receipt for ${hash} within ${limit} ms`);
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.dispatcher.close();
  }
}
