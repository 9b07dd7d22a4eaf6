import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { App } from "../apps/index.ts";
import { createRpcServer } from "../rpc/index.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { CocoNode } from "./node.ts";

export interface RunningNode {
  node: CocoNode;
  server: FastifyInstance;
  /** The bound port (useful when the config asked for port 0). */
  port: number;
  stop(): Promise<void>;
}

/** Starts a node and its HTTPS endpoint (a new service opens once `openAtNodes` nodes are trusted). */
export async function runNode(
  config: NodeConfig,
  env: Environment,
  log: Logger,
  app: App | null,
): Promise<RunningNode> {
  const node = await CocoNode.start(config, env, log);
  const server = createRpcServer(node, app, log);
  try {
    await server.listen({ host: config.rpc.host, port: config.rpc.port });
  } catch (e) {
    await node.close();
    throw e;
  }
  const address = server.server.address();
  const port = typeof address === "object" && address ? address.port : config.rpc.port;
  log.info({ nodeId: node.nodeId, address: `${config.rpc.host}:${port}` }, "node is serving");
  let stopped: Promise<void> | undefined;
  return {
    node,
    server,
    port,
    stop() {
      stopped ??= (async () => {
        await server.close();
        await node.close();
      })();
      return stopped;
    },
  };
}
