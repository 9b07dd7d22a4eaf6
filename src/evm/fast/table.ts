import { type Common, Hardfork } from "@ethereumjs/common";

/**
 * What the fast interpreter knows of an EVM: each opcode's static fee, taken from the EVM's own
 * opcode table (so it is the fee of the hardfork that EVM runs), and whether the fast interpreter
 * implements that opcode under that name. An opcode it does not implement, or one the table names
 * differently (another hardfork), is -1: the frame goes to ethereumjs.
 */
export type FeeTable = Int32Array;

/** Opcodes implemented here, by the name ethereumjs's table gives them. */
const IMPLEMENTED: Record<string, readonly number[]> = {
  STOP: [0x00],
  ADD: [0x01],
  MUL: [0x02],
  SUB: [0x03],
  DIV: [0x04],
  SDIV: [0x05],
  MOD: [0x06],
  SMOD: [0x07],
  ADDMOD: [0x08],
  MULMOD: [0x09],
  EXP: [0x0a],
  SIGNEXTEND: [0x0b],
  LT: [0x10],
  GT: [0x11],
  SLT: [0x12],
  SGT: [0x13],
  EQ: [0x14],
  ISZERO: [0x15],
  AND: [0x16],
  OR: [0x17],
  XOR: [0x18],
  NOT: [0x19],
  BYTE: [0x1a],
  SHL: [0x1b],
  SHR: [0x1c],
  SAR: [0x1d],
  KECCAK256: [0x20],
  ADDRESS: [0x30],
  ORIGIN: [0x32],
  CALLER: [0x33],
  CALLVALUE: [0x34],
  CALLDATALOAD: [0x35],
  CALLDATASIZE: [0x36],
  CALLDATACOPY: [0x37],
  CODESIZE: [0x38],
  CODECOPY: [0x39],
  GASPRICE: [0x3a],
  RETURNDATASIZE: [0x3d],
  TIMESTAMP: [0x42],
  NUMBER: [0x43],
  CHAINID: [0x46],
  POP: [0x50],
  MLOAD: [0x51],
  MSTORE: [0x52],
  MSTORE8: [0x53],
  SLOAD: [0x54],
  SSTORE: [0x55],
  JUMP: [0x56],
  JUMPI: [0x57],
  PC: [0x58],
  MSIZE: [0x59],
  GAS: [0x5a],
  JUMPDEST: [0x5b],
  MCOPY: [0x5e],
  PUSH0: [0x5f],
  PUSH: range(0x60, 0x7f),
  DUP: range(0x80, 0x8f),
  SWAP: range(0x90, 0x9f),
  LOG: range(0xa0, 0xa4),
  RETURN: [0xf3],
  REVERT: [0xfd],
};

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

interface OpcodeEntry {
  opcodeInfo: { code: number; name: string; fee: number };
}

const tables = new WeakMap<object, FeeTable>();

/** The fee table for an EVM's opcode map (ethereumjs's `_opcodeMap`: one per EVM and hardfork). */
export function feeTable(opcodeMap: Record<number, OpcodeEntry | undefined>): FeeTable {
  let table = tables.get(opcodeMap);
  if (table) return table;
  table = new Int32Array(256).fill(-1);
  for (const [name, codes] of Object.entries(IMPLEMENTED)) {
    for (const code of codes) {
      const info = opcodeMap[code]?.opcodeInfo;
      if (info && info.name === name && info.code === code && Number.isSafeInteger(info.fee)) {
        table[code] = info.fee;
      }
    }
  }
  tables.set(opcodeMap, table);
  return table;
}

/** The gas parameters the dynamic costs use, read from the Common (its hardfork's values). */
export interface GasParams {
  memory: number;
  quadDivisor: number;
  keccakWord: number;
  copy: number;
  expByte: number;
  logTopic: number;
  logData: number;
  warmRead: number;
  coldSload: number;
  sentry: number;
  noop: number;
  init: number;
  clean: number;
  dirty: number;
  clearRefund: number;
  initRefund: number;
  cleanRefund: number;
  reset: number;
}

const paramsByCommon = new WeakMap<Common, GasParams | null>();

/**
 * The parameters for `common`, or null when its rules are not the ones implemented here (EIP-2929
 * access costs and EIP-2200/3529 SSTORE metering, without the experimental EIPs that change
 * SSTORE, memory or code access): then every frame goes to ethereumjs.
 */
export function gasParams(common: Common): GasParams | null {
  const known = paramsByCommon.get(common);
  if (known !== undefined) return known;
  let params: GasParams | null = null;
  // EIP-2200 is not in ethereumjs's EIP lists: it applies from Istanbul on (as its SSTORE does).
  const required = [2929, 3529];
  const excluded = [6800, 7864, 7928, 8037, 8038, 2780, 7708, 3540, 8024];
  if (
    common.gteHardfork(Hardfork.Istanbul) &&
    required.every((e) => common.isActivatedEIP(e)) &&
    !excluded.some((e) => common.isActivatedEIP(e))
  ) {
    const p = (name: string) => Number(common.param(name));
    params = {
      memory: p("memoryGas"),
      quadDivisor: p("quadCoefficientDivGas"),
      keccakWord: p("keccak256WordGas"),
      copy: p("copyGas"),
      expByte: p("expByteGas"),
      logTopic: p("logTopicGas"),
      logData: p("logDataGas"),
      warmRead: p("warmstoragereadGas"),
      coldSload: p("coldsloadGas"),
      sentry: p("sstoreSentryEIP2200Gas"),
      noop: p("sstoreNoopEIP2200Gas"),
      init: p("sstoreInitEIP2200Gas"),
      clean: p("sstoreCleanEIP2200Gas"),
      dirty: p("sstoreDirtyEIP2200Gas"),
      clearRefund: p("sstoreClearRefundEIP2200Gas"),
      initRefund: p("sstoreInitRefundEIP2200Gas"),
      cleanRefund: p("sstoreCleanRefundEIP2200Gas"),
      reset: p("sstoreResetGas"),
    };
  }
  paramsByCommon.set(common, params);
  return params;
}
