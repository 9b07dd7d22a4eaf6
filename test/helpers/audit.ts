import assert from "node:assert/strict";
import { join } from "node:path";
import { auditLedger, type RunningNode } from "../../src/node/index.ts";

/**
 * Stops `nodes` and audits each one's ledger as `coco ledger audit` would, with the service
 * certificate the node ended with: every signature by a node trusted at that point, with its
 * endorsed certificate, one signer per view. Nodes whose ledger starts after a snapshot are
 * skipped (an audit needs the ledger from seqno 1).
 */
export async function stopAndAuditLedgers(nodes: RunningNode[]): Promise<number> {
  for (const node of nodes) await node.stop();
  let audited = 0;
  for (const { node } of nodes) {
    if (node.state.historyStart > 0) continue;
    const report = await auditLedger(join(node.config.dir, "ledger"), node.identity.serviceCertPem);
    assert.equal(report.ok, true, `${node.nodeId}'s ledger: ${JSON.stringify(report.failure)}`);
    audited++;
  }
  return audited;
}
