import { existsSync } from "node:fs";
import { preloadCertificateLibraries } from "../crypto/index.ts";
import { warmUpQuickJs } from "../js/index.ts";
import {
  createLogger,
  hasIdentity,
  loadConfig,
  realEnvironment,
  runNode,
  startEncryptionKeyGeneration,
} from "../node/index.ts";
import { CliError } from "./fail.ts";
import { appExecutors } from "./js-apps.ts";
import { sawtoothFor } from "./sawtooth.ts";

/** How long `--wait-for` waits for its file, and how often it looks. */
const WAIT_FOR_MS = 120_000;
const WAIT_POLL_MS = 20;

/**
 * `--wait-for`: the sandbox starts its joiners together with the first node, so that loading the
 * code (most of a node's start-up CPU) overlaps the creation of the service, and they wait here
 * for the service certificate they need to ask to join. Meanwhile the certificate libraries load
 * and a joiner's encryption key is generated (on a worker thread); the first node, which will run
 * the service's first governance requests, runs QuickJS once (its first run is the costly one).
 */
async function waitForFile(path: string, joining: boolean): Promise<void> {
  if (existsSync(path)) return;
  preloadCertificateLibraries();
  if (joining) startEncryptionKeyGeneration();
  else await warmUpQuickJs();
  const deadline = Date.now() + WAIT_FOR_MS;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new CliError(`${path} did not appear within ${WAIT_FOR_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

export async function startCommand(opts: {
  config: string;
  mode?: "recover";
  waitFor?: string;
}): Promise<void> {
  if (opts.waitFor) {
    // A joiner that has no identity yet will need its encryption key: it is made while waiting.
    // (The file waited for may be the configuration itself: the sandbox's first node waits for it.)
    const early = existsSync(opts.config) ? loadConfig(opts.config) : undefined;
    await waitForFile(opts.waitFor, early !== undefined && early.join !== null && !hasIdentity(early.dir));
  }
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
