/**
 * A map from string keys to string values with get, put and append: the model of the KV vector
 * histories (MIT's lab service). Every key starts as "" (absent and "" are the same). Keys never
 * interact, so histories are checked one key at a time.
 */
import { describeMap, mapEqual, mapHash, partitionByKey, withKey } from "./keyed.ts";
import type { Model } from "./types.ts";

export type KvInput =
  | { op: "get"; key: string }
  | { op: "put"; key: string; value: string }
  | { op: "append"; key: string; value: string };

/** A get that succeeded carries the value it returned. `unknown`: may or may not have taken effect. */
export type KvOutput = { status: "ok"; value?: string } | { status: "unknown" };

export type KvState = ReadonlyMap<string, string>;

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    const current = state.get(input.key) ?? "";
    switch (input.op) {
      case "get":
        return { ok: output.status === "unknown" || (output.value ?? "") === current, state };
      case "put":
        return { ok: true, state: withKey(state, input.key, input.value === "" ? undefined : input.value) };
      case "append": {
        const value = current + input.value;
        return { ok: true, state: withKey(state, input.key, value === "" ? undefined : value) };
      }
    }
  },
  equal: mapEqual,
  hash: mapHash,
  partition: partitionByKey,
  describeOperation(input, output) {
    const result = output.status === "unknown" ? " -> ?" : "";
    switch (input.op) {
      case "get":
        return `get(${q(input.key)}) -> ${output.status === "ok" ? q(output.value ?? "") : "?"}`;
      case "put":
        return `put(${q(input.key)}, ${q(input.value)})${result}`;
      case "append":
        return `append(${q(input.key)}, ${q(input.value)})${result}`;
    }
  },
  describeState: (s) => (s.size === 0 ? "{} (every key empty)" : describeMap(s)),
};

function q(s: string): string {
  return JSON.stringify(s);
}
