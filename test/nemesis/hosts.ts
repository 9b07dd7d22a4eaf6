/**
 * Nodes as separate hosts: one Linux network namespace per node, joined to a bridge in the test's
 * own namespace by a veth pair, each with its own IPv4 address. Partitions are nftables rules in
 * the nodes' namespaces (a set of peer addresses whose packets are dropped on input), so they cut
 * real TCP connections the way a switch failure would; client traffic from the test process (the
 * bridge's own address) is never dropped. Everything made here is removed by `remove()`, and on
 * process exit if a run ends early.
 */
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";

export interface Host {
  index: number;
  /** The namespace's name (`ip netns exec <ns> ...`). */
  ns: string;
  /** This host's address on the bridge. */
  address: string;
  /** The veth end in the test's namespace (where `tc` shapes traffic towards the node). */
  hostVeth: string;
}

const TABLE = "coco_nemesis";

function run(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), {
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    ...(input === undefined ? {} : { input }),
  });
}

/**
 * Why namespaces cannot be made here, or null if they can: the suite needs root (or
 * CAP_NET_ADMIN), `ip` from iproute2 and `nft` from nftables.
 */
export function namespacesUnavailable(): string | null {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    return "network namespaces need root (or CAP_NET_ADMIN): run the nemesis suite as root";
  for (const [tool, pkg] of [
    ["ip", "iproute2"],
    ["nft", "nftables"],
  ] as const) {
    try {
      run([tool, "-V"]);
    } catch {
      return `\`${tool}\` is missing: install Debian's ${pkg} package`;
    }
  }
  const probe = `cnmprobe${process.pid % 100_000}`;
  try {
    run(["ip", "netns", "add", probe]);
    run(["ip", "netns", "exec", probe, "nft", "list", "tables"]);
  } catch (e) {
    return `cannot make a network namespace with nftables: ${(e as Error).message.split("\n")[0]}`;
  } finally {
    try {
      run(["ip", "netns", "del", probe]);
    } catch {
      // never made
    }
  }
  return null;
}

/** Every Hosts not yet removed, so an early exit still takes its namespaces away. */
const live = new Set<Hosts>();
process.once("exit", () => {
  for (const hosts of live) hosts.remove();
});

export class Hosts {
  readonly hosts: Host[];
  /** The bridge's address: the test process (clients, relays) reaches nodes from here. */
  readonly gateway: string;
  private readonly bridge: string;
  private removed = false;

  private constructor(
    private readonly tag: string,
    subnet: number,
    count: number,
  ) {
    this.bridge = `${tag}br`;
    this.gateway = `10.231.${subnet}.1`;
    this.hosts = Array.from({ length: count }, (_, i) => ({
      index: i,
      ns: `${tag}n${i}`,
      address: `10.231.${subnet}.${10 + i}`,
      hostVeth: `${tag}v${i}`,
    }));
  }

  /** Makes `count` namespaces on a new bridge with a free /24 of 10.231.0.0/16. */
  static create(count: number): Hosts {
    const used = run(["ip", "-4", "addr"]);
    let subnet = randomInt(1, 255);
    for (let tries = 0; used.includes(`10.231.${subnet}.`) && tries < 300; tries++)
      subnet = randomInt(1, 255);
    // Interface names are at most 15 bytes: `cn<5 hex>v<i>`.
    const tag = `cn${randomInt(0, 0xfffff).toString(16).padStart(5, "0")}`;
    const hosts = new Hosts(tag, subnet, count);
    live.add(hosts);
    try {
      hosts.build();
    } catch (e) {
      hosts.remove();
      throw e;
    }
    return hosts;
  }

