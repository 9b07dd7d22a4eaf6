import { type AppResponse, type Endpoint, HttpError } from "../../apps/index.ts";
import { RpcError } from "../errors.ts";
import type { EvmHost } from "../methods.ts";
import { isParty, PRIVATE_MAPS } from "./groups.ts";
import { callerKeys } from "./parties.ts";
import { readPayload, storeRaw } from "./payloads.ts";

/**
 * The private transaction manager calls Quorum clients make, served by the node itself at
 * `/app/tessera/...` (no Tessera process): a client's `privateUrl` points here.
 */
export const TESSERA_PATH = "/tessera";

const json = (status: number, value: unknown): AppResponse => ({
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});

function parseBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new HttpError(400, "InvalidJson", "the body must be JSON");
  }
}

function asHttp(e: unknown): never {
  if (e instanceof RpcError) throw new HttpError(e.code === -32602 ? 400 : 403, "InvalidRequest", e.message);
  throw e;
}

export function tesseraEndpoints(host: EvmHost): Endpoint[] {
  return [
    {
      method: "POST",
      path: `${TESSERA_PATH}/storeraw`,
      auth: ["user_cert"],
      mode: "readwrite",
      handler(ctx) {
        const keys = callerKeys(ctx.tx, ctx.caller);
        const owner = ctx.caller.policy === "user_cert" ? ctx.caller.id : "";
        try {
          return json(200, storeRaw(ctx.tx, parseBody(ctx.request.body), owner, keys, host.randomBytes));
        } catch (e) {
          return asHttp(e);
        }
      },
    },
    {
      // Tessera's `receive`: the payload behind a key, for the party that stored it or a party
      // of the transaction that used it; 404 for everyone else, as for a key that does not exist.
      method: "POST",
      path: `${TESSERA_PATH}/receive`,
      auth: ["user_cert"],
      mode: "readonly",
      handler(ctx) {
        const body = parseBody(ctx.request.body) as { key?: unknown } | null;
        const key = typeof body?.key === "string" ? Buffer.from(body.key, "base64") : Buffer.alloc(0);
        const stored = readPayload(ctx.tx, key);
        const keys = callerKeys(ctx.tx, ctx.caller);
        const used = ctx.tx.map(PRIVATE_MAPS.payloadGroups).get(key);
        const allowed =
          stored !== undefined &&
          (keys.has(stored.from) ||
            (used !== undefined && isParty(ctx.tx, `0x${Buffer.from(used).toString("hex")}`, keys)));
        if (!allowed) throw new HttpError(404, "NotFound", "no payload with that key for this caller");
        return json(200, { payload: stored.payload });
      },
    },
    {
      method: "GET",
      path: `${TESSERA_PATH}/keys`,
      auth: ["user_cert"],
      mode: "readonly",
      handler: (ctx) => json(200, { keys: [...callerKeys(ctx.tx, ctx.caller)].map((key) => ({ key })) }),
    },
    {
      method: "GET",
      path: `${TESSERA_PATH}/upcheck`,
      auth: ["user_cert"],
      mode: "readonly",
      handler: () => ({ status: 200, headers: { "content-type": "text/plain" }, body: "I'm up!" }),
    },
  ];
}
