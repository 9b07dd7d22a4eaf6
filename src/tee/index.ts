export {
  codeMeasurement,
  type VirtualAttestation,
  verifyVirtualAttestation,
  virtualAttestation,
} from "./virtual.ts";
