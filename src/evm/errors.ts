/** A JSON-RPC error: `code` and `message` as clients expect, `data` e.g. a revert's bytes. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: string,
  ) {
    super(message);
  }
}
