import { toBigInt } from "../hex.ts";
import { keccak256 } from "../keccak.ts";
import { Fallback, Memory } from "./memory.ts";
import type { FeeTable, GasParams } from "./table.ts";
import { getWord, putWord, wordBytes, wordOf } from "./words.ts";

const U256 = (1n << 256n) - 1n;
const STACK_MAX = 1024;

/** What a frame reads from outside: its account's storage, access lists, and the block. */
export interface FrameHost {
  /** Current value of a slot (slot as 64 hex digits), without leading zeros. */
  slotNow(slotHex: string): bigint;
  /** The slot's value before the Ethereum transaction (EIP-2200's "original"). */
  slotOriginal(slotHex: string): bigint;
  /** Whether the slot was warm (EIP-2929) when the frame began. */
  slotWarm(slotHex: string): boolean;
  origin(): bigint;
  gasPrice(): bigint;
  chainId(): bigint;
  blockNumber(): bigint;
  timestamp(): bigint;
}

export interface Frame {
  code: Uint8Array;
  data: Uint8Array;
  value: bigint;
  caller: bigint;
  address: bigint;
  addressBytes: Uint8Array;
  isStatic: boolean;
  gasLimit: number;
  /** The transaction's refund counter as the frame begins. */
  refund: number;
  fees: FeeTable;
  params: GasParams;
  host: FrameHost;
}

export type Log = [Uint8Array, Uint8Array[], Uint8Array];

/** How a frame ended, when it ended in a way the fast interpreter reports itself. */
export interface Outcome {
  reverted: boolean;
  gasLeft: number;
  refund: number;
  /** RETURN's or REVERT's data; undefined when the code stopped (STOP, or ran off its end). */
  returnValue: Uint8Array | undefined;
  logs: Log[];
  /** Slot hex -> new value, in the order first written (applied only if the frame succeeds). */
  writes: Map<string, bigint>;
  /** Slots this frame warmed (added to the access list only if it succeeds). */
  warmed: Set<string>;
}

/** Valid JUMPDEST positions, per code object (code arrays are shared per code hash). */
const jumpdests = new WeakMap<Uint8Array, Uint8Array>();

function analyse(code: Uint8Array): Uint8Array {
  let valid = jumpdests.get(code);
  if (valid) return valid;
  valid = new Uint8Array(code.length);
  for (let i = 0; i < code.length; i++) {
    const op = code[i]!;
    if (op >= 0x60 && op <= 0x7f) i += op - 0x5f;
    else if (op === 0x5b) valid[i] = 1;
  }
  jumpdests.set(code, valid);
  return valid;
}

/** A PUSH's immediate: up to six bytes exactly in a double (most pushes), longer ones by hex. */
function toBig(bytes: Uint8Array): bigint {
  if (bytes.length > 6) return toBigInt(bytes);
  let v = 0;
  for (let i = 0; i < bytes.length; i++) v = v * 256 + bytes[i]!;
  return BigInt(v);
}

function slotHex(slot: bigint): string {
  return slot.toString(16).padStart(64, "0");
}

/** A memory offset or length as a number; past MAX it is out of gas anyway (see Memory). */
function small(n: bigint): number {
  if (n > 0xffffffffn) throw new Fallback("offset beyond memory");
  return Number(n);
}

/**
 * Runs one message-call frame synchronously with ethereumjs's gas accounting (the hardfork's
 * static fees from its table; memory expansion, KECCAK256, copies, EXP, LOG, EIP-2929 slot
 * access and EIP-2200/3529 SSTORE metering as ethereumjs computes them). It ends a frame only by
 * STOP, RETURN, REVERT or running off the code; anything else (an opcode not implemented here,
 * out of gas, stack faults, a bad jump, a state change in a static frame) throws `Fallback`,
 * and since the frame touched nothing outside itself, ethereumjs runs it again from the start.
 */
