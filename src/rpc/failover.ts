import { type AppAnswer, errorAnswer } from "./answers.ts";
import type { RpcNode } from "./port.ts";

/**
 * Forwarding across a change of primary. A backup hands a call to the node it believes is
 * primary; when that node dies or loses its role, what the backup may do depends on whether the
 * call had left it:
 * - never written to the primary's connection (queued while the connection was down): it cannot
 *   have run, so it is taken back and sent to the new primary as soon as one is known;
 * - written, then the connection closed or the primary changed: it may have run there. A call that
 *   only reads is sent again; a write is answered 503 `ForwardedOutcomeUnknown`, saying so.
 * A primary that answers `NotPrimary` ran nothing, so the call goes on to the next primary too.
 */

/** How often a waiting call looks at who is primary (only while calls wait). */
const WATCH_INTERVAL_MS = 20;
/** Pause before asking the same primary again after a call could not be handed to it. */
const RETRY_PAUSE_MS = 50;
/**
 * A call already written to a primary that has since lost its role may still be answered (the
 * node is alive and replies NotPrimary, or ran it just before): this long, then it is given up.
 */
const STEPPED_DOWN_GRACE_MS = 1000;

/** One node's view of who leads, polled while forwarded calls wait on it. */
class PrimaryWatch {
  readonly #node: RpcNode;
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #last: string | null;

  constructor(node: RpcNode) {
    this.#node = node;
    this.#last = node.primaryId;
  }

  /** Calls `listener` whenever the primary changes, until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) {
      this.#last = this.#node.primaryId;
      this.#timer = setInterval(() => this.#poll(), WATCH_INTERVAL_MS);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** Resolves after `ms`, or earlier once the primary changes. */
  changeOrPause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      const unsubscribe = this.subscribe(done);
    });
  }

  #poll(): void {
    const now = this.#node.primaryId;
    if (now === this.#last) return;
    this.#last = now;
    for (const listener of [...this.#listeners]) listener();
  }
}

const watches = new WeakMap<RpcNode, PrimaryWatch>();

function watchOf(node: RpcNode): PrimaryWatch {
  let watch = watches.get(node);
  if (!watch) {
    watch = new PrimaryWatch(node);
    watches.set(node, watch);
  }
  return watch;
}

type Attempt =
  | { kind: "answer"; answer: AppAnswer }
  /** The primary never received the call (or refused it unrun): it may go elsewhere. */
  | { kind: "not-run"; reason: string }
  /** Written to the primary, then no answer: it may have run. */
  | { kind: "unknown"; reason: string; timedOut: boolean };

/** What the failover loop needs of one call. */
export interface ForwardPlan {
  /** The call as the channel carries it. */
  message: unknown;
  /** Whether sending it twice is harmless (it only reads). */
  repeatable: boolean;
  /** Runs the call on this node, once this node has become the primary. */
  runHere(): Promise<AppAnswer>;
}

/**
 * Runs a call on the primary, following changes of primary until `forwardTimeoutMs` has passed
 * since it arrived (see the module comment).
 */
export async function forwardToPrimary(node: RpcNode, plan: ForwardPlan): Promise<AppAnswer> {
  const timeoutMs = node.settings.forwardTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  const watch = watchOf(node);
  let lastProblem = "no primary is known (an election is under way)";
  let failedPrimary: string | null = null;
  let everWritten = false;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const primary = node.primaryId;
    if (primary === null || (primary === failedPrimary && !node.isPrimary)) {
      // No primary, or the one that just failed the call: wait for a change (or retry it soon).
      await watch.changeOrPause(Math.min(remaining, primary === null ? remaining : RETRY_PAUSE_MS));
      failedPrimary = null;
      continue;
    }
    if (primary === node.nodeId) {
      if (node.isPrimary) return plan.runHere();
      await watch.changeOrPause(Math.min(remaining, RETRY_PAUSE_MS));
      continue;
    }
    const attempt = await sendOnce(node, watch, primary, plan.message, remaining);
    if (attempt.kind === "answer") {
      if (!refusedUnrun(attempt.answer)) return attempt.answer;
      lastProblem = `the primary ${short(primary)} answered NotPrimary`;
      failedPrimary = primary;
      continue;
    }
    if (attempt.kind === "not-run") {
      lastProblem = attempt.reason;
      failedPrimary = primary;
      continue;
    }
    everWritten = true;
    if (plan.repeatable) {
      lastProblem = attempt.reason;
      failedPrimary = primary;
      continue;
    }
    if (attempt.timedOut) return timedOut(node, timeoutMs);
    return errorAnswer(
      503,
      "ForwardedOutcomeUnknown",
      `this write was handed to the primary ${short(primary)}, which then ${attempt.reason} before answering: it may have run there, and it is committed only if the primary replicated it before it failed. A new primary serves writes now: retry if the write is idempotent; otherwise read back its effect first`,
      node.currentTxId(),
    );
  }
  if (everWritten && !plan.repeatable) return timedOut(node, timeoutMs);
  return errorAnswer(
    503,
    "ForwardingFailed",
    `no primary took this call within ${timeoutMs} ms (${lastProblem}); it was not run: retry`,
    node.currentTxId(),
  );
}

