import { createLogger, loadConfig, realEnvironment, runNode } from "../node/index.ts";
import { builtInApp } from "./apps.ts";

export async function startCommand(opts: { config: string }): Promise<void> {
  const config = loadConfig(opts.config);
  const log = createLogger({ level: config.log.level, format: config.log.format });
  const running = await runNode(config, realEnvironment, log, builtInApp(config.app));
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
