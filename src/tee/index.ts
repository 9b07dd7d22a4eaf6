export * from "./snp/index.ts";
export {
  codeMeasurement,
  type VirtualAttestation,
  verifyVirtualAttestation,
  virtualAttestation,
} from "./virtual.ts";
