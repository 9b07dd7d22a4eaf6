import { Agent as HttpsAgent } from "node:https";
import { FetchRequest, JsonRpcProvider } from "ethers";
import { Agent, fetch as undiciFetch } from "undici";
import { loggingApp } from "../../samples/logging/app.ts";
import { evmExecutorFor } from "../../src/evm/index.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import type { Identity } from "../helpers/network.ts";
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

/**
 * An unmodified ethers JsonRpcProvider: only its transport is configured, with an HTTPS agent
 * that pins the service certificate and presents the Coco user's client certificate.
 */
export function ethersProvider(node: RunningNode, serviceCertPem: string, user: Identity): JsonRpcProvider {
  const request = new FetchRequest(rpcUrl(node));
  const agent = new HttpsAgent({ ca: serviceCertPem, cert: user.certPem, key: user.privateKeyPem });
  request.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  return new JsonRpcProvider(request, undefined, { pollingInterval: 100, cacheTimeout: -1 });
}

/** A `fetch` for viem's http transport, with the same TLS settings (undici's Agent). */
export function userFetch(serviceCertPem: string, user: Identity): typeof fetch {
  const dispatcher = new Agent({
    connect: { ca: serviceCertPem, cert: user.certPem, key: user.privateKeyPem },
  });
  return ((url: string, init: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
