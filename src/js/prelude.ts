// The guest half of the sandbox: JS source, run once per context, that builds the `ccf` global,
// console, Date and Math.random on top of a private `host` object of native functions.
import { BUFFER_MARK } from "./marshal.ts";

/** `ccf.<path>` members backed by per-call hooks (see JsHooks). */
export const HOOK_PATHS = [
  "node.triggerLedgerRekey",
  "node.triggerRecoverySharesRefresh",
  "node.triggerSnapshot",
  "node.triggerLedgerChunk",
  "node.triggerACMERefresh",
  "node.transitionServiceToOpen",
  "network.generateEndorsedCertificate",
  "network.generateNetworkCertificate",
  "network.getLatestLedgerSecretSeqno",
  "setJwtPublicSigningKeys",
  "removeJwtPublicSigningKeys",
  "refreshAppBytecodeCache",
  "rpc.setApplyWrites",
  "rpc.setClaimsDigest",
  "consensus.getLastCommittedTxId",
  "consensus.getStatusForTxId",
  "consensus.getViewForSeqno",
  "historical.getStateRange",
  "historical.dropCachedStates",
  "host.triggerSubprocess",
  "host.fetch",
] as const;

/** `ccf.crypto.<name>` members, implemented on the host (crypto.ts). */
export const CRYPTO_NAMES = [
  "sign",
  "verifySignature",
  "generateAesKey",
  "generateRsaKeyPair",
  "generateEcdsaKeyPair",
  "generateEddsaKeyPair",
  "wrapKey",
  "unwrapKey",
  "digest",
  "isValidX509CertBundle",
  "isValidX509CertChain",
  "pubPemToJwk",
  "pemToJwk",
  "pubRsaPemToJwk",
  "rsaPemToJwk",
  "pubEddsaPemToJwk",
  "eddsaPemToJwk",
  "pubJwkToPem",
  "jwkToPem",
  "pubRsaJwkToPem",
  "rsaJwkToPem",
  "pubEddsaJwkToPem",
  "eddsaJwkToPem",
] as const;

/** Deprecated top-level aliases CCF keeps on `ccf` for older apps. */
const CRYPTO_ALIASES = [
  "generateAesKey",
  "generateRsaKeyPair",
  "generateEcdsaKeyPair",
  "wrapKey",
  "digest",
  "isValidX509CertBundle",
  "isValidX509CertChain",
];

/**
 * Evaluates to a function taking the host object and returning
 * { pack, unpack, begin, seal, exportNames }.
 * It must not use template literals: it is itself one.
 */
