/**
 * The consortium console: a local web server for one member that holds the member's key, talks
 * to the network over mutual TLS pinned to the service certificate, and serves the pages built
 * from console/ (docs/console.md).
 */
export { type ConsoleError, consoleError } from "./errors.ts";
export {
  type ConsoleIdentity,
  ConsoleSetupError,
  type IdentityFiles,
  loadIdentity,
  sandboxIdentityFiles,
} from "./identity.ts";
export type { NetworkView, NodeView } from "./monitor.ts";
export { CONSOLE_DIST, type ConsoleOptions, type ConsoleServer, startConsole } from "./server.ts";
