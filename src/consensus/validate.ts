import { isSeqno } from "./assert.ts";
import type { Message } from "./messages.ts";
import type { Entry, NodeId } from "./types.ts";

export type ParseResult = { ok: true; message: Message } | { ok: false; reason: string };

/** The numeric fields each message type carries, besides `view`. */
const NUMBER_FIELDS: Record<Message["type"], readonly string[]> = {
  pre_vote: ["lastSeqno", "lastView"],
  pre_vote_response: [],
  request_vote: ["lastSeqno", "lastView"],
  request_vote_response: [],
  append_entries: ["prevSeqno", "prevView", "commitSeqno"],
  append_entries_response: [
    "matchSeqno",
    "durableSeqno",
    "lastSeqno",
    "commitSeqno",
    "rejectedPrev",
    "conflictView",
    "conflictFirst",
  ],
  heartbeat: ["commitSeqno", "round"],
  heartbeat_response: ["round", "matchSeqno", "durableSeqno", "lastSeqno", "commitSeqno"],
  timeout_now: [],
};

const BOOLEAN_FIELDS: Partial<Record<Message["type"], readonly string[]>> = {
  pre_vote_response: ["granted"],
  request_vote: ["handover"],
  request_vote_response: ["granted"],
  append_entries_response: ["success"],
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === "string" && value.length > 0 && value.length <= 256;
}

/** Checks a configuration: a non-empty list of distinct node ids. Returns a reason or null. */
export function configProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length === 0) return "config must be a non-empty array";
  if (!value.every(isNodeId)) return "config holds something that is not a node id";
  if (new Set(value).size !== value.length) return "config names a node twice";
  return null;
}

/** Checks one entry's shape. Returns a reason or null. */
export function entryProblem(value: unknown): string | null {
  if (!isRecord(value)) return "entry is not an object";
  if (!isSeqno(value.seqno) || value.seqno < 1) return "entry seqno must be an integer >= 1";
  if (!isSeqno(value.view)) return "entry view must be an integer >= 0";
  if (typeof value.isSignature !== "boolean") return "entry isSignature must be a boolean";
  if (!(value.data instanceof Uint8Array)) return "entry data must be bytes";
  if (value.config !== undefined) {
    const problem = configProblem(value.config);
    if (problem) return `entry ${value.seqno}: ${problem}`;
  }
  return null;
}

/**
 * Checks entries as a run: contiguous seqnos from `firstSeqno`, views never decreasing, starting
 * at or after `minView` and never beyond `maxView`.
 */
export function entriesProblem(
  entries: readonly unknown[],
  firstSeqno: number,
  minView: number,
  maxView: number,
): string | null {
  let view = minView;
  for (let i = 0; i < entries.length; i++) {
    const problem = entryProblem(entries[i]);
    if (problem) return `entries[${i}]: ${problem}`;
    const entry = entries[i] as Entry;
    if (entry.seqno !== firstSeqno + i) {
      return `entries[${i}] has seqno ${entry.seqno}, expected ${firstSeqno + i}`;
    }
    if (entry.view < view) return `entries[${i}] has view ${entry.view}, lower than ${view} before it`;
    if (entry.view > maxView) return `entries[${i}] has view ${entry.view}, beyond the message's ${maxView}`;
    view = entry.view;
  }
  return null;
}

/**
 * Checks that an incoming value is a well-formed message. Anything else (unknown type, a field
 * missing or of the wrong type, entries out of order) is refused with the reason; the caller
 * counts it and drops it, it never reaches the state machine.
 */
export function parseMessage(raw: unknown): ParseResult {
  if (!isRecord(raw)) return { ok: false, reason: "message is not an object" };
  const type = raw.type;
  if (typeof type !== "string" || !Object.hasOwn(NUMBER_FIELDS, type)) {
    return { ok: false, reason: `unknown message type ${JSON.stringify(type)}` };
  }
  const kind = type as Message["type"];
  if (!isNodeId(raw.from)) return { ok: false, reason: `${kind}: bad sender` };
  if (!isNodeId(raw.to)) return { ok: false, reason: `${kind}: bad addressee` };
  if (!isSeqno(raw.view)) return { ok: false, reason: `${kind}: view must be an integer >= 0` };
  for (const field of NUMBER_FIELDS[kind]) {
    if (!isSeqno(raw[field])) return { ok: false, reason: `${kind}: ${field} must be an integer >= 0` };
  }
  for (const field of BOOLEAN_FIELDS[kind] ?? []) {
    if (typeof raw[field] !== "boolean") return { ok: false, reason: `${kind}: ${field} must be a boolean` };
  }
  if (kind === "append_entries") {
    if (!Array.isArray(raw.entries)) return { ok: false, reason: "append_entries: entries must be an array" };
    const prevSeqno = raw.prevSeqno as number;
    const prevView = raw.prevView as number;
    if (prevView > raw.view) return { ok: false, reason: "append_entries: prevView is beyond the view" };
    const problem = entriesProblem(raw.entries, prevSeqno + 1, prevView, raw.view);
    if (problem) return { ok: false, reason: `append_entries: ${problem}` };
  }
  if (kind === "pre_vote" || kind === "request_vote") {
    if ((raw.lastView as number) > raw.view)
      return { ok: false, reason: `${kind}: lastView is beyond the view` };
  }
  return { ok: true, message: raw as unknown as Message };
}
