/**
 * The shape the fault scenarios share: on a three-node network, clients write and read while the
 * scenario injects its faults; the load stops whatever happens; then every node is checked as
 * `checkAfterLoad` says.
 */
import type { TestContext } from "node:test";
import { checkAfterLoad } from "./checks.ts";
import { type Network, withNetwork } from "./harness.ts";
import { Workload, type WorkloadOptions } from "./workload.ts";

export async function faultsUnderLoad(
  t: TestContext,
  options: WorkloadOptions,
  faults: (net: Network, load: Workload) => Promise<void>,
  /** Runs after the load stops and before the checks: to bring back nodes the checks must cover. */
  settle?: (net: Network) => Promise<void>,
): Promise<void> {
  await withNetwork(3, async (net) => {
    const load = new Workload(net, options);
    load.start();
    try {
      await faults(net, load);
    } finally {
      await load.stop();
    }
    await settle?.(net);
    await checkAfterLoad(net, load, (m) => t.diagnostic(m));
  });
}
