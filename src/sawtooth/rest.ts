import type { AppResponse, Endpoint, HandlerContext } from "../apps/index.ts";
import type { Tx } from "../kv/index.ts";
import { InvalidBatchError, parseBatchList } from "./batches.ts";
import { executeBatch, ProcessorUnavailable } from "./execute.ts";
import type { SawtoothHost } from "./host.ts";
import type { ProcessorServer } from "./processors.ts";
import {
  BATCHES_MAP,
  getJson,
  INVALID_MAP,
  type InvalidRecord,
  isBatcherAllowed,
  key,
  STATE_MAP,
  scan,
  TRANSACTIONS_MAP,
  type TransactionRecord,
} from "./tables.ts";
import { batchOf, blockJson, chain, transactionJson } from "./views.ts";

/** Sawtooth's REST error: its numeric code and title in Sawtooth's `{error: {...}}` envelope. */
export class SawtoothError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_WAIT_S = 300;

export interface RestDeps {
  base: string;
  host: () => SawtoothHost;
  server: () => ProcessorServer;
  /** Runs batch executions one at a time on this node (fewer conflicts, one TP call each). */
  serial: <T>(f: () => Promise<T>) => Promise<T>;
}

function envelope(ctx: HandlerContext, deps: RestDeps, body: Record<string, unknown>): AppResponse {
  const head = deps.host().txIdOf(ctx.tx.startVersion);
  const query = ctx.request.query.toString();
  return {
    body: {
      ...body,
      head,
      link: `/app${ctx.request.path}${query ? `?${query}` : ""}`,
    },
  };
}

function wrap(deps: RestDeps, f: (ctx: HandlerContext) => Promise<AppResponse> | AppResponse) {
  return async (ctx: HandlerContext): Promise<AppResponse> => {
    try {
      const head = ctx.request.query.get("head");
      if (
        head !== null &&
        head !== deps.host().txIdOf(ctx.tx.startVersion) &&
        !/^[0-9a-f]{128}$/.test(head)
      ) {
        throw new SawtoothError(404, 50, "Head Not Found", `there is no head ${head}`);
      }
      return await f(ctx);
    } catch (e) {
      if (!(e instanceof SawtoothError)) throw e;
      return { status: e.status, body: { error: { code: e.code, title: e.title, message: e.message } } };
    }
  };
}

function paging(ctx: HandlerContext) {
  const limitText = ctx.request.query.get("limit");
  const limit = limitText === null ? 1000 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new SawtoothError(400, 53, "Invalid Count Query", "limit must be an integer from 1 to 1000");
  }
  const start = ctx.request.query.get("start") ?? undefined;
  return { limit, start };
}

function page<T>(items: T[], idOf: (t: T) => string, ctx: HandlerContext) {
  const { limit, start } = paging(ctx);
  let from = 0;
  if (start !== undefined) {
    from = items.findIndex((t) => idOf(t) === start);
    if (from < 0) throw new SawtoothError(400, 54, "Invalid Paging Query", `no item ${start} to start from`);
  }
  const slice = items.slice(from, from + limit);
  const next = items[from + limit];
  return {
    data: slice,
    paging: { limit, start: start ?? "", ...(next ? { next_position: idOf(next) } : {}) },
  };
}

export function batchStatus(tx: Tx, host: SawtoothHost, id: string) {
  const seqno = tx.map(BATCHES_MAP).getVersionOfPreviousWrite(key(id));
  if (seqno !== undefined) {
    const txid = host.txIdOf(seqno);
    const [view, s] = txid.split(".").map(Number) as [number, number];
    const status = host.txStatus(view, s) === "Committed" ? "COMMITTED" : "PENDING";
    return { id, status, invalid_transactions: [], coco_transaction_id: txid, seqno };
  }
  const invalid = getJson<InvalidRecord>(tx, INVALID_MAP, id);
  if (invalid) return { id, status: "INVALID", invalid_transactions: invalid.invalid_transactions };
  return { id, status: "UNKNOWN", invalid_transactions: [] };
}

