// QuickJS's interrupt countdown of one context. QuickJS polls the interrupt handler each time a
// per-context counter of ticks (one per function call and per loop jump) runs down from
// TICKS_PER_STEP, and the counter carries over from one call to the next: where a call's first
// step falls would depend on what the context ran before. A step budget whose verdict depends on
// the call alone needs the countdown reset at the start of each call.
//
// quickjs-emscripten does not expose the counter (`interrupt_counter` in QuickJS's JSContext), so
// it is found in the WebAssembly memory once per loaded module, by watching which word of the
// context moves exactly as the ticks do, and only trusted after a write to it is seen to move the
// next poll. When that fails (another QuickJS build), each reset instead runs a loop that only
// ticks until the next poll: correct, at up to one step of spinning per call (~160 us).
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { TICKS_PER_STEP } from "./limits.ts";
import type { QuickJs } from "./quickjs.ts";

/** Counts its iterations: `state.n + 1` ticks were left before the poll that stopped it. */
const SPIN_SOURCE = "(function (state) { state.n = 0; for (;;) state.n++; })";
/** A little work of a fixed tick count, to watch the counter move. */
const WORK_SOURCE = "(function () { for (let i = 0; i < 100; i++) {} })";
/** How far into JSContext to look for the counter (the struct is about 260 bytes in wasm32). */
const SEARCH_BYTES = 1024;

/** Per loaded module: the counter's offset in JSContext, or null when it could not be found. */
const offsets = new WeakMap<object, number | null>();

export class TickCounter {
  /** True while a spin runs: the interrupt handler must stop it (return true) and count nothing. */
  spinning = false;
  private spinFn: { fn: QuickJSHandle; state: QuickJSHandle } | undefined;
  /** The counter's address; null when it could not be found; undefined until first needed. */
  private address: number | null | undefined;

  /** The interrupt handler of the context's runtime must stop a spin (see `spinning`). */
  constructor(
    private readonly qjs: QuickJs,
    private readonly ctx: QuickJSContext,
  ) {}

  /** Whether resets and reads are O(1) memory accesses (the counter was found). */
  get direct(): boolean {
    return typeof this.locate() === "number";
  }

  /** Makes the next poll come after exactly TICKS_PER_STEP ticks. */
  reset(): void {
    const address = this.locate();
    if (address !== null) this.memory().setInt32(address, TICKS_PER_STEP, true);
    else this.spin();
  }

  /** Ticks left before the next poll; undefined when the counter cannot be read directly. */
  left(): number | undefined {
    const address = this.locate();
    return address === null ? undefined : this.memory().getInt32(address, true);
  }

  private locate(): number | null {
    if (this.address !== undefined) return this.address;
    let offset = offsets.get(this.qjs.module);
    if (offset === undefined) {
      offset = this.find();
      offsets.set(this.qjs.module, offset);
    }
    this.address = offset === null ? null : this.contextPointer() + offset;
    return this.address;
  }

  dispose(): void {
    this.spinFn?.fn.dispose();
    this.spinFn?.state.dispose();
    this.spinFn = undefined;
  }

  private memory(): DataView {
    const heap = (this.qjs.module as unknown as { module: { HEAPU8: Uint8Array } }).module.HEAPU8;
    return new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  }

  private contextPointer(): number {
    return (this.ctx as unknown as { ctx: { value: number } }).ctx.value;
  }

  /** Runs until the next poll; returns how many ticks were left before it (undefined: failed). */
  private spin(): number | undefined {
    const ctx = this.ctx;
    if (this.spinFn === undefined) {
      const made = ctx.evalCode(SPIN_SOURCE, "<coco:spin>", { type: "global" });
      if (made.error !== undefined) {
        made.error.dispose();
        return undefined;
      }
      this.spinFn = { fn: made.value, state: ctx.newObject() };
    }
    this.spinning = true;
    const result = ctx.callFunction(this.spinFn.fn, ctx.undefined, this.spinFn.state);
    const stopped = !this.spinning;
    this.spinning = false;
    if (result.error !== undefined) result.error.dispose();
    else result.value.dispose();
    if (!stopped) return undefined;
    return ctx.getProp(this.spinFn.state, "n").consume((h) => ctx.getNumber(h)) + 1;
  }

  /**
   * The counter's offset in JSContext: the one word that holds TICKS_PER_STEP right after a poll,
   * then exactly the ticks left that a spin measures, and that moves the next poll when written.
   */
  private find(): number | null {
    const ctx = this.ctx;
    const base = this.contextPointer();
    const made = ctx.evalCode(WORK_SOURCE, "<coco:calibrate>", { type: "global" });
    if (made.error !== undefined) {
      made.error.dispose();
      return null;
    }
    const work = made.value;
    try {
      if (this.spin() === undefined) return null;
      let candidates: number[] = [];
      const view = this.memory();
      for (let off = 0; off + 4 <= SEARCH_BYTES; off += 4) {
        if (view.getInt32(base + off, true) === TICKS_PER_STEP) candidates.push(off);
      }
      const ran = ctx.callFunction(work, ctx.undefined);
      if (ran.error !== undefined) {
        ran.error.dispose();
        return null;
      }
      ran.value.dispose();
      const values = candidates.map((off) => this.memory().getInt32(base + off, true));
      const left = this.spin();
      if (left === undefined || left >= TICKS_PER_STEP) return null;
      candidates = candidates.filter((_, i) => values[i] === left);
      if (candidates.length !== 1) return null;
      const offset = candidates[0] as number;
      // Trust it only once a write is seen to move the next poll.
      const probe = TICKS_PER_STEP - 37;
      this.memory().setInt32(base + offset, probe, true);
      if (this.spin() !== probe) return null;
      return offset;
    } finally {
      work.dispose();
    }
  }
}
