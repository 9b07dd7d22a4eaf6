import type { Socket } from "node:net";
import type { Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { type Executor, ExecutorRegistry } from "../apps/index.ts";
import { CLIENT_TLS_POLICY, createRpcServer } from "../rpc/index.ts";
import type { ProviderSeams } from "../tee/index.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { CocoNode } from "./node.ts";
import { rpcPort } from "./rpc-port.ts";

/** How long a stopping node lets requests under way finish before it closes their connections. */
const STOP_GRACE_MS = 1000;
/** After the grace, how long the answers to aborted commit waits get to reach their clients. */
const STOP_ANSWER_MS = 200;

export interface RunningNode {
  node: CocoNode;
  server: FastifyInstance;
  /** The bound port (useful when the config asked for port 0). */
  port: number;
  stop(): Promise<void>;
}

/**
 * In-process only: what tests hand a node that no config file or CLI flag can set. The
 * attestation seams (a fake configfs-tsm file system) serve both the join and
 * `/node/attestations/self`.
 */
export interface NodeSeams {
  attestationSeams?: ProviderSeams;
  /**
   * Called, instead of exiting the process, once the node has fail-stopped after a failed write
   * and stopped serving.
   */
  onFailStop?: (error: Error) => void;
}

/** The exit code of a node that stopped because a write failed (EX_IOERR, sysexits.h). */
export const FAIL_STOP_EXIT_CODE = 74;

/**
 * Starts a node and its HTTPS endpoint, serving `apps` (executors, asked in order) under `/app`.
 * A new service opens once `openAtNodes` nodes are trusted.
 */
export async function runNode(
  config: NodeConfig,
  env: Environment,
  log: Logger,
  apps: Executor | Executor[] | null,
  seams: NodeSeams = {},
): Promise<RunningNode> {
  const executors = new ExecutorRegistry(apps === null ? [] : Array.isArray(apps) ? apps : [apps]);
  const node = await CocoNode.start(config, env, log, seams);
  const server = createRpcServer(rpcPort(node), executors, log, {
    key: node.identity.nodePrivateKeyPem,
    cert: node.identity.nodeCertPem,
  });
  // Certificates renewed by governance serve new client connections from then on.
  node.onCertificatesRenewed(({ nodeCertPem }) =>
    (server.server as unknown as TlsServer).setSecureContext({
      key: node.identity.nodePrivateKeyPem,
      cert: nodeCertPem,
      ...CLIENT_TLS_POLICY,
    }),
  );
  // Every client connection, so stopping can end the ones that linger (idle or half-open).
  const sockets = new Set<Socket>();
  server.server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
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
  const running: RunningNode = {
    node,
    server,
    port,
    stop() {
      stopped ??= (async () => {
        const closing = server.close();
        // Requests under way get a moment to finish (new ones are answered 503 NodeStopping).
        await Promise.race([closing, new Promise((r) => setTimeout(r, STOP_GRACE_MS))]);
        // Writes still waiting for their commit are answered 503 CommitUnavailable (naming the
        // transaction, whose fate the client can look up elsewhere) before connections are cut,
        // rather than seeing their connection drop.
        node.state.abortWaiters("node stopped before the transaction committed");
        await Promise.race([closing, new Promise((r) => setTimeout(r, STOP_ANSWER_MS))]);
        for (const socket of sockets) socket.destroy();
        await closing;
        await executors.close();
        await node.close();
      })();
      return stopped;
    },
  };
  // Fail-stop: the failed write is logged (by the replica); the node stops serving and exits.
  node.onFailStop((error) => {
    const done = () => (seams.onFailStop ? seams.onFailStop(error) : process.exit(FAIL_STOP_EXIT_CODE));
    running.stop().then(done, done);
  });
  return running;
}