export function endpoints(deps: RestDeps): Endpoint[] {
  const b = deps.base;
  const get = (
    path: string,
    f: (ctx: HandlerContext) => Promise<AppResponse> | AppResponse,
    query?: readonly string[],
  ): Endpoint => ({
    method: "GET",
    path: `${b}${path}`,
    auth: ["user_cert"],
    mode: "readonly",
    handler: wrap(deps, f),
    ...(query ? { query } : {}),
  });
  // The list endpoints page: they take only the parameters Coco implements, so a client's paging
  // loop with a misspelt or unsupported one (`reverse`, an `id` filter) is refused with 400
  // UnknownQueryParameter instead of silently getting every page the same.
  const PAGING = ["head", "start", "limit"];
  return [
    {
      method: "POST",
      path: `${b}/batches`,
      auth: ["user_cert"],
      mode: "readwrite",
      // Sawtooth answers 202 for an accepted batch even if it turns out INVALID; its status is kept.
      handler: wrap(deps, (ctx) => submit(ctx, deps)),
    },
    get("/batch_statuses", async (ctx) => {
      const ids = (ctx.request.query.get("id") ?? "").split(",").filter((s) => s !== "");
      if (ids.length === 0) throw new SawtoothError(400, 66, "Id Query Invalid or Missing", "give ?id=...");
      const waitText = ctx.request.query.get("wait");
      let statuses = ids.map((id) => batchStatus(ctx.tx, deps.host(), id));
      if (waitText !== null) {
        const seconds =
          waitText === "" || waitText === "true" ? MAX_WAIT_S : Math.min(Number(waitText), MAX_WAIT_S);
        const until = Date.now() + (Number.isFinite(seconds) ? seconds : 0) * 1000;
        // Batches execute when submitted, so waiting means waiting for their commit.
        for (const s of statuses) {
          if (s.status !== "PENDING" || !("seqno" in s)) continue;
          const left = until - Date.now();
          if (left <= 0) break;
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            deps
              .host()
              .waitForCommit(s.seqno as number)
              .catch(() => undefined),
            new Promise((r) => {
              timer = setTimeout(r, left);
            }),
          ]);
          clearTimeout(timer);
        }
        const store = deps.host().store;
        const fresh = store.begin();
        try {
          statuses = ids.map((id) => batchStatus(fresh, deps.host(), id));
        } finally {
          fresh.abandon();
        }
      }
      return envelope(ctx, deps, {
        data: statuses.map(({ id, status, invalid_transactions, ...rest }) => ({
          id,
          status,
          invalid_transactions,
          ...("coco_transaction_id" in rest ? { coco_transaction_id: rest.coco_transaction_id } : {}),
        })),
      });
    }),
    get(
      "/state",
      (ctx) => {
        const prefix = ctx.request.query.get("address") ?? "";
        if (!/^[0-9a-f]{0,70}$/.test(prefix)) {
          throw new SawtoothError(
            400,
            62,
            "Invalid State Address",
            "address must be hex, at most 70 characters",
          );
        }
        const entries = scan(ctx.tx, STATE_MAP, prefix, `${prefix}g`).map(([address, v]) => ({
          address,
          data: Buffer.from(v).toString("base64"),
        }));
        return envelope(
          ctx,
          deps,
          page(entries, (e) => e.address, ctx),
        );
      },
      [...PAGING, "address"],
    ),
    get("/state/{address}", (ctx) => {
      const address = ctx.request.params.address!;
      if (!/^[0-9a-f]{70}$/.test(address)) {
        throw new SawtoothError(400, 62, "Invalid State Address", "an address is 70 hex characters");
      }
      const v = ctx.tx.map(STATE_MAP).get(key(address));
      if (v === undefined) throw new SawtoothError(404, 75, "State Not Found", `no state at ${address}`);
      return envelope(ctx, deps, { data: Buffer.from(v).toString("base64") });
    }),
    get(
      "/blocks",
      (ctx) => {
        const blocks = chain(ctx.tx).reverse();
        const p = page(blocks, (bl) => bl.id, ctx);
        const host = deps.host();
        return envelope(ctx, deps, { ...p, data: p.data.map((bl) => blockJson(bl, host.txIdOf(bl.seqno))) });
      },
      PAGING,
    ),
    get("/blocks/{id}", (ctx) => {
      const block = chain(ctx.tx).find((bl) => bl.id === ctx.request.params.id);
      if (!block) throw new SawtoothError(404, 70, "Block Not Found", `no block ${ctx.request.params.id}`);
      return envelope(ctx, deps, { data: blockJson(block, deps.host().txIdOf(block.seqno)) });
    }),
    get(
      "/transactions",
      (ctx) => {
        const txns = chain(ctx.tx)
          .reverse()
          .flatMap((bl) => batchOf(bl.record).transactions.map(transactionJson));
        return envelope(
          ctx,
          deps,
          page(txns, (t) => t.header_signature, ctx),
        );
      },
      PAGING,
    ),
    get("/transactions/{id}", (ctx) => {
      const id = ctx.request.params.id!;
      const record = getJson<TransactionRecord>(ctx.tx, TRANSACTIONS_MAP, id);
      const batch = record && getJson<{ batch: string }>(ctx.tx, BATCHES_MAP, record.batch_id);
      const txn = batch && batchOf(batch).transactions.find((t) => t.headerSignature === id);
      if (!txn) throw new SawtoothError(404, 72, "Transaction Not Found", `no transaction ${id}`);
      return envelope(ctx, deps, { data: transactionJson(txn) });
    }),
    get("/receipts", (ctx) => {
      const ids = (ctx.request.query.get("id") ?? "").split(",").filter((s) => s !== "");
      if (ids.length === 0) throw new SawtoothError(400, 66, "Id Query Invalid or Missing", "give ?id=...");
      const data = ids.map((id) => {
        const r = getJson<TransactionRecord>(ctx.tx, TRANSACTIONS_MAP, id);
        if (!r) throw new SawtoothError(404, 80, "Receipt Not Found", `no receipt for transaction ${id}`);
        return { transaction_id: id, state_changes: r.state_changes, events: r.events, data: r.data };
      });
      return envelope(ctx, deps, { data });
    }),
  ];
}