export const PRELUDE_SOURCE = `(function (host) {
  "use strict";
  const MARK = ${JSON.stringify(BUFFER_MARK)};
  const HOOK_PATHS = ${JSON.stringify(HOOK_PATHS)};
  const CRYPTO_NAMES = ${JSON.stringify(CRYPTO_NAMES)};
  const CRYPTO_ALIASES = ${JSON.stringify(CRYPTO_ALIASES)};
  const AB = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const hasOwn = Object.prototype.hasOwnProperty;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const construct = Reflect.construct;

  function toBuffer(value, what) {
    if (value instanceof AB) return value;
    if (isView(value)) return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
    throw new TypeError(what + " must be an ArrayBuffer");
  }
  function isMarked(v) {
    return v !== null && typeof v === "object" && hasOwn.call(v, MARK);
  }

  // Values to the host: JSON with byte buffers carried beside it.
  function pack(value) {
    if (value === undefined) return undefined;
    const type = typeof value;
    if (type === "function" || type === "symbol" || type === "bigint") {
      throw new TypeError("a " + type + " is not JSON-compatible");
    }
    let buffers;
    const json = stringify(value, function (key, v) {
      const raw = this[key];
      if (raw instanceof AB || isView(raw)) {
        if (buffers === undefined) buffers = [];
        buffers.push(toBuffer(raw, "value"));
        const mark = {};
        mark[MARK] = buffers.length - 1;
        return mark;
      }
      if (isMarked(v)) throw new TypeError("the key " + stringify(MARK) + " is reserved");
      return v;
    });
    if (json === undefined) throw new TypeError("value is not JSON-compatible");
    if (buffers === undefined) return json;
    buffers.unshift(json);
    return buffers;
  }
  function unpack(packed) {
    if (packed === undefined) return undefined;
    if (typeof packed === "string") return parse(packed);
    return parse(packed[0], function (key, v) {
      return isMarked(v) ? packed[v[MARK] + 1] : v;
    });
  }
  function hostCall(name, args) {
    const packed = [name];
    for (let i = 0; i < args.length; i++) packed.push(pack(args[i]));
    return unpack(host.call.apply(undefined, packed));
  }

  // ccf.kv: any property name is a map.
  function newKvMap(store, name) {
    const where = "ccf.kv[" + stringify(name) + "].";
    const map = {
      has(key) { return host.kvHas(store, name, toBuffer(key, where + "has: key")); },
      get(key) { return host.kvGet(store, name, toBuffer(key, where + "get: key")); },
      getVersionOfPreviousWrite(key) {
        return host.kvVersion(store, name, toBuffer(key, where + "getVersionOfPreviousWrite: key"));
      },
      set(key, value) {
        host.kvSet(store, name, toBuffer(key, where + "set: key"), toBuffer(value, where + "set: value"));
        return map;
      },
      delete(key) { return host.kvDelete(store, name, toBuffer(key, where + "delete: key")); },
      clear() { host.kvClear(store, name); },
      forEach(callback) {
        if (typeof callback !== "function") throw new TypeError(where + "forEach: callback must be a function");
        // One crossing for the whole map: [u32 key length][key][u32 value length][value]...
        const blob = host.kvEntries(store, name);
        if (blob === undefined) return;
        const view = new DataView(blob);
        let at = 0;
        while (at < blob.byteLength) {
          const keyLength = view.getUint32(at, true);
          const key = blob.slice(at + 4, at + 4 + keyLength);
          at += 4 + keyLength;
          const valueLength = view.getUint32(at, true);
          const value = blob.slice(at + 4, at + 4 + valueLength);
          at += 4 + valueLength;
          callback(value, key, map);
        }
      },
      get size() { return host.kvSize(store, name); },
      // Coco, beyond CCF: one page of entries in key byte order, [start, end), after a token.
      range(options) {
        const o = options === undefined ? {} : options;
        if (o === null || typeof o !== "object") throw new TypeError(where + "range: options must be an object");
        const opts = {};
        if (o.start !== undefined) opts.start = toBuffer(o.start, where + "range: start");
        if (o.end !== undefined) opts.end = toBuffer(o.end, where + "range: end");
        if (o.limit !== undefined) opts.limit = o.limit;
        if (o.after !== undefined) opts.after = o.after;
        return hostCall("kv.range", [store, name, opts]);
      },
    };
    // In a sealed realm a map object is shared by every call: frozen, so none can mark it.
    return sealed ? Object.freeze(map) : map;
  }
  // The map objects of ccf.kv, made on first use. A sealed (governance) realm forgets them at each
  // call, so every call does the same work whatever ran before: its step count depends on the
  // call alone (docs/js-runtime.md "Limits").
  // (Historical states get new maps with each call anyway.)
  const kvMaps = new Map();
  function newKvMaps(store, maps = new Map()) {
    return new Proxy(Object.create(null), {
      get(target, name) {
        if (typeof name !== "string") return undefined;
        let map = maps.get(name);
        if (map === undefined) {
          map = newKvMap(store, name);
          maps.set(name, map);
        }
        return map;
      },
      has(target, name) { return typeof name === "string"; },
      set() { throw new TypeError("ccf.kv cannot be assigned to; use ccf.kv[name].set(key, value)"); },
      deleteProperty() { throw new TypeError("ccf.kv maps cannot be deleted; use ccf.kv[name].clear()"); },
    });
  }

  let sealed = false;
  const ccf = {};
  function strToBuf(s) {
    if (typeof s !== "string") throw new TypeError("ccf.strToBuf: argument must be a string");
    return host.strToBuf(s);
  }
  function bufToStr(b) { return host.bufToStr(toBuffer(b, "ccf.bufToStr: argument")); }
  ccf.strToBuf = strToBuf;
  ccf.bufToStr = bufToStr;
  ccf.jsonCompatibleToBuf = function (v) {
    const s = stringify(v);
    if (typeof s !== "string") throw new TypeError("ccf.jsonCompatibleToBuf: value is not JSON-compatible");
    return host.strToBuf(s);
  };
  ccf.bufToJsonCompatible = function (b) { return parse(bufToStr(b)); };
  ccf.pemToId = function (pem) { return hostCall("pemToId", [pem]); };
  ccf.kv = newKvMaps(0, kvMaps);

  ccf.crypto = {};
  for (const name of CRYPTO_NAMES) {
    ccf.crypto[name] = function () { return hostCall("crypto." + name, Array.from(arguments)); };
  }
  for (const name of CRYPTO_ALIASES) ccf[name] = ccf.crypto[name];

  for (const path of HOOK_PATHS) {
    const dot = path.indexOf(".");
    const owner = dot < 0 ? ccf : (ccf[path.slice(0, dot)] = ccf[path.slice(0, dot)] || {});
    owner[path.slice(dot + 1)] = function () { return hostCall("hook:" + path, Array.from(arguments)); };
  }
  // Historical states carry a KV of their own, reached through a host store number.
  function withKv(state) {
    return { transactionId: state.transactionId, receipt: state.receipt, kv: newKvMaps(state.kvStore) };
  }
  ccf.historical.getStateRange = function () {
    const states = hostCall("hook:historical.getStateRange", Array.from(arguments));
    return states === null || states === undefined ? states : states.map(withKv);
  };

  // Per-call state, reset by begin() so that a warm context behaves like a fresh one.
  let untrustedDate = false;
  let metricsLogging = true;
  let historicalState;
  Object.defineProperty(ccf, "historicalState", { get() { return historicalState; }, enumerable: true });
  ccf.enableUntrustedDateTime = function (enable) {
    const previous = untrustedDate;
    untrustedDate = enable === true;
    return previous;
  };
  ccf.enableMetricsLogging = function (enable) {
    const previous = metricsLogging;
    metricsLogging = enable === true;
    return previous;
  };

  // Date reads 0 unless the call opted into host time, as in CCF: governance stays deterministic.
  const RealDate = Date;
  function currentTime() { return untrustedDate ? host.now() : 0; }
  function CocoDate() {
    if (new.target === undefined) return new RealDate(currentTime()).toString();
    const args = arguments.length === 0 ? [currentTime()] : Array.from(arguments);
    return construct(RealDate, args, new.target);
  }
  CocoDate.prototype = RealDate.prototype;
  CocoDate.now = currentTime;
  CocoDate.parse = RealDate.parse;
  CocoDate.UTC = RealDate.UTC;
  Object.defineProperty(RealDate.prototype, "constructor", { value: CocoDate, writable: true, configurable: true });
  globalThis.Date = CocoDate;

  // Math.random from the injected source, 53 bits per number, fetched in blocks.
  let pool;
  let poolAt = 0;
  Math.random = function random() {
    if (pool === undefined || poolAt + 7 > pool.length) {
      pool = new Uint8Array(host.random(224));
      poolAt = 0;
    }
    const b = pool;
    const i = poolAt;
    poolAt += 7;
    const high = ((b[i] & 0x1f) << 16) | (b[i + 1] << 8) | b[i + 2];
    const low = b[i + 3] * 16777216 + ((b[i + 4] << 16) | (b[i + 5] << 8) | b[i + 6]);
    return (high * 4294967296 + low) / 9007199254740992;
  };

  function show(v) {
    if (typeof v === "string") return v;
    try {
      if (v instanceof Error) return String(v) + (v.stack ? "\\n" + v.stack : "");
      const s = stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      try { return String(v); } catch (e2) { return "[unprintable]"; }
    }
  }
  function logTo(level) {
    return function () {
      const parts = [];
      for (let i = 0; i < arguments.length; i++) parts.push(show(arguments[i]));
      host.log(level, parts.join(" "));
    };
  }
  globalThis.console = {
    log: logTo("info"), info: logTo("info"), warn: logTo("warn"), error: logTo("error"), debug: logTo("debug"),
  };
  globalThis.ccf = ccf;

  // @microsoft/ccf-app's snp_attestation global. Failed verification is a RangeError, as in CCF.
  globalThis.snp_attestation = {
    verifySnpAttestation: function verifySnpAttestation() {
      try {
        return hostCall("snp.verifySnpAttestation", Array.from(arguments));
      } catch (e) {
        const message = e !== null && typeof e === "object" ? String(e.message) : String(e);
        if (e !== null && typeof e === "object" && e.name === "TypeError") throw new TypeError(message);
        throw new RangeError(message);
      }
    },
  };

  // Sealing (isolated sandboxes): nothing a call can reach outlives it. Weak references and
  // finalizers are removed (a finalizer would run during a later call, against its KV); every
  // object reachable from the global object is frozen. Assigning a property that a frozen built-in
  // prototype defines (err.name = ..., obj.toString = ...) still works on the object assigned to:
  // those few properties become accessors that define an own property (else strict code would
  // throw, the "override mistake").
  const OVERRIDABLE = ["constructor", "name", "message", "toString", "valueOf", "toLocaleString", "toJSON"];
  function overridable(proto) {
    for (const key of OVERRIDABLE) {
      const d = Object.getOwnPropertyDescriptor(proto, key);
      if (d === undefined || !("value" in d) || !d.writable || !d.configurable) continue;
      const value = d.value;
      // Methods, not function expressions: they have no prototype object of their own to seal.
      Object.defineProperty(proto, key, {
        get() { return value; },
        set(v) {
          if (this === proto) throw new TypeError("cannot assign to read only property '" + key + "'");
          Object.defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
        },
        enumerable: d.enumerable,
        configurable: false,
      });
    }
  }
  function seal() {
    delete globalThis.WeakRef;
    delete globalThis.FinalizationRegistry;
    const seen = new Set();
    const todo = [globalThis];
    while (todo.length > 0) {
      const o = todo.pop();
      if (seen.has(o)) continue;
      seen.add(o);
      const ctor = Object.getOwnPropertyDescriptor(o, "constructor");
      if (ctor !== undefined && typeof ctor.value === "function" && ctor.value.prototype === o) overridable(o);
      for (const key of Reflect.ownKeys(o)) {
        const d = Object.getOwnPropertyDescriptor(o, key);
        if (d === undefined) continue;
        for (const v of [d.value, d.get, d.set]) {
          if ((typeof v === "object" && v !== null) || typeof v === "function") todo.push(v);
        }
      }
      const proto = Object.getPrototypeOf(o);
      if (proto !== null) todo.push(proto);
      Object.freeze(o);
    }
    sealed = true;
  }
  function exportNames(namespace) { return Object.keys(namespace); }

  function begin(packedInfo) {
    const info = unpack(packedInfo);
    untrustedDate = false;
    metricsLogging = true;
    pool = undefined;
    if (sealed) kvMaps.clear();
    historicalState = info.historical === undefined ? undefined : withKv(info.historical);
  }
  return { pack: pack, unpack: unpack, begin: begin, seal: seal, exportNames: exportNames };
})`;
