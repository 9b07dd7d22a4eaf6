import {
  type JsonReceipt,
  type VerifyResult,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "../crypto/index.ts";
import { HttpsTransport } from "./https.ts";

export interface ClientOptions {
  /** e.g. `https://127.0.0.1:8000` */
  url: string;
  /** The service certificate: the only thing a client pins. */
  serviceCertPem: string;
  /** The caller's certificate and key (a user or member), for endpoints that need one. */
  certPem?: string;
  keyPem?: string;
}

export interface Response<T = unknown> {
  status: number;
  /** `x-ms-ccf-transaction-id`, when the node sent one. */
  txid: string | undefined;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

export class CocoClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A small typed client for a Coco service: app calls with respond-on-commit, transaction status,
 * and receipts verified against the pinned service certificate.
 */
export class CocoClient {
  private readonly http: HttpsTransport;

  constructor(private readonly options: ClientOptions) {
    this.http = new HttpsTransport({
      ca: options.serviceCertPem,
      ...(options.certPem && options.keyPem ? { cert: options.certPem, key: options.keyPem } : {}),
    });
  }

  /** Calls an endpoint; JSON in and out. Errors (status >= 400) throw CocoClientError. */
  async call<T = unknown>(
    method: "GET" | "PUT" | "POST" | "DELETE" | "PATCH",
    path: string,
    opts: { body?: unknown; waitForCommit?: boolean; headers?: Record<string, string> } = {},
  ): Promise<Response<T>> {
    const res = await this.http.send(new URL(path, this.options.url), {
      method,
      headers: {
        ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
        ...(opts.waitForCommit ? { "x-coco-wait": "commit" } : {}),
        ...opts.headers,
      },
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    });
    const text = res.body.toString("utf8");
    const isJson = String(res.headers["content-type"] ?? "").startsWith("application/json");
    const body = (isJson && text.length > 0 ? JSON.parse(text) : text) as T;
    if (res.statusCode >= 400) {
      const error = (body as { error?: { code?: string; message?: string } })?.error;
      throw new CocoClientError(res.statusCode, error?.code ?? "Unknown", error?.message ?? text);
    }
    const txid = res.headers["x-ms-ccf-transaction-id"];
    return {
      status: res.statusCode,
      txid: typeof txid === "string" ? txid : undefined,
      body,
      headers: res.headers,
    };
  }

  async txStatus(txid: string): Promise<TxStatus> {
    const res = await this.call<{ status: TxStatus }>(
      "GET",
      `/app/tx?transaction_id=${encodeURIComponent(txid)}`,
    );
    return res.body.status;
  }

  /** The JSON receipt of a committed transaction, verified against the service certificate. */
  async receipt(txid: string): Promise<JsonReceipt> {
    const res = await this.call<JsonReceipt | { status: "Pending" }>(
      "GET",
      `/app/receipt?transaction_id=${encodeURIComponent(txid)}`,
    );
    if (res.status === 202)
      throw new CocoClientError(202, "TransactionPending", `${txid} is not committed yet`);
    const receipt = res.body as JsonReceipt;
    assertValid(verifyJsonReceipt(receipt, this.options.serviceCertPem));
    return receipt;
  }

  /** The COSE receipt of a committed transaction, verified against the service certificate. */
  async coseReceipt(txid: string): Promise<Uint8Array> {
    const res = await this.http.send(
      new URL(`/app/receipt/cose?transaction_id=${encodeURIComponent(txid)}`, this.options.url),
    );
    const bytes = new Uint8Array(res.body);
    if (res.statusCode !== 200) {
      throw new CocoClientError(res.statusCode, "ReceiptUnavailable", Buffer.from(bytes).toString("utf8"));
    }
    assertValid(verifyCoseReceipt(bytes, this.options.serviceCertPem));
    return bytes;
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

function assertValid(result: VerifyResult): void {
  if (!result.ok)
    throw new CocoClientError(0, "InvalidReceipt", `${result.check} check failed: ${result.message}`);
}
