import type { Store } from "../kv/index.ts";
import type { Endpoint, HttpMethod } from "./endpoint.ts";

/** What an executor answers for a method and path below `/app`. */
export type ExecutorMatch =
  | { endpoint: Endpoint; params: Record<string, string> }
  | { methodNotAllowed: true }
  | undefined;

/**
 * One kind of application behind `/app`: native TypeScript apps, CCF-style JS bundles, the EVM
 * behind Ethereum JSON-RPC, Sawtooth transaction processors. An executor only routes a request
 * to an endpoint; rpc then applies the endpoint's authentication policies and forwarding rule,
 * runs its handler in one KV transaction on the primary, and answers (respond-on-commit and
 * receipts included). Adding a kind of app means writing an executor, not touching rpc or node.
 */
export interface Executor {
  readonly name: string;
  /**
   * The endpoint for `method` and `path` (below `/app`, without the query). `store` is the
   * node's current state, for executors whose endpoints live in the KV (installed JS bundles).
   */
  match(method: HttpMethod, path: string, store: Store): ExecutorMatch;
  /** Releases what the executor holds (sockets, interpreters) when the node stops. */
  close?(): Promise<void>;
}

/**
 * The executors a node serves, asked in order: the first that knows the path answers. An
 * executor registered with `replaces` is asked before the others, so an operator can let a
 * bundle's endpoint stand in for a native one of the same path; by default earlier ones win.
 */
export class ExecutorRegistry {
  private readonly executors: Executor[] = [];

  constructor(executors: Iterable<Executor> = []) {
    for (const executor of executors) this.add(executor);
  }

  add(executor: Executor, options: { replaces?: boolean } = {}): this {
    if (this.executors.some((e) => e.name === executor.name)) {
      throw new Error(`an executor named ${executor.name} is already registered`);
    }
    if (options.replaces) this.executors.unshift(executor);
    else this.executors.push(executor);
    return this;
  }

  get size(): number {
    return this.executors.length;
  }

  names(): string[] {
    return this.executors.map((e) => e.name);
  }

  /** The first executor's endpoint for the path; `methodNotAllowed` only if none has the method. */
  match(method: HttpMethod, path: string, store: Store): ExecutorMatch {
    let methodNotAllowed = false;
    for (const executor of this.executors) {
      const found = executor.match(method, path, store);
      if (found === undefined) continue;
      if ("methodNotAllowed" in found) methodNotAllowed = true;
      else return found;
    }
    return methodNotAllowed ? { methodNotAllowed: true } : undefined;
  }

  async close(): Promise<void> {
    for (const executor of this.executors) await executor.close?.();
  }
}
