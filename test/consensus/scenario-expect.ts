import type { Entry, NodeId, Role } from "../../src/consensus/index.ts";
import type { Cluster } from "./harness.ts";

/** A scenario line that failed: a broken expectation or a line the runner cannot read. */
export class ScenarioError extends Error {}

const ROLES: readonly Role[] = ["backup", "precandidate", "candidate", "primary", "retired"];

export function list(value: string): NodeId[] {
  return value === "" ? [] : value.split(",");
}

/** A message field written in a scenario: numbers and booleans are converted, the rest is text. */
export function value(text: string): unknown {
  if (/^-?\d+$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  if (text === "none") return null;
  return text;
}

/** `from>to` with `*` for anyone; a missing pattern matches every message. */
export function matches(pattern: string | undefined, from: NodeId, to: NodeId): boolean {
  if (pattern === undefined) return true;
  const [f, t] = pattern.split(">");
  if (t === undefined) throw new ScenarioError(`expected from>to, got ${pattern}`);
  return (f === "*" || f === from) && (t === "*" || t === to);
}

/** The log as `view.seqno` words, `*` marking a signature and `[a,b]` a configuration. */
function describeEntry(e: Entry): string {
  return `${e.view}.${e.seqno}${e.isSignature ? "*" : ""}${e.config ? `[${e.config.join(",")}]` : ""}`;
}

/** Checks one `expect` line (its words after "expect") against the cluster's state now. */
export function expectLine(c: Cluster, plain: string[], named: Map<string, string>): void {
  const [what, ...rest] = plain;
  const check = (actual: unknown, expected: unknown, label: string) => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new ScenarioError(
        `${label}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
      );
    }
  };
  const perNode = (read: (id: NodeId) => unknown, parseValue: (v: string) => unknown) => {
    if (named.size === 0) throw new ScenarioError(`expect ${what} needs id=value pairs`);
    for (const [id, v] of named) check(read(id), parseValue(v), `${what} of ${id}`);
  };
  switch (what) {
    case "role":
      perNode(
        (id) => c.raft(id).role,
        (v) => {
          if (!ROLES.includes(v as Role)) throw new ScenarioError(`no role ${v}`);
          return v;
        },
      );
      return;
    case "view":
      perNode((id) => c.raft(id).view, Number);
      return;
    case "commit":
      perNode((id) => c.raft(id).commitSeqno, Number);
      return;
    case "last":
      perNode((id) => c.raft(id).lastSeqno, Number);
      return;
    case "leader":
      perNode(
        (id) => c.raft(id).leader,
        (v) => (v === "none" ? null : v),
      );
      return;
    case "voted": // expect voted b=a: the vote in the node's last written hard state
      perNode(
        (id) => c.node(id).hardState?.votedFor ?? null,
        (v) => (v === "none" ? null : v),
      );
      return;
    case "can-propose": // expect can-propose a=true
      perNode(
        (id) => c.raft(id).canPropose,
        (v) => v === "true",
      );
      return;
    case "primaries":
      check(c.primaries(), rest, "primaries");
      return;
    case "commits": // expect commits a 6: every commit point the node reported, in order
      check(c.node(rest[0]!).commits, rest.slice(1).map(Number), `commits of ${rest[0]}`);
      return;
    case "truncations":
      check(c.node(rest[0]!).truncations, rest.slice(1).map(Number), `truncations of ${rest[0]}`);
      return;
    case "log": {
      // expect log a 1.1 1.2 1.3*   or   expect log a same-as=b
      const id = rest[0]!;
      const raft = c.raft(id);
      const actual = raft.entries(raft.logStart.seqno + 1, raft.lastSeqno).map(describeEntry);
      if (named.has("same-as")) {
        const other = c.raft(named.get("same-as")!);
        check(
          actual,
          other.entries(other.logStart.seqno + 1, other.lastSeqno).map(describeEntry),
          `log of ${id}`,
        );
      } else {
        check(actual, rest.slice(1), `log of ${id}`);
      }
      return;
    }
    case "configs": // expect configs a a,b,c a,b,c,d
      check(c.raft(rest[0]!).activeConfigs(), rest.slice(1).map(list), `active configurations of ${rest[0]}`);
      return;
    case "reads": // expect reads a r1@3 r2@3
      check(
        c.node(rest[0]!).readStates.map((r) => `${r.requestId}@${r.seqno}`),
        rest.slice(1),
        `confirmed reads of ${rest[0]}`,
      );
      return;
    case "rejected":
      check(c.node(rest[0]!).readsRejected, rest.slice(1), `rejected reads of ${rest[0]}`);
      return;
    case "delivered": {
      // expect delivered timeout_now>b=1: messages of that type delivered to b since the start
      // (or the last reset-counts)
      for (const [key, v] of named) check(c.counts.get(key) ?? 0, Number(v), `deliveries of ${key}`);
      return;
    }
    case "at-most": {
      // expect at-most append_entries>c=4
      for (const [key, v] of named) {
        const count = c.counts.get(key) ?? 0;
        if (count > Number(v))
          throw new ScenarioError(`deliveries of ${key}: expected at most ${v}, got ${count}`);
      }
      return;
    }
    case "idle": // nothing for the node to do
      for (const id of rest) check(c.raft(id).hasReady(), false, `${id} has work`);
      return;
    case "queued": {
      // expect queued b>x type=request_vote_response granted=false: the last such message
      const pattern = rest[0];
      const fields = new Map(named);
      const type = fields.get("type");
      const found = c.queue
        .filter((q) => matches(pattern, q.from, q.to) && (type === undefined || q.message.type === type))
        .at(-1);
      if (!found) throw new ScenarioError(`no queued message ${pattern ?? ""} ${type ?? ""}`.trim());
      for (const [k, v] of fields)
        check((found.message as unknown as Record<string, unknown>)[k], value(v), `field ${k}`);
      return;
    }
    case "none-queued":
      check(
        c.queue.filter((q) => matches(rest[0], q.from, q.to)).map((q) => q.message.type),
        [],
        `queued messages ${rest[0] ?? ""}`,
      );
      return;
    default:
      throw new ScenarioError(`unknown expectation ${what}`);
  }
}
