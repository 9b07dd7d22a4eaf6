import { Agent as HttpsAgent } from "node:https";
import { FetchRequest, type JsonRpcApiProviderOptions, JsonRpcProvider } from "ethers";
import { Agent, fetch as undiciFetch } from "undici";
import { loggingApp } from "../../samples/logging/app.ts";
import type { GovClient } from "../../src/client/index.ts";
import { evmExecutorFor } from "../../src/evm/index.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { type Identity, passProposal } from "../helpers/network.ts";
import { freePort } from "../helpers/ports.ts";

/** A Coco cluster whose nodes serve the EVM executor next to the logging app. */
export async function evmCluster(nodes = 3): Promise<Cluster> {
  const cluster = await Cluster.create();
  cluster.start = async (name, { rpc, ...settings }) => {
    const config = parseConfig(
      {
        dir: name,
        rpc: { address: `127.0.0.1:${await freePort()}`, ...(rpc as object | undefined) },
        nodeAddress: `127.0.0.1:${await freePort()}`,
        app: "logging",
        evm: true,
        log: { level: "error" },
        ...settings,
      },
      cluster.dir,
    );
    const logger = createLogger({ level: process.env.COCO_TEST_LOG ?? "error", format: "json" });
    const evm = evmExecutorFor(realEnvironment);
    const running = await runNode(config, realEnvironment, logger, [loggingApp, evm.executor]);
    evm.bind(running.node);
    cluster.nodes.push(running);
    return running;
  };
  const first = await cluster.startService({ openAtNodes: nodes });
  await Promise.all(Array.from({ length: nodes - 1 }, (_, i) => cluster.join(`n${i + 1}`, first)));
  await cluster.untilOpen();
  return cluster;
}

export function rpcUrl(node: RunningNode): string {
  return `https://127.0.0.1:${node.port}/app/eth`;
}

export interface ProviderOptions {
  /** Sends `x-coco-wait: commit`: a transaction hash that comes back is committed, never rolled back. */
  waitForCommit?: boolean;
  /** False: a failed request is not retried by ethers (default: ethers' own retries). */
  retry?: boolean;
  /** ethers' provider options (default: polled every 100 ms, no response cache). */
  ethers?: JsonRpcApiProviderOptions;
}

/** For tests that change the primary: answered on commit, polled every 100 ms, the network fixed. */
export const ON_COMMIT: ProviderOptions = {
  waitForCommit: true,
  ethers: { pollingInterval: 100, staticNetwork: true },
};

/**
 * An unmodified ethers JsonRpcProvider: only its transport is configured, with an HTTPS agent
 * that pins the service certificate and presents the Coco user's client certificate.
 */
export function ethersProvider(
  node: RunningNode,
  serviceCertPem: string,
  user: Identity,
  options: ProviderOptions = {},
): JsonRpcProvider {
  const request = new FetchRequest(rpcUrl(node));
  const agent = new HttpsAgent({ ca: serviceCertPem, cert: user.certPem, key: user.privateKeyPem });
  request.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  if (options.waitForCommit) request.setHeader("x-coco-wait", "commit");
  if (options.retry === false) request.retryFunc = async () => false;
  const ethersOptions = options.ethers ?? { pollingInterval: 100, cacheTimeout: -1 };
  return new JsonRpcProvider(request, undefined, ethersOptions);
}

/** Binds Ethereum accounts to a Coco user (set_user with `ethereum_addresses`), passed by governance. */
export async function bindAccounts(gov: GovClient, user: Identity, addresses: string[]): Promise<void> {
  await passProposal(gov, "set_user", { cert: user.certPem, user_data: { ethereum_addresses: addresses } });
}

/** Waits until `node` (through `via`) knows the binding: an eth_call from `address` is accepted. */
export async function untilBound(cluster: Cluster, via: JsonRpcProvider, address: string, what: string) {
  await cluster.until(what, async () => {
    try {
      await via.send("eth_call", [{ from: address, to: address }, "latest"]);
      return true;
    } catch {
      return false;
    }
  });
}

/** Kills the primary (stopped in-process: its sockets close, it never answers again) and waits for the next. */
export async function killPrimary(cluster: Cluster): Promise<void> {
  const old = cluster.primary()!;
  await old.stop();
  cluster.nodes.splice(cluster.nodes.indexOf(old), 1);
  await cluster.until("a new primary is elected", () => cluster.primary() !== undefined, 60_000);
}

/** The first write after an election may meet a node that has not yet heard who leads: retried. */
export async function retryWhileElecting(write: () => Promise<void>): Promise<void> {
  // An election stretches with the machine's load.
  const deadline = Date.now() + budget(30_000);
  for (;;) {
    try {
      return await write();
    } catch (e) {
      if (Date.now() > deadline || !/NotPrimary|primary|503|ECONNREFUSED/i.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A `fetch` for viem's http transport, with the same TLS settings (undici's Agent). */
export function userFetch(serviceCertPem: string, user: Identity): typeof fetch {
  const dispatcher = new Agent({
    connect: { ca: serviceCertPem, cert: user.certPem, key: user.privateKeyPem },
  });
  return ((url: string, init: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
