import { parseValidFrom } from "../crypto/index.ts";
import type { Tx } from "../kv/index.ts";
import { Tables as GovTables, readJson, SINGLETON_KEY as SINGLETON } from "../ledger/index.ts";

/**
 * Coco's own check of certificate renewals, run after the constitution's `validate` whichever
 * constitution is in force (CCF's checks only the arguments' types): a renewal that can never be
 * served is refused when it is proposed, with the reason, rather than Accepted and then ignored.
 */

/** How far before the proposal's signing time `valid_from` may lie (clocks and typing time). */
export const VALID_FROM_TOLERANCE_SECONDS = 3600;
const DAY_SECONDS = 86_400;
/** The constitutions' default maximum validity when the service configuration sets none. */
const DEFAULT_MAX_VALIDITY_DAYS = 365;

const RENEWALS: Record<string, "node" | "service"> = {
  set_node_certificate_validity: "node",
  set_all_nodes_certificate_validity: "node",
  set_service_certificate_validity: "service",
  transition_node_to_trusted: "node",
};

interface ProposedAction {
  name?: unknown;
  args?: { valid_from?: unknown; validity_period_days?: unknown };
}

function maxValidityDays(tx: Tx, kind: "node" | "service"): number {
  const config = readJson<Record<string, unknown>>(tx, GovTables.serviceConfig, SINGLETON);
  const value = config?.[`maximum_${kind}_certificate_validity_days`];
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1
    ? value
    : DEFAULT_MAX_VALIDITY_DAYS;
}

/** Why one action's validity window cannot take effect, or undefined. */
function windowProblem(tx: Tx, action: ProposedAction, nowSeconds: number): string | undefined {
  const kind = typeof action.name === "string" ? RENEWALS[action.name] : undefined;
  if (!kind || typeof action.args !== "object" || action.args === null) return undefined;
  const { valid_from: validFrom, validity_period_days: days } = action.args;
  const max = maxValidityDays(tx, kind);
  if (typeof days === "number" && days > max) {
    return `${action.name}: validity_period_days ${days} is more than the ${max} days the service allows for ${kind} certificates (maximum_${kind}_certificate_validity_days)`;
  }
  if (typeof validFrom !== "string") return undefined;
  let from: number;
  try {
    from = parseValidFrom(validFrom).getTime() / 1000;
  } catch (e) {
    return `${action.name}: ${(e as Error).message}`;
  }
  const until = from + (typeof days === "number" ? days : max) * DAY_SECONDS;
  const now = new Date(nowSeconds * 1000).toISOString();
  if (until <= nowSeconds) {
    return `${action.name}: the validity window from ${validFrom} ended before now (${now}); no node could serve that certificate`;
  }
  if (from < nowSeconds - VALID_FROM_TOLERANCE_SECONDS) {
    return `${action.name}: valid_from ${validFrom} is already past (now is ${now}); a renewed certificate starts at most an hour before its proposal: use the current time or a later one`;
  }
  return undefined;
}

/**
 * Why a proposal's certificate renewal cannot take effect, or undefined: a window already over, a
 * `valid_from` more than an hour before the proposal was signed (`nowSeconds`: its
 * `created_at`, which the node has checked against its own clock), or a validity longer than the
 * service configuration allows.
 */
export function renewalWindowProblem(tx: Tx, proposal: string, nowSeconds: number): string | undefined {
  let actions: unknown;
  try {
    actions = (JSON.parse(proposal) as { actions?: unknown }).actions;
  } catch {
    return undefined;
  }
  if (!Array.isArray(actions)) return undefined;
  for (const action of actions as ProposedAction[]) {
    const problem = action && typeof action === "object" ? windowProblem(tx, action, nowSeconds) : undefined;
    if (problem) return problem;
  }
  return undefined;
}
