// `request.caller` as CCF's JS runtime shapes it, from the identity rpc established.
import type { Caller } from "../apps/index.ts";
import type { Tx } from "../kv/index.ts";
import { JsAppTables } from "./tables.ts";

/** Policies rpc checks today; the others are parsed and stored, and refused with a clear 401. */
export const SUPPORTED_POLICIES = new Set(["user_cert", "member_cert", "any_cert", "no_auth"]);

function data(tx: Tx, map: string, id: string, field: string): unknown {
  const raw = tx.map(map).get(new TextEncoder().encode(id));
  if (raw === undefined) return null;
  try {
    return (JSON.parse(new TextDecoder().decode(raw)) as Record<string, unknown>)[field] ?? null;
  } catch {
    return null;
  }
}

/**
 * rpc names a registered user or member by its role even when `any_cert` let it in; CCF names
 * the policy that passed first, so an endpoint listing `any_cert` before the role's own policy
 * (or without it) sees `{policy: "any_cert", cert}`.
 */
function passedAsAnyCert(caller: Caller, policies: readonly unknown[]): boolean {
  if (caller.policy === "no_auth") return false;
  const first = policies.find((p) => p === caller.policy || p === "any_cert");
  return first === "any_cert";
}

export function jsCaller(caller: Caller, tx: Tx, policies: readonly unknown[] = []): Record<string, unknown> {
  if (passedAsAnyCert(caller, policies) && "certPem" in caller)
    return { policy: "any_cert", cert: caller.certPem };
  switch (caller.policy) {
    case "no_auth":
      return { policy: "no_auth" };
    case "user_cert":
      return {
        policy: "user_cert",
        id: caller.id,
        data: data(tx, JsAppTables.usersInfo, caller.id, "user_data"),
        cert: caller.certPem,
      };
    case "member_cert":
      return {
        policy: "member_cert",
        id: caller.id,
        data: data(tx, JsAppTables.membersInfo, caller.id, "member_data"),
        cert: caller.certPem,
      };
  }
}
