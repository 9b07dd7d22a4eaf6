// A stand-in for `snpguest report`: `fake-amd-sp.ts <guest.json> <report path> <report-data path>`
// writes a report for the requested report data, signed by the fake VCEK in guest.json.
import { readFileSync, writeFileSync } from "node:fs";
import { fakeReport } from "./fake-report.ts";

const [specFile, reportPath, dataPath] = process.argv.slice(2);
if (!specFile || !reportPath || !dataPath) {
  console.error("usage: fake-amd-sp.ts <guest.json> <report> <report-data>");
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specFile, "utf8")) as {
  vcekKeyPem: string;
  measurement: string;
  hostData: string;
  policy: string;
};
const reportData = new Uint8Array(readFileSync(dataPath));
writeFileSync(
  reportPath,
  fakeReport(spec.vcekKeyPem, {
    reportData,
    measurement: spec.measurement,
    hostData: spec.hostData,
    policy: BigInt(spec.policy),
  }),
);
