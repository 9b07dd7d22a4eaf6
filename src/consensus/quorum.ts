import type { NodeId } from "./types.ts";

/** True if, in every configuration, a strict majority of the members satisfy `yes`. */
export function hasQuorum(configs: readonly (readonly NodeId[])[], yes: (id: NodeId) => boolean): boolean {
  if (configs.length === 0) return false;
  for (const config of configs) {
    let count = 0;
    for (const id of config) if (yes(id)) count++;
    if (count * 2 <= config.length) return false;
  }
  return true;
}

/**
 * The highest value that a majority of every configuration has reached: per configuration the
 * value of its median-from-the-top member, then the smallest of those. An empty configuration
 * (a node that knows none yet) reaches nothing.
 */
export function quorumValue(
  configs: readonly (readonly NodeId[])[],
  valueAt: (id: NodeId) => number,
): number {
  let result = Number.POSITIVE_INFINITY;
  for (const config of configs) {
    if (config.length === 0) return 0;
    const values = config.map(valueAt).sort((a, b) => b - a);
    result = Math.min(result, values[Math.floor(config.length / 2)]!);
  }
  return result === Number.POSITIVE_INFINITY ? 0 : result;
}
