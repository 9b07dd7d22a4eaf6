/**
 * A compare-and-set register: the model for Jepsen's etcd histories (one key, integer values,
 * initially absent). Outputs say whether the operation succeeded, definitely failed, or has an
 * unknown outcome (a time-out), which is legal in any state.
 */
import type { Model } from "./types.ts";

export type CasValue = number;
/** `null` while the key has never been written. */
export type CasState = CasValue | null;

export type CasInput =
  | { op: "read" }
  | { op: "write"; value: CasValue }
  | { op: "cas"; from: CasValue; to: CasValue };

export type CasOutput =
  /** Success; a read carries what it saw (`null`: the key does not exist). */
  | { status: "ok"; value?: CasValue | null }
  /** Definitely no effect: for a CAS, the value was not `from`. */
  | { status: "fail" }
  /** May or may not have taken effect. */
  | { status: "unknown" };

export const casRegisterModel: Model<CasState, CasInput, CasOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case "read":
        if (output.status !== "ok") return { ok: true, state };
        return { ok: (output.value ?? null) === state, state };
      case "write":
        return { ok: true, state: output.status === "fail" ? state : input.value };
      case "cas": {
        const matches = state === input.from;
        if (output.status === "ok") return { ok: matches, state: input.to };
        if (output.status === "fail") return { ok: !matches, state };
        return { ok: true, state: matches ? input.to : state };
      }
    }
  },
  equal: (a, b) => a === b,
  hash: (s) => String(s),
  describeOperation(input, output) {
    const result =
      output.status === "unknown"
        ? "?"
        : output.status === "fail"
          ? "fail"
          : input.op === "read"
            ? nil(output.value ?? null)
            : "ok";
    switch (input.op) {
      case "read":
        return `read() -> ${result}`;
      case "write":
        return `write(${input.value}) -> ${result}`;
      case "cas":
        return `cas(${input.from}, ${input.to}) -> ${result}`;
    }
  },
  describeState: (s) => nil(s),
};

function nil(v: CasValue | null): string {
  return v === null ? "nil" : String(v);
}
