// Every authentication policy, tried in order: the first that passes names the caller, and a
// failure says, for each policy tried, why it did not pass.
import type { AuthPolicy, Caller } from "../apps/index.ts";
import type { Store } from "../kv/index.ts";
import { checkCoseSign1 } from "./auth-cose.ts";
import { checkJwt, type PolicyResult } from "./auth-jwt.ts";

/** The TLS caller as auth.ts identified it (its `Peer`; restated here so the files do not import each other). */
export interface Peer {
  id: string | null;
  user: string | null;
  member: string | null;
  invalidCertificate?: string;
}

/** What the policies beyond client certificates read: the request, the state, the node's clock. */
export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  store: Store;
  /** The node's clock, in seconds since the epoch. */
  nowSeconds: number;
}

export function policyName(policy: AuthPolicy): string {
  return typeof policy === "string" ? policy : `all_of(${policy.all_of.map(policyName).join(", ")})`;
}

function certPolicy(policy: "user_cert" | "member_cert" | "any_cert", peer: Peer): PolicyResult {
  if (!peer.id) {
    const why = peer.invalidCertificate
      ? `client certificate ${peer.invalidCertificate}`
      : "no client certificate";
    return { ok: false, reason: why };
  }
  if ((policy === "user_cert" || policy === "any_cert") && peer.user) {
    return { ok: true, caller: { policy: "user_cert", id: peer.id, certPem: peer.user } };
  }
  if ((policy === "member_cert" || policy === "any_cert") && peer.member) {
    return { ok: true, caller: { policy: "member_cert", id: peer.id, certPem: peer.member } };
  }
  const wanted = policy === "any_cert" ? "user or member" : policy === "user_cert" ? "user" : "member";
  return { ok: false, reason: `client certificate ${peer.id} is not a known ${wanted}` };
}

export function checkPolicy(policy: AuthPolicy, peer: Peer, request: AuthRequest): PolicyResult {
  if (typeof policy === "object") {
    const callers: Caller[] = [];
    for (const part of policy.all_of) {
      const result = checkPolicy(part, peer, request);
      if (!result.ok) return { ok: false, reason: `${policyName(part)}: ${result.reason}` };
      callers.push(result.caller);
    }
    return { ok: true, caller: { policy: "all_of", callers } };
  }
  switch (policy) {
    case "no_auth":
      return { ok: true, caller: { policy: "no_auth" } };
    case "user_cert":
    case "member_cert":
    case "any_cert":
      return certPolicy(policy, peer);
    case "jwt":
      return checkJwt(request.headers, request.store, request.nowSeconds);
    case "user_cose_sign1":
    case "member_cose_sign1":
      return checkCoseSign1(policy, request.headers, request.body, request.store, request.nowSeconds);
  }
}

export type PoliciesOutcome = { ok: true; caller: Caller } | { ok: false; message: string };

/** Tries each policy in order; the first that passes wins. */
export function checkPolicies(policies: AuthPolicy[], peer: Peer, request: AuthRequest): PoliciesOutcome {
  const reasons: string[] = [];
  for (const policy of policies) {
    const result = checkPolicy(policy, peer, request);
    if (result.ok) return result;
    reasons.push(`${policyName(policy)}: ${result.reason}`);
  }
  return { ok: false, message: `no authentication policy passed (${reasons.join("; ")})` };
}
