// Public face of src/net: authenticated, framed node-to-node channels. See docs/net.md.
export { type Backoff, backoffDelay } from "./backoff.ts";
export {
  type MessageHandler,
  NodeChannels,
  type PeerStats,
  type RequestHandler,
  type RequestOptions,
} from "./channels.ts";
export { NetError, type NetErrorCode } from "./errors.ts";
export type { ChannelsOptions } from "./options.ts";