export function runFrame(f: Frame): Outcome {
  const { code, fees, params, host } = f;
  const memory = new Memory(params);
  const stack: bigint[] = [];
  const logs: Log[] = [];
  const writes = new Map<string, bigint>();
  const warmed = new Set<string>();
  let gas = f.gasLimit;
  let refund = f.refund;
  let valid: Uint8Array | undefined;
  let pc = 0;

  const use = (n: number) => {
    gas -= n;
    if (gas < 0) throw new Fallback("out of gas");
  };
  const pop = (): bigint => {
    const v = stack.pop();
    if (v === undefined) throw new Fallback("stack underflow");
    return v;
  };
  const push = (v: bigint) => {
    if (stack.length >= STACK_MAX) throw new Fallback("stack overflow");
    stack.push(v);
  };
  const need = (n: number) => {
    if (stack.length < n) throw new Fallback("stack underflow");
  };
  const current = (slot: string): bigint => {
    const w = writes.get(slot);
    return w === undefined ? host.slotNow(slot) : w;
  };
  const isWarm = (slot: string): boolean => warmed.has(slot) || host.slotWarm(slot);
  const jump = (dest: bigint) => {
    valid ??= analyse(code);
    if (dest >= BigInt(code.length) || valid[Number(dest)] !== 1) throw new Fallback("invalid jump");
    pc = Number(dest);
  };
  const end = (reverted: boolean, returnValue: Uint8Array | undefined): Outcome => ({
    reverted,
    gasLeft: gas,
    refund,
    returnValue,
    logs: reverted ? [] : logs,
    writes,
    warmed,
  });

  while (pc < code.length) {
    const op = code[pc]!;
    const fee = fees[op]!;
    if (fee < 0) throw new Fallback(`opcode 0x${op.toString(16)}`);
    use(fee);
    pc++;
    if (op >= 0x60 && op <= 0x7f) {
      const n = op - 0x5f;
      let v = 0n;
      if (n <= 6 && pc + n <= code.length) {
        // Jump targets, selectors and small constants: summed as a number, converted once.
        let x = 0;
        for (let i = 0; i < n; i++) x = x * 256 + code[pc + i]!;
        v = BigInt(x);
      } else if (n === 32 && pc + n <= code.length) v = wordOf(code.subarray(pc, pc + n));
      else if (pc + n <= code.length) v = toBig(code.subarray(pc, pc + n));
      else {
        const padded = new Uint8Array(n);
        padded.set(code.subarray(pc));
        v = toBig(padded);
      }
      push(v);
      pc += n;
      continue;
    }
    if (op >= 0x80 && op <= 0x8f) {
      const depth = op - 0x7f;
      need(depth);
      push(stack[stack.length - depth]!);
      continue;
    }
    if (op >= 0x90 && op <= 0x9f) {
      const depth = op - 0x8f;
      need(depth + 1);
      const top = stack.length - 1;
      const other = top - depth;
      const t = stack[top]!;
      stack[top] = stack[other]!;
      stack[other] = t;
      continue;
    }
    switch (op) {
      case 0x00:
        return end(false, undefined);
      case 0x01: {
        need(2);
        const a = pop();
        push((a + pop()) & U256);
        break;
      }
      case 0x02: {
        need(2);
        const a = pop();
        push((a * pop()) & U256);
        break;
      }
      case 0x03: {
        need(2);
        const a = pop();
        push((a - pop()) & U256);
        break;
      }
      case 0x04: {
        need(2);
        const a = pop();
        const b = pop();
        push(b === 0n ? 0n : a / b);
        break;
      }
      case 0x05: {
        need(2);
        const a = pop();
        const b = pop();
        push(b === 0n ? 0n : BigInt.asUintN(256, BigInt.asIntN(256, a) / BigInt.asIntN(256, b)));
        break;
      }
      case 0x06: {
        need(2);
        const a = pop();
        const b = pop();
        push(b === 0n ? 0n : a % b);
        break;
      }
      case 0x07: {
        need(2);
        const a = pop();
        const b = pop();
        push(b === 0n ? 0n : BigInt.asUintN(256, BigInt.asIntN(256, a) % BigInt.asIntN(256, b)));
        break;
      }
      case 0x08: {
        need(3);
        const a = pop();
        const b = pop();
        const c = pop();
        push(c === 0n ? 0n : (a + b) % c);
        break;
      }
      case 0x09: {
        need(3);
        const a = pop();
        const b = pop();
        const c = pop();
        push(c === 0n ? 0n : (a * b) % c);
        break;
      }
      case 0x0a: {
        need(2);
        let base = pop();
        let e = pop();
        if (e !== 0n) use(params.expByte * Math.ceil(e.toString(2).length / 8));
        let r = 1n;
        while (e > 0n) {
          if (e & 1n) r = (r * base) & U256;
          base = (base * base) & U256;
          e >>= 1n;
        }
        push(r);
        break;
      }
      case 0x0b: {
        need(2);
        const k = pop();
        let v = pop();
        if (k < 31n) {
          const signBit = k * 8n + 7n;
          const mask = (1n << signBit) - 1n;
          v = (v >> signBit) & 1n ? v | (U256 ^ mask) : v & mask;
        }
        push(v);
        break;
      }
      case 0x10:
      case 0x11:
      case 0x12:
      case 0x13:
      case 0x14: {
        need(2);
        const a = pop();
        const b = pop();
        let r: boolean;
        if (op === 0x10) r = a < b;
        else if (op === 0x11) r = a > b;
        else if (op === 0x12) r = BigInt.asIntN(256, a) < BigInt.asIntN(256, b);
        else if (op === 0x13) r = BigInt.asIntN(256, a) > BigInt.asIntN(256, b);
        else r = a === b;
        push(r ? 1n : 0n);
        break;
      }
      case 0x15:
        push(pop() === 0n ? 1n : 0n);
        break;
      case 0x16: {
        need(2);
        const a = pop();
        push(a & pop());
        break;
      }
      case 0x17: {
        need(2);
        const a = pop();
        push(a | pop());
        break;
      }
      case 0x18: {
        need(2);
        const a = pop();
        push(a ^ pop());
        break;
      }
      case 0x19:
        push(U256 ^ pop());
        break;
      case 0x1a: {
        need(2);
        const i = pop();
        const w = pop();
        push(i >= 32n ? 0n : (w >> ((31n - i) * 8n)) & 0xffn);
        break;
      }
      case 0x1b: {
        need(2);
        const s = pop();
        const v = pop();
        push(s >= 256n ? 0n : (v << s) & U256);
        break;
      }
      case 0x1c: {
        need(2);
        const s = pop();
        const v = pop();
        push(s >= 256n ? 0n : v >> s);
        break;
      }
      case 0x1d: {
        need(2);
        const s = pop();
        const v = BigInt.asIntN(256, pop());
        push(BigInt.asUintN(256, s >= 256n ? (v < 0n ? -1n : 0n) : v >> s));
        break;
      }
      case 0x20: {
        need(2);
        const offset = pop();
        const length = pop();
        use(memory.expand(offset, length) + params.keccakWord * Math.ceil(small(length) / 32));
        const data = length === 0n ? new Uint8Array(0) : memory.read(small(offset), small(length));
        push(wordOf(keccak256(data)));
        break;
      }
      case 0x30:
        push(f.address);
        break;
      case 0x32:
        push(host.origin());
        break;
      case 0x33:
        push(f.caller);
        break;
      case 0x34:
        push(f.value);
        break;
      case 0x35: {
        const i = pop();
        if (i >= BigInt(f.data.length)) push(0n);
        else {
          const at = Number(i);
          if (at + 32 <= f.data.length) push(wordOf(f.data.subarray(at, at + 32)));
          else {
            const word = new Uint8Array(32);
            word.set(f.data.subarray(at, at + 32));
            push(wordOf(word));
          }
        }
        break;
      }
      case 0x36:
        push(BigInt(f.data.length));
        break;
      case 0x37:
      case 0x39: {
        need(3);
        const to = pop();
        const from = pop();
        const length = pop();
        use(memory.expand(to, length) + (length === 0n ? 0 : params.copy * Math.ceil(small(length) / 32)));
        if (length !== 0n) memory.copyIn(small(to), op === 0x37 ? f.data : code, from, small(length));
        break;
      }
      case 0x38:
        push(BigInt(code.length));
        break;
      case 0x3a:
        push(host.gasPrice());
        break;
      case 0x3d:
        // No call has run in this frame (calls are ethereumjs's): the return data buffer is empty.
        push(0n);
        break;
      case 0x42:
        push(host.timestamp());
        break;
      case 0x43:
        push(host.blockNumber());
        break;
      case 0x46:
        push(host.chainId());
        break;
      case 0x50:
        pop();
        break;
      case 0x51: {
        const offset = pop();
        use(memory.expand(offset, 32n));
        push(getWord(memory.view, Number(offset)));
        break;
      }
      case 0x52:
      case 0x53: {
        need(2);
        const offset = pop();
        const v = pop();
        use(memory.expand(offset, op === 0x52 ? 32n : 1n));
        const at = Number(offset);
        if (op === 0x53) memory.bytes[at] = Number(v & 0xffn);
        else putWord(memory.view, at, v);
        break;
      }
      case 0x54: {
        const slot = slotHex(pop());
        if (isWarm(slot)) use(params.warmRead);
        else {
          use(params.coldSload);
          warmed.add(slot);
        }
        push(current(slot));
        break;
      }
      case 0x55: {
        if (f.isStatic) throw new Fallback("SSTORE in a static frame");
        need(2);
        const slot = slotHex(pop());
        const v = pop();
        // EIP-2200's sentry looks at the gas left before this instruction's charge.
        if (gas + fee <= params.sentry) throw new Fallback("SSTORE below the sentry");
        const now = current(slot);
        const original = host.slotOriginal(slot);
        const warm = isWarm(slot);
        let cost: number;
        if (now === v) cost = warm ? params.warmRead : params.noop;
        else if (original === now) {
          if (original === 0n) cost = params.init;
          else {
            if (v === 0n) refund += params.clearRefund;
            cost = params.clean;
          }
        } else {
          if (original !== 0n) {
            if (now === 0n) {
              refund -= params.clearRefund;
              if (refund < 0) throw new Fallback("refund exhausted");
            } else if (v === 0n) refund += params.clearRefund;
          }
          if (original === v) {
            if (original === 0n) refund += warm ? params.init - params.warmRead : params.initRefund;
            else refund += warm ? params.reset - params.coldSload - params.warmRead : params.cleanRefund;
          }
          cost = params.dirty;
        }
        if (!warm) {
          cost += params.coldSload;
          warmed.add(slot);
        }
        use(cost);
        writes.set(slot, v);
        break;
      }
      case 0x56:
        jump(pop());
        break;
      case 0x57: {
        need(2);
        const dest = pop();
        if (pop() !== 0n) jump(dest);
        break;
      }
      case 0x58:
        push(BigInt(pc - 1));
        break;
      case 0x59:
        push(BigInt(memory.words * 32));
        break;
      case 0x5a:
        push(BigInt(gas));
        break;
      case 0x5b:
        break;
      case 0x5e: {
        need(3);
        const to = pop();
        const from = pop();
        const length = pop();
        const words = (length + 31n) / 32n;
        use(3 * small(words) + memory.expand(from, length) + memory.expand(to, length));
        if (length !== 0n) memory.bytes.copyWithin(small(to), small(from), small(from) + small(length));
        break;
      }
      case 0x5f:
        push(0n);
        break;
      case 0xa0:
      case 0xa1:
      case 0xa2:
      case 0xa3:
      case 0xa4: {
        if (f.isStatic) throw new Fallback("LOG in a static frame");
        const n = op - 0xa0;
        need(2 + n);
        const offset = pop();
        const length = pop();
        const topics: Uint8Array[] = [];
        for (let i = 0; i < n; i++) topics.push(wordBytes(pop()));
        use(memory.expand(offset, length) + params.logTopic * n + small(length) * params.logData);
        const data = length === 0n ? new Uint8Array(0) : memory.read(small(offset), small(length));
        logs.push([f.addressBytes, topics, data]);
        break;
      }
      case 0xf3:
      case 0xfd: {
        need(2);
        const offset = pop();
        const length = pop();
        use(memory.expand(offset, length));
        const data = length === 0n ? new Uint8Array(0) : memory.read(small(offset), small(length));
        return end(op === 0xfd, data);
      }
      default:
        throw new Fallback(`opcode 0x${op.toString(16)}`);
    }
  }
  return end(false, undefined);
}
