import { createLogger, hasIdentity, loadConfig, realEnvironment, runNode } from "../node/index.ts";
import { CliError } from "./fail.ts";
import { appExecutors } from "./js-apps.ts";
import { sawtoothFor } from "./sawtooth.ts";

export async function startCommand(opts: { config: string; mode?: "recover" }): Promise<void> {
  const config = loadConfig(opts.config);
  if (opts.mode === "recover" && !config.recover) {
    throw new CliError(`${opts.config} has no "recover" section (recover.previousServiceCertFile)`);
  }
  // Once recovered, the node is an ordinary one: `coco start` restarts it with the same config.
  if (opts.mode !== "recover" && config.recover && !hasIdentity(config.dir)) {
    throw new CliError(`${opts.config} asks to recover a service: use coco recover --config`);
  }
  const log = createLogger({ level: config.log.level, format: config.log.format });
  const apps = await appExecutors(config, realEnvironment, log);
  const sawtooth = await sawtoothFor(config, log);
  // Loaded only when asked for: the EVM's libraries cost start-up time every node would pay.
  const evm = config.evm ? (await import("../evm/index.ts")).evmExecutorFor(realEnvironment) : null;
  const running = await runNode(config, realEnvironment, log, [
    ...apps.executors,
    ...(evm ? [evm.executor] : []),
    ...sawtooth.executors,
  ]);
  apps.attach(running.node);
  evm?.bind(running.node);
  sawtooth.attach(running);
  const shutdown = (signal: string) => {
    log.info({ signal }, "stopping");
    running.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, "unclean stop");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}
