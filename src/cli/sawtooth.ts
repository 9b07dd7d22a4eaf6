import type { Logger } from "pino";
import type { Executor } from "../apps/index.ts";
import type { NodeConfig, RunningNode } from "../node/index.ts";
import type { SawtoothExecutor } from "../sawtooth/index.ts";

/**
 * The one place Sawtooth is wired to a node: the executor is made before the node runs (it is
 * one of the node's executors) and attached to the node's facts once it runs.
 */
export async function sawtoothFor(
  config: NodeConfig,
  log: Logger,
): Promise<{ executors: Executor[]; attach(running: RunningNode): void; executor?: SawtoothExecutor }> {
  if (!config.sawtooth) return { executors: [], attach() {} };
  // Loaded only when configured: ZeroMQ and the protocol's .proto files cost every node start-up.
  const { nodeHost, SawtoothExecutor } = await import("../sawtooth/index.ts");
  const executor = await SawtoothExecutor.start(config.sawtooth, log);
  return {
    executor,
    executors: [executor],
    attach: (running) => executor.attach(nodeHost(running.node)),
  };
}
