import type { RunningNode } from "../../src/node/index.ts";
import type { Cluster } from "./cluster.ts";

/**
 * Consensus messages between `a` and the others are dropped both ways until `heal()`: with
 * election timeouts longer than the test's window, a primary cut off this way stays primary and
 * applies what it writes, but nothing it writes meanwhile commits (state that a view change could
 * still roll back).
 */
export function cutOff(a: RunningNode, others: RunningNode[]): { heal(): void } {
  type Sender = { send(to: string, message: unknown): boolean };
  const channelsOf = (n: RunningNode) => (n.node as unknown as { channels: Sender }).channels;
  const restore: Array<() => void> = [];
  const drop = (from: RunningNode, blocked: (to: string) => boolean) => {
    const channels = channelsOf(from);
    const send = channels.send.bind(channels);
    channels.send = (to, message) => (blocked(to) ? false : send(to, message));
    restore.push(() => {
      channels.send = send;
    });
  };
  drop(a, () => true);
  for (const other of others) drop(other, (to) => to === a.node.nodeId);
  return {
    heal() {
      for (const r of restore) r();
    },
  };
}

/** Election timeouts of 10 to 15 s (100 ms ticks): a cut-off primary stays primary while a test looks. */
export const SLOW_ELECTIONS = { tickMs: 100, electionTicksMin: 100, electionTicksMax: 150 };

/** Election timeouts of 3 to 4 s (100 ms ticks): time for a test to act first, then an election soon. */
export const QUICK_ELECTIONS = { tickMs: 100, electionTicksMin: 30, electionTicksMax: 40 };

/** A 3-node open service whose nodes all use `consensus`; its primary and the other two. */
export async function threeNodes(
  cluster: Cluster,
  settings: Record<string, unknown> = {},
  consensus: Record<string, number> = SLOW_ELECTIONS,
): Promise<{ primary: RunningNode; others: RunningNode[] }> {
  const n0 = await cluster.startService({ openAtNodes: 3, consensus, ...settings });
  await Promise.all([cluster.join("n1", n0, { consensus }), cluster.join("n2", n0, { consensus })]);
  await cluster.untilOpen();
  const primary = cluster.primary()!;
  return { primary, others: cluster.nodes.filter((n) => n !== primary) };
}