  private build(): void {
    run(["ip", "link", "add", this.bridge, "type", "bridge"]);
    run(["ip", "addr", "add", `${this.gateway}/24`, "dev", this.bridge]);
    run(["ip", "link", "set", this.bridge, "up"]);
    for (const h of this.hosts) {
      const inner = `${this.tag}i${h.index}`;
      run(["ip", "netns", "add", h.ns]);
      run(["ip", "link", "add", h.hostVeth, "type", "veth", "peer", "name", inner]);
      run(["ip", "link", "set", inner, "netns", h.ns]);
      run(["ip", "link", "set", h.hostVeth, "master", this.bridge]);
      run(["ip", "link", "set", h.hostVeth, "up"]);
      run(["ip", "-n", h.ns, "addr", "add", `${h.address}/24`, "dev", inner]);
      run(["ip", "-n", h.ns, "link", "set", inner, "up"]);
      run(["ip", "-n", h.ns, "link", "set", "lo", "up"]);
      // Input from any address in `blocked` is dropped; the set starts empty.
      this.nft(
        h,
        `table inet ${TABLE} {
  set blocked { type ipv4_addr; }
  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
}
table ip ${TABLE}_nat {
  chain output { type nat hook output priority -100; policy accept; }
}
`,
      );
    }
  }

  private nft(h: Host, script: string): void {
    run(["ip", "netns", "exec", h.ns, "nft", "-f", "-"], script);
  }

  /** The argv that runs `argv` inside host `h`'s namespace (`ip netns exec` execs it: same pid). */
  wrap(h: Host, argv: string[]): string[] {
    return ["ip", "netns", "exec", h.ns, ...argv];
  }

  /** Sets, for every host, which peers' packets it drops on input (`drops[i]`: host indices). */
  private setBlocked(drops: number[][]): void {
    for (const h of this.hosts) {
      const from = (drops[h.index] ?? []).map((i) => this.hosts[i]!.address);
      const add = from.length > 0 ? `add element inet ${TABLE} blocked { ${from.join(", ")} }\n` : "";
      this.nft(h, `flush set inet ${TABLE} blocked\n${add}`);
    }
  }

  /** Groups that cannot reach each other (both ways); hosts in no group reach everyone. */
  partition(groups: number[][]): void {
    const drops: number[][] = this.hosts.map(() => []);
    for (const [g, group] of groups.entries()) {
      for (const [o, other] of groups.entries()) {
        if (g === o) continue;
        for (const i of group) drops[i]!.push(...other);
      }
    }
    this.setBlocked(drops);
  }

  /** Packets from `from` to `to` are dropped; `to` still sends to `from`. */
  oneWay(from: number, to: number): void {
    const drops: number[][] = this.hosts.map(() => []);
    drops[to]!.push(from);
    this.setBlocked(drops);
  }

  /**
   * A bridge: `left` and `right` cannot reach each other, but `middle` reaches both (each side
   * sees a majority with the middle node, a classic split-brain bait).
   */
  bridgeThrough(left: number[], middle: number, right: number[]): void {
    const drops: number[][] = this.hosts.map(() => []);
    for (const l of left)
      for (const r of right) {
        drops[l]!.push(r);
        drops[r]!.push(l);
      }
    void middle;
    this.setBlocked(drops);
  }

  heal(): void {
    this.setBlocked([]);
  }

  /**
   * Sends traffic from host `from` to `to:port` through `via` (an address:port in the test's
   * namespace, e.g. a delaying relay) by destination NAT in `from`'s namespace.
   */
  redirect(from: number, to: number, port: number, via: { host: string; port: number }): void {
    const target = this.hosts[to]!;
    this.nft(
      this.hosts[from]!,
      `add rule ip ${TABLE}_nat output ip daddr ${target.address} tcp dport ${port} dnat to ${via.host}:${via.port}\n`,
    );
  }

  /** A token-bucket limit on traffic towards host `i` (where bandwidth matters); 0 removes it. */
  limitRate(i: number, mbit: number): void {
    const dev = this.hosts[i]!.hostVeth;
    try {
      run(["tc", "qdisc", "del", "dev", dev, "root"]);
    } catch {
      // none yet
    }
    if (mbit > 0)
      run([
        "tc",
        "qdisc",
        "add",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        `${mbit}mbit`,
        "burst",
        "64kb",
        "latency",
        "100ms",
      ]);
  }

  /** Removes every namespace, veth and the bridge (idempotent). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    live.delete(this);
    for (const h of this.hosts) {
      try {
        run(["ip", "netns", "del", h.ns]);
      } catch {
        // not made
      }
      try {
        run(["ip", "link", "del", h.hostVeth]);
      } catch {
        // gone with the namespace
      }
    }
    try {
      run(["ip", "link", "del", this.bridge]);
    } catch {
      // not made
    }
  }
}
