/**
 * What a user relies on after the nemesis, checked once every fault is healed: the nodes
 * converge; each register's history (closed by a final linearizable read) is linearizable; every
 * acknowledged record is on every node with its value and nothing never written is; local reads
 * show only values some client wrote; and, read at rest, every ledger audits (Merkle roots and
 * signatures recomputed) and all ledgers are identical byte for byte up to the commit point.
 */
import { readLedgerDir } from "../../src/ledger/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { casRegisterModel, check } from "../utils/lincheck/index.ts";
import type { CasOp, Clients } from "./clients.ts";
import { type NsCluster, type NsNode, sleep, waitUntil } from "./cluster.ts";

export interface Verdict {
  operations: number;
  violations: string[];
  /** Registers whose check ran out of budget (neither pass nor fail). */
  unknown: number;
  commitSeqno: number;
}

/** Waits until every node reports the same commit seqno with nothing after it; returns it. */
export async function converge(c: NsCluster, timeoutMs = 60_000): Promise<number> {
  let seen = "";
  let commit = 0;
  await waitUntil("the nodes to converge", timeoutMs, async () => {
    const states = await Promise.all(c.nodes.map((n) => c.consensus(n)));
    seen = states
      .map((s, i) => `${c.nodes[i]!.name}: ${s.role} v${s.view} ${s.commitSeqno}/${s.lastSeqno}`)
      .join("; ");
    commit = states[0]!.commitSeqno;
    return states.every((s) => s.commitSeqno === commit && s.lastSeqno === commit);
  }).catch((e) => {
    throw new Error(`${(e as Error).message}; last seen ${seen}`);
  });
  return commit;
}

/** One linearizable read of each register through the primary, appended to its history. */
async function finalReads(c: NsCluster, clients: Clients): Promise<void> {
  for (const [register, history] of clients.histories.entries()) {
    await waitUntil(`a final read of register ${register}`, 30_000, async () => {
      const primary = (await c.findPrimary())?.node;
      if (!primary) return false;
      const call = performance.now();
      const reply = await c.call(primary, "GET", `/app/log/private?id=${register}`, {
        headers: { "x-coco-read": "linearizable" },
      });
      const ret = performance.now();
      if (reply.status !== 200 && reply.status !== 404) return false;
      const value = reply.status === 200 ? Number(reply.json<{ msg: string }>().msg) : null;
      history.push({
        clientId: -1,
        input: { op: "read" },
        output: { status: "ok", value },
        node: primary.name,
        call,
        return: ret,
      });
      return true;
    });
  }
}

async function records(c: NsCluster, node: NsNode): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  let after: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const query = `limit=1000${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`;
    const reply = await c.call(node, "GET", `/app/log/public/range?${query}`, { timeoutMs: 10_000 });
    if (reply.status !== 200) throw new Error(`${node.name} range answered ${reply.status}: ${reply.text}`);
    const body = reply.json<{ entries: Array<{ id: number; msg: string }>; next?: string }>();
    for (const { id, msg } of body.entries) out.set(id, msg);
    if (body.next === undefined) return out;
    after = body.next;
  }
  throw new Error(`${node.name}: too many pages of records`);
}

export async function judge(c: NsCluster, clients: Clients, budgetMs: number): Promise<Verdict> {
  const violations: string[] = [];
  violations.push(...clients.unexpected.map((u) => `unexpected answer: ${u}`));
  await finalReads(c, clients);
  // Records and convergence: after a final quiet moment every node holds the same state.
  await sleep(500);
  const commitSeqno = await converge(c);
  let reference: Map<number, string> | undefined;
  for (const node of c.nodes) {
    const held = await records(c, node);
    for (const [id, msg] of clients.acked) {
      if (held.get(id) !== msg) violations.push(`${node.name} lost acknowledged record ${id} (${msg})`);
    }
    for (const [id, msg] of held) {
      if (clients.attempted.get(id) !== msg)
        violations.push(`${node.name} holds record ${id} = ${msg}, never written`);
    }
    if (reference && (reference.size !== held.size || [...reference].some(([k, v]) => held.get(k) !== v)))
      violations.push(`${node.name}'s records differ from node0's`);
    reference ??= held;
  }
  for (const read of clients.localReads) {
    if (read.value !== null && !clients.written.has(read.value))
      violations.push(`a local read of register ${read.register} saw ${read.value}, which no client wrote`);
  }
  let unknown = 0;
  // `budgetMs` is an idle machine's figure: a checker starved of CPU that ran out of time would
  // leave registers without a verdict, which the test counts against the run.
  const perRegister = Math.max(1_000, Math.floor(budget(budgetMs) / Math.max(1, clients.histories.length)));
  for (const [register, history] of clients.histories.entries()) {
    const result = check(casRegisterModel, history as CasOp[], { timeoutMs: perRegister });
    if (result.result === "illegal")
      violations.push(`register ${register} is not linearizable:\n${result.counterExample?.text ?? ""}`);
    if (result.result === "unknown") unknown++;
  }
  await c.stopNodes();
  violations.push(...(await checkLedgers(c, commitSeqno)));
  return { operations: clients.operations, violations, unknown, commitSeqno };
}

/** Every ledger audits, and all hold the same bytes for every seqno up to `upTo` they both hold. */
export async function checkLedgers(c: NsCluster, upTo: number): Promise<string[]> {
  const problems: string[] = [];
  const frames: Array<Map<number, { view: number; frame: Uint8Array }>> = [];
  for (const node of c.nodes) {
    const report = await auditLedger(node.ledgerDir, c.serviceCertPem());
    if (!report.ok) problems.push(`${node.name}'s ledger does not audit: ${report.failure?.message}`);
    else if (report.verifiedThrough < upTo)
      problems.push(`${node.name}'s ledger is signed through ${report.verifiedThrough} < commit ${upTo}`);
    const mine = new Map<number, { view: number; frame: Uint8Array }>();
    for await (const { entry } of readLedgerDir(node.ledgerDir)) {
      if (entry.seqno > upTo) break;
      mine.set(entry.seqno, { view: entry.view, frame: entry.frame });
    }
    frames.push(mine);
  }
  const [first, ...rest] = frames;
  for (const [i, other] of rest.entries()) {
    for (const [seqno, line] of other) {
      const ref = first!.get(seqno);
      if (ref && (ref.view !== line.view || !Buffer.from(ref.frame).equals(line.frame))) {
        problems.push(`${c.nodes[i + 1]!.name}'s ledger differs from node0's at seqno ${seqno}`);
        break;
      }
    }
  }
  return problems;
}