async function submit(ctx: HandlerContext, deps: RestDeps): Promise<AppResponse> {
  const type = ctx.request.headers["content-type"];
  if (type !== "application/octet-stream") {
    throw new SawtoothError(
      400,
      43,
      "Wrong Content Type",
      "batches are submitted as application/octet-stream",
    );
  }
  let batches: ReturnType<typeof parseBatchList>;
  try {
    batches = parseBatchList(ctx.request.body);
  } catch (e) {
    if (!(e instanceof InvalidBatchError)) throw e;
    const noBatches = e.message.includes("no batches");
    throw new SawtoothError(
      400,
      noBatches ? 34 : 30,
      noBatches ? "No Batches Submitted" : "Submitted Batches Invalid",
      e.message,
    );
  }
  for (const batch of batches) {
    if (!isBatcherAllowed(ctx.tx, batch.header.signerPublicKey)) {
      throw new SawtoothError(
        403,
        30,
        "Submitted Batches Invalid",
        `batcher key ${batch.header.signerPublicKey} is not allowed by governance (set_sawtooth_batchers)`,
      );
    }
  }
  const ids = batches.map((bt) => bt.id);
  await deps.serial(async () => {
    for (const batch of batches) {
      // A batch already committed or judged is not run again (Sawtooth ignores resubmissions).
      if (ctx.tx.map(BATCHES_MAP).has(key(batch.id)) || ctx.tx.map(INVALID_MAP).has(key(batch.id))) continue;
      try {
        await executeBatch(deps.server(), ctx.tx, batch);
      } catch (e) {
        if (!(e instanceof ProcessorUnavailable)) throw e;
        throw new SawtoothError(503, 18, "Transaction Processor Unavailable", e.message);
      }
    }
  });
  return {
    status: 202,
    body: { link: `/app${deps.base}/batch_statuses?id=${ids.join(",")}` },
  };
}
