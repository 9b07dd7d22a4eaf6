import type { TLSSocket } from "node:tls";
import type { AuthPolicy, Caller } from "../apps/index.ts";
import { sha256, toHex } from "../crypto/index.ts";
import type { Store } from "../kv/index.ts";
import { fromUtf8, Tables, utf8 } from "../ledger/index.ts";
import { type AuthRequest, checkPolicies } from "./auth-policies.ts";

/** The identity behind the TLS client certificate, if any. */
export interface Peer {
  /** Hex SHA-256 of the certificate DER: the member or user id. */
  id: string | null;
  user: string | null;
  member: string | null;
  /**
   * A certificate was presented but is outside its validity dates: `id` is then null (so it
   * names nobody, here or when forwarded) and this says why.
   */
  invalidCertificate?: string;
}

/** What a connection's certificate says, read once per TLS connection (it cannot change within one). */
interface ConnectionCert {
  id: string;
  /** The certificate's DER bytes, as a forwarded call carries them to the primary. */
  der: Uint8Array;
  notBefore: number;
  notAfter: number;
}
const connectionCerts = new WeakMap<TLSSocket, ConnectionCert | null>();

function connectionCert(socket: TLSSocket): ConnectionCert | null {
  let found = connectionCerts.get(socket);
  if (found === undefined) {
    const cert =
      typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate(false) : undefined;
    const der = cert?.raw && cert.raw.length > 0 ? new Uint8Array(cert.raw) : undefined;
    found =
      cert && der
        ? {
            id: toHex(sha256(der)),
            der,
            // OpenSSL's text form ("Dec  7 06:39:51 2026 GMT"); an unreadable date fails closed.
            notBefore: Date.parse(cert.valid_from),
            notAfter: Date.parse(cert.valid_to),
          }
        : null;
    connectionCerts.set(socket, found);
  }
  return found;
}

/**
 * The DER certificate the client presented on this TLS connection, or null: read once per
 * connection (reading it costs more than the rest of a request's authentication).
 */
export function clientCertificateDer(socket: TLSSocket): Uint8Array | null {
  return connectionCert(socket)?.der ?? null;
}

/** Why a certificate is not valid at `now` (ms), or undefined when it is. */
export function certificateDateProblem(
  dates: { notBefore: number; notAfter: number },
  now: number,
): string | undefined {
  if (!(now <= dates.notAfter)) {
    return `certificate expired/not yet valid: it expired at ${isoOrUnknown(dates.notAfter)}`;
  }
  if (!(now >= dates.notBefore)) {
    return `certificate expired/not yet valid: it is not valid before ${isoOrUnknown(dates.notBefore)}`;
  }
  return undefined;
}

function isoOrUnknown(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "(unreadable date)";
}

/**
 * Who is calling, looked up afresh on every request so removed users and members lose access at
 * once. A certificate outside its validity dates (at `now`, ms) identifies nobody.
 */
export function identifyPeer(socket: TLSSocket, store: Store, now: number = Date.now()): Peer {
  const cert = connectionCert(socket);
  if (cert === null) return peerFromId(null, store);
  const problem = certificateDateProblem(cert, now);
  if (problem) return { id: null, user: null, member: null, invalidCertificate: `${cert.id}: ${problem}` };
  return connectionPeer(cert, store);
}

/**
 * The last caller each connection resolved to, with the user and member maps it was read from:
 * while neither map changes (the usual case: a removal or an addition changes it), the same
 * lookup would give the same answer, so it is not made again.
 */
interface ResolvedPeer {
  store: Store;
  users: object | null;
  members: object | null;
  peer: Peer;
}
const resolvedPeers = new WeakMap<ConnectionCert, ResolvedPeer>();

function connectionPeer(cert: ConnectionCert, store: Store): Peer {
  const users = store.mapState(Tables.usersCerts);
  const members = store.mapState(Tables.membersCerts);
  const last = resolvedPeers.get(cert);
  if (last && last.store === store && last.users === users && last.members === members) return last.peer;
  const peer = peerFromId(cert.id, store);
  resolvedPeers.set(cert, { store, users, members, peer });
  return peer;
}

/** The caller with this certificate id, as this node's store knows it (forwarded calls too). */
export function peerFromId(id: string | null, store: Store): Peer {
  if (id === null) return { id: null, user: null, member: null };
  const key = utf8(id);
  const user = store.read(Tables.usersCerts, key);
  const member = store.read(Tables.membersCerts, key);
  return { id, user: user ? fromUtf8(user) : null, member: member ? fromUtf8(member) : null };
}

export type AuthOutcome =
  | { ok: true; caller: Caller }
  | { ok: false; status: 401 | 403; code: string; message: string };

const CERT_POLICIES = new Set<AuthPolicy>(["user_cert", "member_cert", "any_cert", "no_auth"]);

/** Per endpoint's policy list: whether the TLS certificate alone decides (no request needed). */
const certificateOnly = new WeakMap<AuthPolicy[], boolean>();

/**
 * Whether these policies are decided by the client certificate alone, so `authenticate` needs no
 * request (and the caller builds none). Endpoints keep their policy list, so this is asked once.
 */
export function onlyCertificates(policies: AuthPolicy[]): boolean {
  let only = certificateOnly.get(policies);
  if (only === undefined) {
    only = policies.every((p) => CERT_POLICIES.has(p));
    certificateOnly.set(policies, only);
  }
  return only;
}

/**
 * Tries the endpoint's policies in order; the first that passes names the caller. Endpoints with
 * a policy beyond client certificates (jwt, COSE Sign1, all_of) are checked by auth-policies.ts,
 * which reads the request; without the request those policies fail.
 */
export function authenticate(policies: AuthPolicy[], peer: Peer, request?: AuthRequest): AuthOutcome {
  if (!onlyCertificates(policies)) {
    if (request === undefined) {
      return {
        ok: false,
        status: 401,
        code: "InvalidAuthenticationInfo",
        message: "this endpoint needs the request to authenticate",
      };
    }
    const outcome = checkPolicies(policies, peer, request);
    if (outcome.ok) return outcome;
    return { ok: false, status: 401, code: "InvalidAuthenticationInfo", message: outcome.message };
  }
  for (const policy of policies) {
    if (policy === "no_auth") return { ok: true, caller: { policy: "no_auth" } };
    if ((policy === "user_cert" || policy === "any_cert") && peer.user && peer.id) {
      return { ok: true, caller: { policy: "user_cert", id: peer.id, certPem: peer.user } };
    }
    if ((policy === "member_cert" || policy === "any_cert") && peer.member && peer.id) {
      return { ok: true, caller: { policy: "member_cert", id: peer.id, certPem: peer.member } };
    }
  }
  const wanted = policies.join(", ");
  if (peer.invalidCertificate) {
    return {
      ok: false,
      status: 401,
      code: "InvalidAuthenticationInfo",
      message: `client certificate ${peer.invalidCertificate}`,
    };
  }
  if (!peer.id) {
    return {
      ok: false,
      status: 401,
      code: "InvalidAuthenticationInfo",
      message: `this endpoint needs a client certificate (${wanted})`,
    };
  }
  if (!peer.user && !peer.member) {
    return {
      ok: false,
      status: 401,
      code: "InvalidAuthenticationInfo",
      message: `client certificate ${peer.id} is not a known user or member`,
    };
  }
  return {
    ok: false,
    status: 403,
    code: "AuthorizationFailed",
    message: `caller ${peer.id} is a ${peer.user ? "user" : "member"}, but this endpoint accepts only ${wanted}`,
  };
}
