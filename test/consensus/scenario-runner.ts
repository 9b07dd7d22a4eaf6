import { readFileSync } from "node:fs";
import { relative } from "node:path";
import type { Entry, Message, NodeId, RaftConfig, UnsafeBugs } from "../../src/consensus/index.ts";
import { Cluster } from "./harness.ts";
import { expectLine, list, matches, ScenarioError, value } from "./scenario-expect.ts";

export { ScenarioError };

/*
 * Runs a consensus scenario: a text file of one command a line, driving Coco's Raft through the
 * test cluster of harness.ts (FIFO network, every Ready carried out at once, entries durable at
 * once unless `autopersist` is off). The format is described in docs/consensus.md, "Scenario
 * tests". A failed expectation or a bad line throws a ScenarioError naming file:line.
 */

interface Line {
  number: number;
  words: string[];
  text: string;
}

/** Options a `nodes` line may set besides the members; all are RaftConfig tick/batch numbers. */
const RAFT_OPTIONS = [
  "heartbeatTicks",
  "electionTicksMin",
  "electionTicksMax",
  "maxBatchEntries",
  "maxBatchBytes",
  "maxInflight",
] as const;

/** The named arguments each command takes (`step` and `expect` take any; `nodes` has its own). */
const NAMED: Record<string, readonly string[]> = {
  tick: [],
  "tick-hold": [],
  elect: ["using"],
  campaign: [],
  propose: ["n", "config"],
  read: [],
  deliver: ["type", "n"],
  drop: ["type"],
  stabilize: [],
  isolate: [],
  cut: [],
  partition: [],
  heal: [],
  "reset-counts": [],
  autopersist: [],
  persist: [],
  restart: [],
};

/** Bound on every "until" loop, so a scenario that never converges fails instead of hanging. */
const MAX_TICKS = 300;

function parse(text: string): Line[] {
  const lines: Line[] = [];
  text.split("\n").forEach((raw, i) => {
    const content = raw.replace(/#.*$/, "").trim();
    if (content !== "") lines.push({ number: i + 1, words: content.split(/\s+/), text: content });
  });
  return lines;
}

/** Splits `key=value` words from plain words. */
function split(words: string[]): { plain: string[]; named: Map<string, string> } {
  const plain: string[] = [];
  const named = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq > 0) named.set(word.slice(0, eq), word.slice(eq + 1));
    else plain.push(word);
  }
  return { plain, named };
}

function int(value: string | undefined, what: string): number {
  if (value === undefined || !/^\d+$/.test(value))
    throw new ScenarioError(`${what} must be a number, got ${value}`);
  return Number(value);
}

/** `x5` → 5; no such word → 1. */
function repeat(plain: string[]): { times: number; rest: string[] } {
  const word = plain.find((w) => /^x\d+$/.test(w));
  return { times: word ? Number(word.slice(1)) : 1, rest: plain.filter((w) => w !== word) };
}

export class Scenario {
  private readonly timeouts: Record<NodeId, number> = {};
  private readonly options: Partial<RaftConfig>;
  private readonly cluster: Cluster;

  /**
   * `unsafe` plants deliberate bugs in every node (the planted-bug tests, test/sim/bugs.test.ts).
   * The cluster reads `timeouts` and `options` when a node is added, so `nodes` lines fill them.
   */
  constructor(unsafe?: UnsafeBugs) {
    this.options = unsafe ? { unsafe } : {};
    this.cluster = new Cluster([], { timeouts: this.timeouts, config: this.options });
  }

  private ids(words: string[]): NodeId[] {
    if (words.length === 0) return [...this.cluster.nodes.keys()];
    for (const id of words) this.cluster.node(id);
    return words;
  }

