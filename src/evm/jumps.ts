/**
 * Jump-destination analysis cached per contract code. ethereumjs scans a contract's whole code
 * (valid JUMPDESTs, PUSH immediates, the opcode of every position) at the first jump of every
 * call, so an ERC-20 transfer re-analyses the token's code each time: 0.2 ms per transfer, the
 * largest single function of the interpreter. The result depends only on the code and on the
 * EVM's opcode table (its hardfork), and the interpreter only reads it; so it is kept per opcode
 * table and per code object. Code objects are stable because the state manager hands out one
 * `Uint8Array` per code hash (src/evm/state.ts); init code and other fresh arrays simply miss and
 * are collected with their entry (weak keys).
 *
 * The analysis is a method of ethereumjs's Interpreter, which the package does not export: its
 * module is imported from beside the package's entry point (the dependency is pinned exactly).
 * If that module is not where this expects, nothing is cached and execution is unchanged.
 */

type Analysis = { jumps: Uint8Array; pushes: Record<number, bigint>; opcodesCached: unknown[] };
interface InterpreterLike {
  _evm: { _opcodeMap: object };
  _getValidJumpDestinations(code: Uint8Array): Analysis;
}

/** Per opcode table (one per EVM and hardfork), per code object: the analysis. */
const analyses = new WeakMap<object, WeakMap<Uint8Array, Analysis>>();
let hits = 0;

/** How many analyses were answered from the cache (for tests and profiles). */
export function jumpAnalysisHits(): number {
  return hits;
}

async function install(): Promise<boolean> {
  try {
    const entry = import.meta.resolve("@ethereumjs/evm");
    const { Interpreter } = (await import(new URL("./interpreter.js", entry).href)) as {
      Interpreter?: { prototype: InterpreterLike };
    };
    const proto = Interpreter?.prototype;
    const analyse = proto?._getValidJumpDestinations;
    if (!proto || typeof analyse !== "function") return false;
    proto._getValidJumpDestinations = function (this: InterpreterLike, code: Uint8Array): Analysis {
      const table = this._evm._opcodeMap;
      let perCode = analyses.get(table);
      if (!perCode) {
        perCode = new WeakMap();
        analyses.set(table, perCode);
      }
      const known = perCode.get(code);
      if (known) {
        hits++;
        return known;
      }
      const made = analyse.call(this, code);
      perCode.set(code, made);
      return made;
    };
    return true;
  } catch {
    return false;
  }
}

/** Whether the cache is in place (false only if ethereumjs's layout changed). */
export const JUMP_ANALYSIS_CACHED: boolean = await install();
