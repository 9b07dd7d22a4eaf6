import type { Logger } from "pino";
import type { Executor } from "../apps/index.ts";
import { type Endpoint, type ExecutorMatch, type HttpMethod, Router } from "../apps/index.ts";
import type { Store } from "../kv/index.ts";
import type { SawtoothHost } from "./host.ts";
import { ProcessorServer } from "./processors.ts";
import { endpoints } from "./rest.ts";

export interface SawtoothSettings {
  /** The ZeroMQ address transaction processors connect to, e.g. `tcp://127.0.0.1:4004`. */
  processorAddress: string;
  /** How long a processor may take to answer one request before it is dropped. */
  processorTimeoutMs: number;
}

export const SAWTOOTH_BASE = "/sawtooth";

/**
 * Coco as a Sawtooth validator: Sawtooth's REST API below `/app/sawtooth`, and the processor
 * protocol on a ZeroMQ ROUTER socket. Batches run once, on the primary, in one Coco transaction.
 */
export class SawtoothExecutor implements Executor {
  readonly name = "sawtooth";
  private readonly router: Router;
  private host: SawtoothHost | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly processors: ProcessorServer) {
    const all: Endpoint[] = endpoints({
      base: SAWTOOTH_BASE,
      host: () => {
        if (!this.host) throw new Error("the Sawtooth executor is not attached to a node");
        return this.host;
      },
      server: () => this.processors,
      serial: (f) => {
        const run = this.queue.then(f, f);
        this.queue = run.catch(() => undefined);
        return run;
      },
    });
    this.router = new Router();
    for (const e of all) this.router.add(e);
  }

  static async start(settings: SawtoothSettings, log: Logger): Promise<SawtoothExecutor> {
    const server = await ProcessorServer.listen(settings.processorAddress, log, settings.processorTimeoutMs);
    log.info({ address: server.endpoint }, "sawtooth: transaction processors connect here");
    return new SawtoothExecutor(server);
  }

  /** Gives the executor the node facts it needs; called once the node runs. */
  attach(host: SawtoothHost): void {
    this.host = host;
  }

  /** The bound ZeroMQ address (with the real port when the settings asked for port 0 or `*`). */
  get processorEndpoint(): string {
    return this.processors.endpoint;
  }

  match(method: HttpMethod, path: string, _store: Store): ExecutorMatch {
    if (path !== SAWTOOTH_BASE && !path.startsWith(`${SAWTOOTH_BASE}/`)) return undefined;
    return this.router.match(method, path);
  }

  async close(): Promise<void> {
    await this.processors.close();
  }
}
