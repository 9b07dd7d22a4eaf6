// `request.caller` as CCF's JS runtime shapes it, from the identity rpc established.
import type { Caller } from "../apps/index.ts";
import type { Tx } from "../kv/index.ts";
import { JsAppTables } from "./tables.ts";

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
  return shape(caller, tx);
}

function shape(caller: Caller, tx: Tx): Record<string, unknown> {
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
    case "jwt":
      return {
        policy: "jwt",
        jwt: { keyIssuer: caller.keyIssuer, header: caller.header, payload: caller.payload },
      };
    case "user_cose_sign1":
    case "member_cose_sign1": {
      const user = caller.policy === "user_cose_sign1";
      return {
        policy: caller.policy,
        id: caller.id,
        data: user
          ? data(tx, JsAppTables.usersInfo, caller.id, "user_data")
          : data(tx, JsAppTables.membersInfo, caller.id, "member_data"),
        cert: caller.certPem,
        cose: { content: caller.content },
      };
    }
    case "all_of": {
      // CCF's shape: `policy` lists the constituents; each one's identity under its own name.
      const out: Record<string, unknown> = { policy: caller.callers.map((c) => c.policy) };
      for (const c of caller.callers) out[c.policy] = shape(c, tx);
      return out;
    }
  }
}
