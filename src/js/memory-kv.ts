// A plain in-memory KvAccess: for tests, tools and read-only snapshots handed to the sandbox.
import type { KvAccess } from "./types.ts";

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export class MemoryKv implements KvAccess {
  private readonly maps = new Map<string, Map<string, [Uint8Array, Uint8Array]>>();

  private map(name: string, create: boolean): Map<string, [Uint8Array, Uint8Array]> | undefined {
    let map = this.maps.get(name);
    if (map === undefined && create) {
      map = new Map();
      this.maps.set(name, map);
    }
    return map;
  }

  get(map: string, key: Uint8Array): Uint8Array | undefined {
    return this.map(map, false)?.get(hex(key))?.[1];
  }

  has(map: string, key: Uint8Array): boolean {
    return this.map(map, false)?.has(hex(key)) ?? false;
  }

  set(map: string, key: Uint8Array, value: Uint8Array): void {
    this.map(map, true)?.set(hex(key), [key.slice(), value.slice()]);
  }

  delete(map: string, key: Uint8Array): boolean {
    return this.map(map, false)?.delete(hex(key)) ?? false;
  }

  clear(map: string): void {
    this.maps.delete(map);
  }

  entries(map: string): Iterable<readonly [Uint8Array, Uint8Array]> {
    return [...(this.map(map, false)?.values() ?? [])];
  }

  forEach(map: string, callback: (key: Uint8Array, value: Uint8Array) => void): void {
    for (const [key, value] of this.entries(map)) callback(key, value);
  }

  size(map: string): number {
    return this.map(map, false)?.size ?? 0;
  }

  /** Names of the maps holding at least one entry. */
  mapNames(): string[] {
    return [...this.maps.keys()].filter((name) => (this.maps.get(name)?.size ?? 0) > 0);
  }
}
