import { isIP } from "node:net";
import { NetError } from "./errors.ts";

/** A peer's address as given to setPeer: "host:port", or "[v6-address]:port". */
export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseAddress(address: string): HostPort {
  if (typeof address !== "string") {
    throw new NetError("config", `peer address must be a "host:port" string, got ${typeof address}`);
  }
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(address);
  const plain = /^([^:[\]]+):(\d+)$/.exec(address);
  const match = bracketed ?? plain;
  if (!match) throw new NetError("config", `peer address ${JSON.stringify(address)} is not "host:port"`);
  const host = match[1] ?? "";
  const portText = match[2] ?? "";
  if (bracketed ? isIP(host) !== 6 : isIP(host) !== 4 && !HOSTNAME.test(host)) {
    throw new NetError("config", `peer address ${JSON.stringify(address)} has an invalid host`);
  }
  const port = Number(portText);
  if (portText.length > 5 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new NetError("config", `peer address ${JSON.stringify(address)} has a port outside 1-65535`);
  }
  return { host, port };
}