function timedOut(node: RpcNode, timeoutMs: number): AppAnswer {
  return errorAnswer(
    504,
    "ForwardingTimeout",
    `the primary did not answer within ${timeoutMs} ms; the call may have run there: retry if it is idempotent, otherwise read back its effect first`,
    node.currentTxId(),
  );
}

/** True for an answer that says the call ran nothing because its node is not the primary. */
function refusedUnrun(answer: AppAnswer): boolean {
  if (answer.status !== 503) return false;
  try {
    const body = JSON.parse(new TextDecoder().decode(answer.body)) as { error?: { code?: unknown } };
    return body.error?.code === "NotPrimary";
  } catch {
    return false;
  }
}

function short(nodeId: string): string {
  return nodeId.slice(0, 12);
}

/**
 * One try at one primary. If the primary changes while the call is still queued, the call is
 * taken back; if it was written, it gets a short grace to be answered.
 */
async function sendOnce(
  node: RpcNode,
  watch: PrimaryWatch,
  primary: string,
  message: unknown,
  timeoutMs: number,
): Promise<Attempt> {
  // A plain function rather than an AbortController: its signal and listener cost tens of
  // microseconds, on every forwarded call.
  let cancel: (() => void) | undefined;
  let written = false;
  let grace: NodeJS.Timeout | undefined;
  const unsubscribe = watch.subscribe(() => {
    if (node.primaryId === primary) return;
    if (!written) cancel?.();
    else grace ??= setTimeout(() => cancel?.(), STEPPED_DOWN_GRACE_MS);
  });
  try {
    const raw = await node.requestNode(primary, message, timeoutMs, {
      withCancel: (giveUp) => {
        cancel = giveUp;
      },
      onWritten: () => {
        written = true;
      },
    });
    const answer = parseAnswer(raw);
    return {
      kind: "answer",
      answer:
        answer ??
        errorAnswer(502, "BadForwardedAnswer", "the primary's answer was malformed", node.currentTxId()),
    };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const reason = (e as Error).message;
    if (!written) return { kind: "not-run", reason };
    if (code === "disconnected") return { kind: "unknown", reason: "closed its connection", timedOut: false };
    if (code === "abandoned") return { kind: "unknown", reason: "lost its role", timedOut: false };
    if (code === "timeout") return { kind: "unknown", reason: "stopped answering", timedOut: true };
    if (code === "remote") return { kind: "unknown", reason: `failed (${reason})`, timedOut: false };
    return { kind: "unknown", reason: `became unreachable (${reason})`, timedOut: false };
  } finally {
    unsubscribe();
    clearTimeout(grace);
  }
}

function parseAnswer(raw: unknown): AppAnswer | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const a = raw as Partial<AppAnswer>;
  if (
    !Number.isInteger(a.status) ||
    !(a.body instanceof Uint8Array) ||
    typeof a.headers !== "object" ||
    !a.headers
  ) {
    return undefined;
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.headers)) if (typeof v === "string") headers[k] = v;
  return { status: a.status!, headers, body: a.body };
}
