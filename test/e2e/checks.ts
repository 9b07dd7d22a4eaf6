/**
 * What a user relies on after faults, checked on a real network: nodes converge, every write
 * reported committed is on every node with its value and nothing else is, ledgers agree byte for
 * byte up to the commit point, and the clients' history is linearizable.
 */
import assert from "node:assert/strict";
import { check, kvRegisterModel } from "../utils/lincheck/index.ts";
import { budget, ledgerPrefix, type NetNode, type Network, waitUntil } from "./harness.ts";
import type { HistoryOp, Workload } from "./workload.ts";

/**
 * Waits until every node in `nodes` is quiet and at the same point: the same commit seqno in
 * consensus and at /node/commit, with nothing uncommitted after it. Returns that seqno.
 */
export async function converge(net: Network, nodes: NetNode[], timeoutMs = 20_000): Promise<number> {
  let seen = "";
  let commit = 0;
  try {
    await waitUntil("the nodes to converge", timeoutMs, async () => {
      const states = await Promise.all(
        nodes.map(async (n) => ({ ...(await net.consensus(n)), reported: await net.commitSeqno(n) })),
      );
      seen = states
        .map(
          (s, i) =>
            `${nodes[i]!.name}: ${s.role} view ${s.view} commit ${s.commitSeqno}/${s.reported} last ${s.lastSeqno}`,
        )
        .join("; ");
      commit = states[0]!.commitSeqno;
      return states.every((s) => s.commitSeqno === commit && s.reported === commit && s.lastSeqno === commit);
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen ${seen}`);
  }
  return commit;
}

/**
 * Waits for the nodes other than `gone` to elect a primary, and insists it is in a later view than
 * `oldView` (the view `gone` led in). Returns the new primary and its view.
 */
export async function newPrimaryWithout(
  net: Network,
  gone: NetNode,
  oldView: number,
  timeoutMs = 25_000,
): Promise<{ primary: NetNode; view: number }> {
  const primary = await net.primary(
    timeoutMs,
    net.nodes.filter((n) => n !== gone),
  );
  const view = (await net.consensus(primary)).view;
  assert.ok(view > oldView, `new primary in view ${view} after ${oldView}`);
  return { primary, view };
}

/**
 * Every node holds exactly the acknowledged writes plus, possibly, writes whose outcome was
 * unknown or were never answered, each with the value it was written with; all nodes agree.
 */
export async function checkRecords(net: Network, nodes: NetNode[], load: Workload): Promise<void> {
  let reference: Map<number, string> | undefined;
  for (const node of nodes) {
    const records = await net.records(node);
    for (const [id, value] of load.acked) {
      assert.equal(records.get(id), value, `${node.name} lost committed write id=${id} (${value})`);
    }
    for (const [id, value] of records) {
      assert.equal(value, load.attempted.get(id), `${node.name} holds id=${id} = ${value}, never written so`);
    }
    if (reference)
      assert.deepEqual(records, reference, `${node.name}'s records differ from ${nodes[0]!.name}'s`);
    reference = records;
  }
}

/** The nodes' ledgers (read at rest) are identical, entry for entry and byte for byte, up to `upTo`. */
export async function checkLedgers(nodes: NetNode[], upTo: number): Promise<void> {
  const [first, ...rest] = await Promise.all(nodes.map((n) => ledgerPrefix(n.ledgerDir, upTo)));
  assert.equal(first!.length, upTo, `${nodes[0]!.name}'s ledger holds ${first!.length} of ${upTo} entries`);
  for (const [i, line] of first!.entries()) assert.equal(line.seqno, i + 1, "ledger seqnos run from 1");
  for (const [i, other] of rest.entries()) {
    const name = nodes[i + 1]!.name;
    assert.equal(other.length, upTo, `${name}'s ledger holds ${other.length} of ${upTo} entries`);
    for (const [j, line] of other.entries()) {
      const mine = first![j]!;
      assert.ok(
        line.seqno === mine.seqno && line.view === mine.view && Buffer.from(line.frame).equals(mine.frame),
        `${name}'s ledger differs from ${nodes[0]!.name}'s at seqno ${mine.seqno}`,
      );
    }
  }
}

/**
 * The history, closed by a read of every attempted id on the primary, is linearizable against
 * independent registers. Returns the number of operations checked.
 */
export async function checkLinearizable(net: Network, load: Workload): Promise<number> {
  const primary = await net.primary();
  const call = performance.now();
  const records = await net.records(primary);
  const ret = performance.now();
  const finalReads: HistoryOp[] = [...load.attempted.keys()].map((id) => ({
    clientId: -1,
    input: { op: "get", key: String(id) },
    output: { status: "ok", value: records.get(id) ?? null },
    call,
    return: ret,
  }));
  const history = [...load.history, ...finalReads];
  // The search's time limit is an idle machine's, stretched by the load: a starved checker that
  // ran out of time would fail the test with no verdict on the product.
  const result = check(kvRegisterModel, history, { timeoutMs: budget(15_000) });
  assert.equal(result.result, "ok", result.counterExample?.text ?? `checker gave ${result.result}`);
  return history.length;
}

/**
 * The checks every fault scenario ends with, once its load has stopped: no unexpected answers,
 * all nodes converge with every acknowledged write and nothing else, the history is linearizable,
 * and (after a clean stop) the ledgers agree byte for byte up to the commit point.
 */
export async function checkAfterLoad(
  net: Network,
  load: Workload,
  diagnostic: (message: string) => void,
): Promise<void> {
  assert.deepEqual(load.unexpected, []);
  diagnostic(`load: ${JSON.stringify(load.stats)}`);
  const commit = await converge(net, net.nodes);
  await checkRecords(net, net.nodes, load);
  const checked = await checkLinearizable(net, load);
  diagnostic(`linearizable: ${checked} operations; commit seqno ${commit}`);
  await net.stopNodes();
  await checkLedgers(net.nodes, commit);
}
