// A stand-in for `snpguest key` (0.7 to 0.9 syntax), over the guest model in fake-snp-keys.ts:
//   fake-snp-key-tool.ts <guest.json> <key path | -> <vcek|vmrk> -g <6-digit bits> -s <svn> -t <tcb> -v <vmpl>
// writes the 32-byte derived key to the path (or standard output for "-"); a refusal exits 1.
import { readFileSync, writeFileSync } from "node:fs";
import { type FakeSnpGuest, fakeKeyFirmware } from "./fake-snp-keys.ts";

const [specFile, keyPath, rootKey, ...flags] = process.argv.slice(2);
const flag = (name: string) => {
  const at = flags.indexOf(name);
  return at >= 0 ? flags[at + 1] : undefined;
};
if (!specFile || !keyPath || (rootKey !== "vcek" && rootKey !== "vmrk")) {
  console.error(
    "usage: fake-snp-key-tool.ts <guest.json> <key|-> <vcek|vmrk> -g <bits> -s <svn> -t <tcb> -v <vmpl>",
  );
  process.exit(2);
}
const raw = JSON.parse(readFileSync(specFile, "utf8"));
const guest: FakeSnpGuest = {
  ...raw,
  chipSecret: Uint8Array.from(Buffer.from(raw.chipSecret, "hex")),
  policy: BigInt(raw.policy),
};
try {
  const key = await fakeKeyFirmware(guest)({
    rootKey,
    guestFieldSelect: Number.parseInt(flag("-g") ?? "0", 2),
    guestSvn: Number(flag("-s") ?? 0),
    tcbVersion: BigInt(flag("-t") ?? 0),
    vmpl: Number(flag("-v") ?? 1),
  });
  if (keyPath === "-") process.stdout.write(key);
  else writeFileSync(keyPath, key);
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
