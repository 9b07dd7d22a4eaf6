// Public face of src/crypto. The X.509 building libraries load on first use (lazy-x509.ts), so
// importing this costs a `coco gov` call no more than node:crypto, cbor-x and a few small files.

export { AES_GCM_IV_LENGTH, AES_GCM_TAG_LENGTH, aesGcmDecrypt, aesGcmEncrypt } from "./aead.ts";
export {
  type CertificateInfo,
  type CertKeyType,
  certFingerprint,
  createIdentityCertificate,
  createServiceIdentity,
  endorsePreviousService,
  issueNodeCertificate,
  normalizePem,
  parseCertificate,
  verifyIssuedBy,
} from "./certs.ts";
export * from "./cose.ts";
export { CryptoError, equalBytes, fromHex, sha256, sha256Utf8, sha384, toHex } from "./hash.ts";
export {
  curveOf,
  generateEcKeyPair,
  generateP384KeyPair,
  hashForCurve,
  type KeyPairPem,
  nodeIdOf,
  p384PrivateKey,
  p384PublicKey,
  publicKeyDer,
  SERVICE_CURVES,
  type ServiceCurve,
  signP384,
  verifyP384,
} from "./keys.ts";
export { preloadCertificateLibraries } from "./lazy-x509.ts";
export * from "./merkle.ts";
export * from "./receipt.ts";
export {
  certificateRequestKey,
  createCertificateRequest,
  endorseCertificateRequest,
  parseValidFrom,
  renewServiceCertificate,
} from "./renewal.ts";
export { readSealHeader, type SealHeader, sealingKeyFrom, sealJson, unsealJson } from "./seal.ts";
