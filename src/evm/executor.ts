import {
  type AppRequest,
  type AppResponse,
  type Endpoint,
  type Executor,
  type HandlerContext,
  HttpError,
} from "../apps/index.ts";
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
    // Every send reads and writes the chain head: sends run one at a time on the primary
    // (execution is CPU-bound in one thread anyway), so they never conflict and re-run.
    exclusive: true,
    async handler(ctx: HandlerContext): Promise<AppResponse> {
      refuseNonJson(ctx.request);
      const bound = boundAddresses(ctx.tx, ctx.caller);
      // Assigned, not spread: the private context reads the caller's keys only when asked.
      const onAnswered = (callback: (ok: boolean) => void) => {
        if (ctx.onAnswer) ctx.onAnswer((_txid, status) => callback(status >= 200 && status < 300));
        else callback(true);
      };
      const context = Object.assign(privateContext(ctx.tx, ctx.caller), {
        kv: ctx.tx,
        bound,
        host,
        filters,
        onAnswered,
      });
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

/**
 * A body whose content type is not JSON is refused with 415 in Coco's error shape, as every JSON
 * endpoint refuses it: rpc's own check runs when a handler reads the body as JSON, so it is asked
 * here for any type but the plain one clients send. A body that is not JSON at all is still
 * answered the JSON-RPC way (-32700) by `answer`.
 */
function refuseNonJson(request: AppRequest): void {
  const type = request.headers["content-type"];
  if (type === undefined || type === "application/json") return;
  try {
    request.json();
  } catch (e) {
    if (e instanceof HttpError && e.status === 415) throw e;
  }
}
