/** The time and step budget shared by every partition of one check. */
import type { CheckOptions } from "./types.ts";

export class Budget {
  steps = 0;
  private readonly deadline: number;
  private readonly maxSteps: number;
  private readonly now: () => number;

  constructor(options: CheckOptions) {
    this.now = options.now ?? (() => performance.now());
    const { timeoutMs, maxSteps } = options;
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new RangeError("timeoutMs must be a number >= 0");
    if (maxSteps !== undefined && !(maxSteps >= 0)) throw new RangeError("maxSteps must be a number >= 0");
    this.deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.now() + timeoutMs;
    this.maxSteps = maxSteps ?? Number.POSITIVE_INFINITY;
  }

  /** Counts one step; true once the budget is spent. Reads the clock only every 256 steps. */
  spend(): boolean {
    this.steps++;
    if (this.steps > this.maxSteps) return true;
    return (this.steps & 255) === 0 && this.now() > this.deadline;
  }

  get exhausted(): boolean {
    return this.steps >= this.maxSteps || this.now() > this.deadline;
  }
}
