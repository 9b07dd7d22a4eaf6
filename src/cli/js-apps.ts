// Where the node and the JS app executor meet: the executor list a node serves, and the node
// facts (consensus, historical states from the ledger files) JS apps may ask for.
import { join } from "node:path";
import type { Logger } from "pino";
import type { Executor } from "../apps/index.ts";
import type { JsEnv } from "../js/index.ts";
import { createJsAppExecutor, type HistoricalLookup, type JsAppHost } from "../jsapp/index.ts";
import type { WriteSet } from "../kv/index.ts";
import { decryptEntry, type ReceiptLookup, readLedgerDir } from "../ledger/index.ts";
import type { CocoNode, NodeConfig } from "../node/index.ts";
import { builtInApp } from "./apps.ts";

/** Decoded transactions kept for historical queries. */
const MAX_CACHED_STATES = 20_000;
/** Receipts rebuilt from the ledger files kept for historical queries (a few KB each). */
const MAX_CACHED_RECEIPTS = 1_000;

/** The node facts behind `ccf.consensus` and `ccf.historical`, read from `node`. */
export function nodeJsAppHost(node: CocoNode, log: Logger): JsAppHost {
  const states = new Map<number, { view: number; writeSet: WriteSet }>();
  const wanted = new Set<number>();
  let loading = false;
  /** Receipts rebuilt from the ledger files (their proofs left the node's memory), and those under way. */
  const archivedReceipts = new Map<number, ReceiptLookup>();
  const receiptsLoading = new Set<number>();

  const loadReceipt = (view: number, seqno: number) => {
    if (receiptsLoading.has(seqno)) return;
    receiptsLoading.add(seqno);
    Promise.resolve()
      .then(() => node.state.loadReceipt(view, seqno))
      .then((receipt) => {
        if (archivedReceipts.size >= MAX_CACHED_RECEIPTS)
          archivedReceipts.delete(archivedReceipts.keys().next().value as number);
        archivedReceipts.set(seqno, receipt);
      })
      .catch((e) => log.warn({ err: e, seqno }, "historical states: could not rebuild a receipt"))
      .finally(() => receiptsLoading.delete(seqno));
  };

  const remember = (seqno: number, view: number, writeSet: WriteSet) => {
    if (states.size >= MAX_CACHED_STATES) states.delete(states.keys().next().value as number);
    states.set(seqno, { view, writeSet });
  };

  // Reads the ledger files for the seqnos asked for; what a torn (still being written) tail
  // hides stays wanted and is read on the next request.
  async function load(): Promise<void> {
    loading = true;
    try {
      const low = Math.min(...wanted);
      const high = Math.max(...wanted);
      for await (const { entry } of readLedgerDir(join(node.config.dir, "ledger"))) {
        if (entry.seqno < low) continue;
        if (entry.seqno > high) break;
        if (!wanted.has(entry.seqno)) continue;
        remember(entry.seqno, entry.view, decryptEntry(entry, node.state.secrets));
        wanted.delete(entry.seqno);
      }
    } catch (e) {
      log.debug({ err: e }, "historical states: the ledger could not be read whole; retrying on demand");
    } finally {
      loading = false;
    }
  }

  return {
    lastCommittedTxId() {
      const seqno = node.state.commitSeqno;
      return { view: node.state.viewOf(seqno), seqno };
    },
    txStatus: (view, seqno) => node.state.txStatus(view, seqno),
    viewOf(seqno) {
      if (!Number.isSafeInteger(seqno) || seqno < 1 || seqno > node.state.lastSeqno) return null;
      try {
        return node.state.viewOf(seqno);
      } catch {
        return null;
      }
    },
    historicalState(seqno): HistoricalLookup {
      const found = states.get(seqno);
      if (found === undefined && seqno < node.state.historyStart) {
        return {
          status: "unavailable",
          reason: `this node started from a snapshot at ${node.state.historyStart} and holds no ledger before it`,
        };
      }
      if (found === undefined) {
        wanted.add(seqno);
        if (!loading) void load();
        return { status: "fetching" };
      }
      const inMemory = node.state.receipt(found.view, seqno);
      const receipt = inMemory.status === "Archived" ? archivedReceipts.get(seqno) : inMemory;
      if (inMemory.status === "Archived" && (receipt === undefined || receipt.status === "Pending")) {
        loadReceipt(found.view, seqno);
      }
      if (receipt === undefined) return { status: "fetching" };
      if (receipt.status === "BeforeSnapshot" || receipt.status === "Invalid") {
        return {
          status: "unavailable",
          reason: `no receipt for ${found.view}.${seqno} on this node (${receipt.status})`,
        };
      }
      return {
        status: "ok",
        transactionId: `${found.view}.${seqno}`,
        writeSet: found.writeSet,
        receipt:
          receipt.status === "ok"
            ? { is_signature_transaction: false, ...(receipt.json as unknown as Record<string, unknown>) }
            : null,
      };
    },
  };
}

/**
 * The executors a node serves under /app: the built-in native app named by the config, and the
 * JS apps governance installs (first when `jsApps.replaceNative` says they replace native ones).
 * Call `attach` with the started node.
 */
export async function appExecutors(
  config: NodeConfig,
  env: JsEnv,
  log: Logger,
): Promise<{ executors: Executor[]; attach(node: CocoNode): void }> {
  const native = builtInApp(config.app);
  const executors: Executor[] = native ? [native] : [];
  if (!config.jsApps.enabled) return { executors, attach: () => undefined };
  const js = await createJsAppExecutor({ env, log });
  if (config.jsApps.replaceNative) executors.unshift(js);
  else executors.push(js);
  return { executors, attach: (node) => js.attach(nodeJsAppHost(node, log)) };
}
