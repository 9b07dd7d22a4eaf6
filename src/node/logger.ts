import pino, { type Logger } from "pino";
import pinoPretty from "pino-pretty";

/** JSON lines by default; human-readable for the sandbox. Never log secrets or request bodies. */
export function createLogger(opts: { level: string; format: "json" | "pretty"; name?: string }): Logger {
  const base = { level: opts.level, ...(opts.name ? { name: opts.name } : {}) };
  if (opts.format === "pretty") {
    return pino(
      base,
      pinoPretty({ colorize: process.stdout.isTTY, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" }),
    );
  }
  return pino(base);
}
