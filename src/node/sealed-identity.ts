// A node's sealed secrets (`identity.sealed`) and the key that seals them: on SEV-SNP a key the
// secure processor derives for this guest, on the virtual platform a key file outside the node's
// directory (docs/security.md, "Sealing").
import { existsSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { readSealHeader, type SealHeader, sealingKeyFrom, sealJson, unsealJson } from "../crypto/index.ts";
import {
  type AttestationSettings,
  type ProviderSeams,
  type SealingKey,
  type SealingSettings,
  snpSealingKeys,
} from "../tee/index.ts";
import type { Environment } from "./env.ts";
import { IdentityError, type NodeIdentity, syncDir, writeFileAtomic } from "./identity.ts";

const SEAL_LABEL = "coco-node-identity-v1";
const IDENTITY_FILE = "identity.sealed";
/** Where nodes before sealing moved out of the directory kept the virtual platform's key. */
export const LEGACY_KEY_FILE = "virtual_sealing.key";
const FILE_KEY_HEADER = { source: "virtual-key-file" } as const;

/** The virtual platform's default key file: beside the node's directory (`<dir>.sealing.key`), never in it. */
export function defaultVirtualKeyFile(dir: string): string {
  const abs = resolve(dir);
  return join(dirname(abs), `${basename(abs)}.sealing.key`);
}

/** Whether `path` is `dir` or lies below it. */
export function isInsideDir(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"));
}

export function hasIdentity(dir: string): boolean {
  return existsSync(join(dir, IDENTITY_FILE));
}

function readKeyFile(path: string): Uint8Array {
  const key = new Uint8Array(readFileSync(path));
  if (key.length !== 32) throw new IdentityError(`${path} is not a 32-byte sealing key`);
  return key;
}

/** The virtual platform's key file, made (32 random bytes, mode 0600, folder 0700) if absent. */
function fileKey(path: string, env: Environment): Uint8Array {
  if (existsSync(path)) return readKeyFile(path);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = env.randomBytes(32);
  writeFileAtomic(path, key, 0o600);
  return key;
}

/** The AES key a file key gives for an envelope: v1 used the file's bytes as they are. */
function fileSealingKey(root: Uint8Array, info: SealHeader): Uint8Array {
  return info.version === 1 ? root : sealingKeyFrom(root);
}

function unsealIdentity(key: Uint8Array, sealed: Uint8Array): NodeIdentity {
  return unsealJson<NodeIdentity>(key, SEAL_LABEL, sealed);
}

function headerOf(path: string, sealed: Uint8Array): SealHeader {
  try {
    return readSealHeader(SEAL_LABEL, sealed);
  } catch (e) {
    throw new IdentityError(`${path} is not a sealed node identity: ${(e as Error).message}`);
  }
}

export interface IdentityStoreOptions {
  dir: string;
  sealing: SealingSettings;
  attestation: AttestationSettings;
  env: Environment;
  log: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
  /** In-process only: stand-ins for the SNP report device and derived-key program (tests). */
  seams?: ProviderSeams;
}

/**
 * The node's sealed secrets (`identity.sealed` in its directory) and the key that seals them,
 * obtained once at start: on SEV-SNP from the secure processor, on the virtual platform from its
 * key file. Opening refuses, with the reason, whatever this platform must not or cannot open.
 */
export class IdentityStore {
  private constructor(
    private readonly path: string,
    private readonly env: Environment,
    private readonly sealingKey: SealingKey,
    private identity: NodeIdentity | undefined,
  ) {}

  static async open(options: IdentityStoreOptions): Promise<IdentityStore> {
    const path = join(options.dir, IDENTITY_FILE);
    const sealed = existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
    return options.sealing.kind === "snp"
      ? openSnp(options, path, sealed)
      : openWithFileKey(options, options.sealing.keyFile, path, sealed);
  }

  /** @internal */
  static make(path: string, env: Environment, key: SealingKey, identity?: NodeIdentity): IdentityStore {
    return new IdentityStore(path, env, key, identity);
  }

  /** Whether the directory held sealed secrets when the store was opened (or has since been saved). */
  get exists(): boolean {
    return this.identity !== undefined;
  }

  load(): NodeIdentity {
    if (!this.identity) throw new IdentityError(`${this.path} is missing: there is no identity to load`);
    return this.identity;
  }

  /** Seals `identity` with the platform key and replaces the file atomically. */
  save(identity: NodeIdentity): void {
    const sealed = sealJson(
      this.sealingKey.key,
      SEAL_LABEL,
      identity,
      this.env.randomBytes(12),
      this.sealingKey.header,
    );
    writeFileAtomic(this.path, sealed);
    this.identity = identity;
  }
}

async function openSnp(
  options: IdentityStoreOptions,
  path: string,
  sealed: Uint8Array | undefined,
): Promise<IdentityStore> {
  const sealing = options.sealing;
  if (sealing.kind !== "snp") throw new IdentityError("not SNP sealing");
  if (options.attestation.platform !== "snp") {
    throw new IdentityError('SNP sealing needs attestation.platform "snp"');
  }
  const legacy = join(options.dir, LEGACY_KEY_FILE);
  if (existsSync(legacy)) {
    throw new IdentityError(
      `${legacy} is a sealing key file. A node on SEV-SNP seals only with the key the AMD secure processor derives for it and refuses to start beside a key file: whatever it sealed was readable to anyone with this disk. Move ${options.dir} aside, start the node afresh and join the service (then rekey the ledger)`,
    );
  }
  let keys: Awaited<ReturnType<typeof snpSealingKeys>>;
  try {
    keys = await snpSealingKeys(sealing, options.attestation, options.seams);
  } catch (e) {
    throw new IdentityError(`cannot obtain this node's SNP sealing key: ${(e as Error).message}`);
  }
  const record = keys.current.header;
  let store = IdentityStore.make(path, options.env, keys.current);
  if (sealed) {
    const info = headerOf(path, sealed);
    if (info.version !== 2 || info.header.source !== "snp-derived-key") {
      throw new IdentityError(
        `${path} was sealed with a key file, not with a key the AMD secure processor derived: a node on SEV-SNP refuses to start with a file key. Move ${options.dir} aside, start the node afresh and join the service (then rekey the ledger)`,
      );
    }
    let key: Uint8Array;
    try {
      key = await keys.keyFor(info.header);
    } catch (e) {
      throw new IdentityError(`cannot unseal ${path}: ${(e as Error).message}`);
    }
    let identity: NodeIdentity;
    try {
      identity = unsealIdentity(key, sealed);
    } catch {
      throw new IdentityError(
        `cannot unseal ${path}: the key the secure processor derived does not open it (sealed on another chip or with another VM root key, or under another guest policy, image id or family id)`,
      );
    } finally {
      key.fill(0);
    }
    store = IdentityStore.make(path, options.env, keys.current, identity);
    if (JSON.stringify(info.header) !== JSON.stringify(record)) {
      // Later writes (and this one) use the newer TCB, so older firmware cannot open them.
      store.save(identity);
      options.log.info(
        { from: info.header, to: record },
        "resealed the node's secrets for this platform's current TCB and guest SVN",
      );
    }
  }
  options.log.info(
    {
      rootKey: record.rootKey,
      guestFields: record.guestFields,
      tcbVersion: record.tcbVersion,
      guestSvn: record.guestSvn,
    },
    "secrets are sealed with a key the AMD secure processor derives for this guest (never stored)",
  );
  return store;
}

async function openWithFileKey(
  options: IdentityStoreOptions,
  keyFile: string,
  path: string,
  sealed: Uint8Array | undefined,
): Promise<IdentityStore> {
  if (options.attestation.platform === "snp") {
    throw new IdentityError(
      "a node on SEV-SNP refuses to start with a file key: its secrets are sealed with a key the AMD secure processor derives (configure sealing.snp)",
    );
  }
  if (isInsideDir(options.dir, keyFile)) {
    throw new IdentityError(
      `the sealing key file ${keyFile} is inside the node's directory ${options.dir}: anyone who reads the directory would have the secrets. Keep it elsewhere`,
    );
  }
  options.log.warn(
    { keyFile },
    `DEVELOPMENT ONLY: the virtual platform seals this node's secrets with the key file ${keyFile}; whoever can read it and ${options.dir} has the node key, the service key and the ledger secrets`,
  );
  const legacy = join(options.dir, LEGACY_KEY_FILE);
  const hadKeyFile = existsSync(keyFile);
  if (sealed && !hadKeyFile && !existsSync(legacy)) {
    throw new IdentityError(
      `${path} needs its sealing key file ${keyFile} (sealing.keyFile), which is missing`,
    );
  }
  const current: SealingKey = {
    key: sealingKeyFrom(fileKey(keyFile, options.env)),
    header: { ...FILE_KEY_HEADER },
  };
  if (!sealed) return IdentityStore.make(path, options.env, current);
  const info = headerOf(path, sealed);
  if (info.version === 2 && info.header.source !== FILE_KEY_HEADER.source) {
    throw new IdentityError(
      `${path} was sealed by ${JSON.stringify(info.header.source)}, not by the virtual platform's key file: only that platform can open it`,
    );
  }
  const candidates = [...(hadKeyFile ? [keyFile] : []), ...(existsSync(legacy) ? [legacy] : [])];
  for (const candidate of candidates) {
    let identity: NodeIdentity;
    try {
      identity = unsealIdentity(fileSealingKey(readKeyFile(candidate), info), sealed);
    } catch {
      continue;
    }
    const store = IdentityStore.make(path, options.env, current, identity);
    // An old layout (key inside the directory, or a version 1 envelope) is resealed with the key
    // outside the directory before the old key file goes.
    const migrating = candidate === legacy || info.version === 1;
    if (migrating) store.save(identity);
    if (existsSync(legacy)) {
      unlinkSync(legacy);
      syncDir(options.dir);
    }
    if (migrating) {
      options.log.warn(
        { from: candidate, to: keyFile },
        "moved the node's sealing key out of its directory: resealed its secrets with the key file outside it and deleted the old one",
      );
    }
    return store;
  }
  throw new IdentityError(
    `cannot unseal ${path} with ${candidates.join(" or ")}: wrong sealing key, or the file was altered`,
  );
}

/**
 * Opens a virtual node's sealed secrets offline (`coco ledger read --node-dir`): with `keyFile`,
 * or the default key file beside the directory, or the key file older nodes kept inside it.
 */
export function loadIdentity(dir: string, keyFile = defaultVirtualKeyFile(dir)): NodeIdentity {
  const path = join(dir, IDENTITY_FILE);
  const sealed = new Uint8Array(readFileSync(path));
  const info = headerOf(path, sealed);
  if (info.version === 2 && info.header.source !== FILE_KEY_HEADER.source) {
    throw new IdentityError(
      `${path} is sealed with a key only its platform can derive (${JSON.stringify(info.header.source)}); it cannot be opened here`,
    );
  }
  const candidates = [keyFile, join(dir, LEGACY_KEY_FILE)].filter((f) => existsSync(f));
  for (const candidate of candidates) {
    try {
      return unsealIdentity(fileSealingKey(readKeyFile(candidate), info), sealed);
    } catch {}
  }
  throw new IdentityError(
    candidates.length === 0
      ? `${path} needs its sealing key file ${keyFile}, which is missing`
      : `cannot unseal ${path} with ${candidates.join(" or ")}`,
  );
}
