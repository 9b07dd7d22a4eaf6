// QuickJS's first run in a process costs far more than any later one (V8 compiles each
// WebAssembly function on its first call): a few hundred milliseconds of CPU for the prelude,
// sealing and the first module. A node that is about to run governance pays it here, while it has
// nothing else to do, instead of inside the first governance request.
import { DEFAULT_LIMITS } from "./limits.ts";
import { createModuleSet } from "./modules.ts";
import { readyQuickJs } from "./quickjs.ts";
import { Sandbox } from "./sandbox.ts";

/** A module shaped like a constitution: a class, a Map of actions, JSON, a regular expression. */
const WARM_UP_SOURCE = `
class Action { constructor(validate, apply) { this.validate = validate; this.apply = apply; } }
const actions = new Map([
  ["set_thing", new Action((args) => typeof args.n === "number" && /^[0-9a-f]+$/.test(args.id), () => {})],
]);
export function validate(input) {
  const proposal = JSON.parse(input);
  const errors = [];
  for (const [i, action] of proposal.actions.entries()) {
    const known = actions.get(action.name);
    if (!known || !known.validate(action.args)) errors.push(i + ": " + action.name);
  }
  return { valid: errors.length === 0, description: errors.join(", ") };
}`;

/** Runs one throwaway isolated call; never throws (a failure here only means no warm-up). */
export async function warmUpQuickJs(): Promise<void> {
  try {
    const qjs = await readyQuickJs();
    const set = createModuleSet({ "warm-up.js": WARM_UP_SOURCE });
    const env = { now: () => Date.now(), randomBytes: (n: number) => new Uint8Array(n) };
    const sandbox = new Sandbox(qjs, set, env, 4096, true);
    try {
      sandbox.call({
        entry: "warm-up.js",
        fn: "validate",
        args: [JSON.stringify({ actions: [{ name: "set_thing", args: { n: 1, id: "ab" } }] })],
        scope: { stores: [undefined], readOnly: true, hooks: {}, logger: undefined },
        limits: DEFAULT_LIMITS,
        info: {},
      });
    } finally {
      sandbox.dispose();
    }
  } catch {
    // Nothing to do: the first real call will simply pay for the first run itself.
  }
}
