/**
 * Why a channel operation failed. Callers branch on `code` (for example, forwarding turns
 * "timeout" into a 504) rather than on message text.
 */
export type NetErrorCode =
  | "config" // bad options or address
  | "listen" // could not bind the listening port
  | "frame" // a malformed or oversize frame arrived
  | "encode" // a message could not be serialised or is too large to send
  | "unknown-peer" // no such peer was set
  | "dropped" // the peer's outbound queue was full
  | "timeout" // no answer within the deadline
  | "disconnected" // the connection carrying the request closed before the answer
  | "remote" // the peer's request handler failed
  | "cancelled" // the sender gave up before the request was written: the peer never saw it
  | "abandoned" // the sender gave up after the request was written: the peer may have run it
  | "closed"; // the channels were closed, or the peer removed

export class NetError extends Error {
  readonly code: NetErrorCode;
  constructor(code: NetErrorCode, message: string) {
    super(message);
    this.name = "NetError";
    this.code = code;
  }
}
