/** A scheduled action in simulated time. Ties run in the order they were scheduled. */
interface Scheduled {
  time: number;
  order: number;
  run: () => void;
}

/** A binary min-heap of events by (time, order): the simulator's whole notion of "what next". */
export class EventQueue {
  private heap: Scheduled[] = [];
  private counter = 0;
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  at(time: number, run: () => void): void {
    if (time < this.now) throw new Error(`event scheduled in the past: ${time} < ${this.now}`);
    this.push({ time, order: this.counter++, run });
  }

  after(delay: number, run: () => void): void {
    this.at(this.now + delay, run);
  }

  /** Runs the next event; false once nothing is left before `until`. */
  runNext(until: number): boolean {
    const top = this.heap[0];
    if (!top || top.time > until) return false;
    this.pop();
    this.now = top.time;
    top.run();
    return true;
  }

  private push(item: Scheduled): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  }
}

function before(x: Scheduled, y: Scheduled): boolean {
  return x.time < y.time || (x.time === y.time && x.order < y.order);
}
