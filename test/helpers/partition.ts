import type { RunningNode } from "../../src/node/index.ts";

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