  /** Runs one line; throws ScenarioError (or the harness's Error) on failure. */
  run(line: Line): void {
    const [command, ...args] = line.words;
    const { plain, named } = split(args);
    const c = this.cluster;
    const allowed = NAMED[command!];
    if (allowed) {
      for (const key of named.keys()) {
        if (!allowed.includes(key)) throw new ScenarioError(`${command} takes no ${key}=`);
      }
    }
    switch (command) {
      case "nodes": {
        // nodes a=0 b=0.5 c=0.9 [members=a,b,c] [maxInflight=2 ...]
        const nodeWords = args.filter(
          (w) => !w.startsWith("members=") && !RAFT_OPTIONS.some((o) => w.startsWith(`${o}=`)),
        );
        for (const option of RAFT_OPTIONS) {
          if (named.has(option)) this.options[option] = int(named.get(option), option);
        }
        const fresh = nodeWords.map((w) => {
          const [id, fraction] = w.split("=");
          const timeout = fraction === undefined ? 0.5 : Number(fraction);
          if (!(timeout >= 0 && timeout < 1)) {
            throw new ScenarioError(`${id}'s timeout must be a number in [0, 1), got ${fraction}`);
          }
          if (c.nodes.has(id!)) throw new ScenarioError(`node ${id} exists already`);
          this.timeouts[id!] = timeout;
          return id!;
        });
        const members = named.has("members") ? list(named.get("members")!) : fresh;
        for (const id of fresh) c.add(id, members);
        return;
      }
      case "tick":
      case "tick-hold": {
        // tick [ids] [xN]: each tick, then the network delivers until quiet; tick-hold queues.
        const { times, rest } = repeat(plain);
        const ids = this.ids(rest);
        for (let i = 0; i < times; i++) {
          for (const id of ids) {
            c.raft(id).tick();
            if (c.raft(id).hasReady()) c.process(id);
          }
          if (command === "tick") c.deliver();
        }
        return;
      }
      case "elect": {
        // elect a [using=a,b,c]: tick those nodes (default all) until a is primary.
        const id = plain[0]!;
        const ids = named.has("using") ? this.ids(list(named.get("using")!)) : this.ids([]);
        for (let i = 0; i < MAX_TICKS && c.raft(id).role !== "primary"; i++) {
          for (const n of ids) {
            c.raft(n).tick();
            if (c.raft(n).hasReady()) c.process(n);
          }
          c.deliver();
        }
        if (c.raft(id).role !== "primary") throw new ScenarioError(`${id} did not become primary`);
        return;
      }
      case "campaign": {
        // campaign a: a's election timer runs out now (its pre-vote is queued, not delivered).
        const id = plain[0]!;
        const raft = c.raft(id);
        for (let i = 0; i < MAX_TICKS && raft.role === "backup"; i++) {
          raft.tick();
          if (raft.hasReady()) c.process(id);
        }
        if (raft.role === "backup") throw new ScenarioError(`${id} never started an election`);
        return;
      }
      case "propose": {
        // propose a [n=3] [nosign] [config=a,b] [refused]
        const id = plain[0]!;
        const count = named.has("n") ? int(named.get("n"), "n") : 1;
        const config = named.has("config") ? list(named.get("config")!) : undefined;
        const sign = !plain.includes("nosign");
        if (plain.includes("refused")) {
          const raft = c.raft(id);
          const entry: Entry = {
            seqno: raft.lastSeqno + 1,
            view: raft.view,
            isSignature: true,
            data: new Uint8Array(),
          };
          if (raft.propose([entry])) throw new ScenarioError(`${id} accepted a proposal`);
          return;
        }
        c.propose(id, count, sign, config);
        return;
      }
      case "read": {
        // read a r1 [r2 ...]: asks a for read indexes, all before a's next Ready.
        for (const requestId of plain.slice(1)) c.raft(plain[0]!).readIndex(requestId);
        if (c.raft(plain[0]!).hasReady()) c.process(plain[0]!);
        return;
      }
      case "step": {
        // step b type=request_vote from=x view=5 ...: hands b a message written out in full.
        const to = plain[0]!;
        const message: Record<string, unknown> = { to };
        for (const [k, v] of named) message[k] = value(v);
        if (message.type === "append_entries" && message.entries === undefined) message.entries = [];
        c.raft(to).step(message as unknown as Message);
        if (c.raft(to).hasReady()) c.process(to);
        return;
      }
      case "deliver": {
        // deliver [from>to] [type=t] [n=N] [xN]: hands over the matching queued messages (the
        // first N of them); the messages they cause are queued, not delivered.
        const { times } = repeat(plain);
        const limit = named.has("n") ? int(named.get("n"), "n") : Number.POSITIVE_INFINITY;
        for (let i = 0; i < times; i++) {
          const pattern = plain[0]?.includes(">") ? plain[0] : undefined;
          const taken = c.queue.filter((q) => this.selected(q, pattern, named)).slice(0, limit);
          c.queue = c.queue.filter((q) => !taken.includes(q));
          for (const q of taken) c.handOver(q);
        }
        return;
      }
      case "drop": {
        const pattern = plain[0];
        c.queue = c.queue.filter((q) => !this.selected(q, pattern, named));
        return;
      }
      case "stabilize":
        c.deliver();
        return;
      case "isolate":
        for (const id of this.ids(plain)) c.isolate(id);
        return;
      case "cut": {
        // cut a>b (one way) or cut a-b (both ways)
        for (const link of plain) {
          const both = link.includes("-");
          const [x, y] = link.split(both ? "-" : ">");
          c.cut(x!, y!);
          if (both) c.cut(y!, x!);
        }
        return;
      }
      case "partition": {
        // partition a b | c: no messages between the two sides.
        const bar = plain.indexOf("|");
        if (bar < 0) throw new ScenarioError("partition needs a | between the two sides");
        for (const x of plain.slice(0, bar)) {
          for (const y of plain.slice(bar + 1)) {
            c.cut(x, y);
            c.cut(y, x);
          }
        }
        return;
      }
      case "reset-counts":
        c.counts.clear();
        return;
      case "heal":
        c.heal();
        return;
      case "autopersist":
        for (const id of this.ids(plain.slice(1))) c.node(id).autoPersist = plain[0] === "on";
        return;
      case "persist":
        for (const id of this.ids(plain)) c.persist(id);
        return;
      case "restart":
        // restart a: crash (losing what was not durable) and start again from disk and hard state
        for (const id of this.ids(plain)) c.restart(id);
        return;
      case "expect":
        expectLine(c, plain, named);
        return;
      default:
        throw new ScenarioError(`unknown command ${command}`);
    }
  }

  private selected(
    q: { from: NodeId; to: NodeId; message: Message },
    pattern: string | undefined,
    named: Map<string, string>,
  ): boolean {
    if (!matches(pattern, q.from, q.to)) return false;
    const type = named.get("type");
    return type === undefined || q.message.type === type;
  }
}

/** Runs every line of a scenario file; the error names the file and line that failed. */
export function runScenarioFile(path: string, unsafe?: UnsafeBugs): void {
  const scenario = new Scenario(unsafe);
  for (const line of parse(readFileSync(path, "utf8"))) {
    try {
      scenario.run(line);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const shown = relative(process.cwd(), path);
      const where = shown.startsWith("..") ? path : shown;
      throw new ScenarioError(`${where}:${line.number}: ${line.text}\n  ${message}`);
    }
  }
}

export { parse as parseScenario };
