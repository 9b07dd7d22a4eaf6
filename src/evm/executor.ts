import type { AppResponse, Endpoint, Executor, HandlerContext } from "../apps/index.ts";
import { boundAddresses } from "./accounts.ts";
import { Filters } from "./filters.ts";
import { answer, needsPrimary } from "./jsonrpc.ts";
import type { EvmHost } from "./methods.ts";
import { privateContext, TESSERA_PATH, tesseraEndpoints } from "./private/index.ts";

/** The path, below `/app`, where Ethereum JSON-RPC is served: `POST /app/eth`. */
export const EVM_PATH = "/eth";

/**
 * The EVM executor: Ethereum JSON-RPC 2.0 at `POST /app/eth` for Coco users (client
 * certificates). A request that sends a transaction or touches filters runs on the primary
 * (backups forward it); reads run on any node. Each request is one KV transaction.
 */
export function createEvmExecutor(host: EvmHost): Executor {
  const filters = new Filters(() => host.now());
  const endpoint: Endpoint = {
    method: "POST",
    path: EVM_PATH,
    auth: ["user_cert"],
    mode: "readonly",
    modeOf: (request) => (needsPrimary(request.body) ? "readwrite" : "readonly"),
    async handler(ctx: HandlerContext): Promise<AppResponse> {
      const bound = boundAddresses(ctx.tx, ctx.caller);
      const context = { kv: ctx.tx, bound, host, filters, ...privateContext(ctx.tx, ctx.caller) };
      const body = await answer(context, ctx.request.body);
      return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    },
  };
  const tessera = tesseraEndpoints(host);
  return {
    name: "evm",
    match(method, path) {
      if (path.startsWith(`${TESSERA_PATH}/`)) {
        const found = tessera.filter((e) => e.path === path);
        if (found.length === 0) return undefined;
        const hit = found.find((e) => e.method === method);
        return hit ? { endpoint: hit, params: {} } : { methodNotAllowed: true };
      }
      if (path !== EVM_PATH) return undefined;
      if (method !== "POST") return { methodNotAllowed: true };
      return { endpoint, params: {} };
    },
  };
}
