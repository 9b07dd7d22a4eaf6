/** Every refusal from the KV store: bad input, misuse of a closed transaction, out-of-range seqnos. */
export class KvError extends Error {
  override name = "KvError";
}
