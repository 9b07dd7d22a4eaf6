/**
 * A map of independent registers with get, put and delete: the model Coco's simulator and
 * end-to-end tests record their client histories against. A key is absent (`null`) until put, and
 * again after delete. Histories are checked one key at a time.
 *
 * Leave definitely-failed requests out of the history (they had no effect); give requests whose
 * outcome is unknown (time-out, crash) `status: "unknown"` and return time `Infinity`.
 */
import { describeMap, mapEqual, mapHash, partitionByKey, withKey } from "./keyed.ts";
import type { Model } from "./types.ts";

export type KvRegisterInput =
  | { op: "get"; key: string }
  | { op: "put"; key: string; value: string }
  | { op: "delete"; key: string };

/** A get that succeeded carries what it read (`null`: absent). */
export type KvRegisterOutput = { status: "ok"; value?: string | null } | { status: "unknown" };

export type KvRegisterState = ReadonlyMap<string, string>;

export const kvRegisterModel: Model<KvRegisterState, KvRegisterInput, KvRegisterOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    switch (input.op) {
      case "get":
        if (output.status === "unknown") return { ok: true, state };
        return { ok: (output.value ?? null) === (state.get(input.key) ?? null), state };
      case "put":
        return { ok: true, state: withKey(state, input.key, input.value) };
      case "delete":
        return { ok: true, state: withKey(state, input.key, undefined) };
    }
  },
  equal: mapEqual,
  hash: mapHash,
  partition: partitionByKey,
  describeOperation(input, output) {
    const key = JSON.stringify(input.key);
    const unknown = output.status === "unknown" ? " -> ?" : "";
    switch (input.op) {
      case "get": {
        if (output.status === "unknown") return `get(${key}) -> ?`;
        const value = output.value ?? null;
        return `get(${key}) -> ${value === null ? "absent" : JSON.stringify(value)}`;
      }
      case "put":
        return `put(${key}, ${JSON.stringify(input.value)})${unknown}`;
      case "delete":
        return `delete(${key})${unknown}`;
    }
  },
  describeState: (s) => (s.size === 0 ? "{} (every key absent)" : describeMap(s)),
};
