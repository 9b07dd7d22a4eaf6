// Coco's default constitution: the governance actions members can propose. It runs in Coco's
// QuickJS sandbox with the `ccf` global; the tables and action names are the ones CCF uses, so
// proposals written for CCF work here too.

const SINGLETON = new ArrayBuffer(8);
const buf = (s) => ccf.strToBuf(s);
const json = (v) => ccf.jsonCompatibleToBuf(v);
const parse = (b) => ccf.bufToJsonCompatible(b);

function need(condition, message) {
  if (!condition) throw new Error(message);
}
function isString(v, field) {
  need(typeof v === "string" && v.length > 0, `${field} must be a non-empty string`);
}
function isOptionalObject(v, field) {
  need(
    v === undefined || v === null || (typeof v === "object" && !Array.isArray(v)),
    `${field} must be an object`,
  );
}
function isCert(pem, field) {
  isString(pem, field);
  need(ccf.crypto.isValidX509CertBundle(pem), `${field} must be a PEM X.509 certificate`);
}
function isHex(v, bytes, field) {
  need(
    typeof v === "string" && new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v),
    `${field} must be ${bytes} bytes of hex`,
  );
}
function isEntityId(v, field) {
  isHex(v, 32, field);
}
function isJwks(jwks) {
  return (
    typeof jwks === "object" &&
    jwks !== null &&
    Array.isArray(jwks.keys) &&
    jwks.keys.every((k) => typeof k?.kid === "string" && typeof k?.kty === "string")
  );
}
function noArgs(args) {
  need(
    args === undefined || args === null || Object.keys(args).length === 0,
    "this action takes no arguments",
  );
}
function isInteger(v, min, max, field) {
  need(
    Number.isInteger(v) && v >= min && (max === undefined || v <= max),
    `${field} must be an integer from ${min}${max === undefined ? "" : ` to ${max}`}`,
  );
}

function serviceConfig() {
  const raw = ccf.kv["public:ccf.gov.service.config"].get(SINGLETON);
  return raw === undefined ? {} : parse(raw);
}

function setMember(args) {
  const id = ccf.pemToId(args.cert);
  const key = buf(id);
  ccf.kv["public:ccf.gov.members.certs"].set(key, buf(args.cert));
  if (args.encryption_pub_key)
    ccf.kv["public:ccf.gov.members.encryption_public_keys"].set(key, buf(args.encryption_pub_key));
  else ccf.kv["public:ccf.gov.members.encryption_public_keys"].delete(key);
  ccf.kv["public:ccf.gov.members.info"].set(
    key,
    json({ status: "Accepted", member_data: args.member_data, recovery_role: args.recovery_role }),
  );
  const signature = ccf.kv["public:ccf.internal.signatures"].get(SINGLETON);
  ccf.kv["public:ccf.gov.members.acks"].set(
    key,
    json(signature === undefined ? {} : { state_digest: parse(signature).root }),
  );
}

function removeFrom(maps, id) {
  for (const map of maps) ccf.kv[map].delete(buf(id));
}

function updateData(map, id, field, data) {
  const raw = ccf.kv[map].get(buf(id));
  need(raw !== undefined, `no such entity: ${id}`);
  ccf.kv[map].set(buf(id), json({ ...parse(raw), [field]: data }));
}

function setNodeStatus(nodeId, status) {
  const raw = ccf.kv["public:ccf.gov.nodes.info"].get(buf(nodeId));
  need(raw !== undefined, `no such node: ${nodeId}`);
  const info = parse(raw);
  if (status === "Retired" && info.status === "Pending") {
    ccf.kv["public:ccf.gov.nodes.info"].delete(buf(nodeId));
    return;
  }
  if (status === "Trusted" && info.status !== "Pending") return;
  info.status = status;
  if (status === "Trusted") info.ledger_secret_seqno = ccf.network.getLatestLedgerSecretSeqno();
  ccf.kv["public:ccf.gov.nodes.info"].set(buf(nodeId), json(info));
}

// Certificate renewal: same keys, a new validity period, at most the service's configured maximum.
function validityDays(requested, maxField) {
  const max = serviceConfig()[maxField] ?? 365;
  need(
    requested === undefined || requested <= max,
    `validity_period_days ${requested} is more than the ${max} allowed`,
  );
  return requested ?? max;
}
function isValidity(a) {
  need(
    a.valid_from === undefined || typeof a.valid_from === "string",
    "valid_from must be a string such as 20261125000000Z",
  );
  if (a.validity_period_days !== undefined)
    isInteger(a.validity_period_days, 1, undefined, "validity_period_days");
}
function renewNodeCertificate(nodeId, validFrom, days) {
  const raw = ccf.kv["public:ccf.gov.nodes.info"].get(buf(nodeId));
  need(raw !== undefined, `no such node: ${nodeId}`);
  const info = parse(raw);
  need(info.certificate_signing_request !== undefined, `node ${nodeId} has no certificate signing request`);
  const cert = ccf.network.generateEndorsedCertificate(
    info.certificate_signing_request,
    validFrom,
    validityDays(days, "maximum_node_certificate_validity_days"),
  );
  ccf.kv["public:ccf.gov.nodes.endorsed_certificates"].set(buf(nodeId), buf(cert));
}

function keyed(map, validateKey) {
  return {
    add: new Action(
      (args) => validateKey(args),
      (args) => ccf.kv[map].set(buf(args.measurement ?? args.code_id), json("AllowedToJoin")),
    ),
    remove: new Action(
      (args) => validateKey(args),
      (args) => ccf.kv[map].delete(buf(args.measurement ?? args.code_id)),
    ),
  };
}

class Action {
  constructor(validate, apply) {
    this.validate = validate;
    this.apply = apply;
  }
}

const virtualMeasurements = keyed("public:ccf.gov.nodes.virtual.measurements", (a) =>
  isHex(a.measurement, 32, "measurement"),
);
const snpMeasurements = keyed("public:ccf.gov.nodes.snp.measurements", (a) =>
  isHex(a.measurement, 48, "measurement"),
);

// The SNP join policy, in CCF's table formats (see docs/attestation.md, "Join policy").
function hexOf(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
// As CCF: host data is the SHA-256 of the security policy, which the table keeps as its value.
function checkHostData(a) {
  isHex(a.host_data, 32, "host_data");
  need(
    a.security_policy === undefined || typeof a.security_policy === "string",
    "security_policy must be a string",
  );
  if (a.security_policy) {
    const digest = hexOf(ccf.crypto.digest("SHA-256", buf(a.security_policy)));
    need(
      digest === a.host_data.toLowerCase(),
      `the SHA-256 of security_policy is ${digest}, not host_data ${a.host_data}`,
    );
  }
}
// CCF keys minimum TCBs by CPUID (leaf 1 EAX) as 8 lower-case hex digits, so keys cannot alias.
function isCpuid(v) {
  need(typeof v === "string" && /^[0-9a-f]{8}$/.test(v), "cpuid must be 8 lower-case hex digits");
}
function cpuidProduct(cpuid) {
  const eax = parseInt(cpuid, 16);
  const baseFamily = (eax >> 8) & 0xf;
  const family = baseFamily === 0xf ? baseFamily + ((eax >> 20) & 0xff) : baseFamily;
  const model = (((eax >> 16) & 0xf) << 4) | ((eax >> 4) & 0xf);
  if (family === 0x19 && model <= 0x0f) return "Milan";
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)))
    return "Genoa";
  if (family === 0x1a && model <= 0x11) return "Turin";
  return undefined;
}
// CCF's tcbHexToPolicy: the TCB written most significant byte first, decoded with the layout of
// the CPU generation the CPUID names (Turin puts FMC first).
function tcbHexToPolicy(cpuid, hex) {
  const le = (i) => parseInt(hex.slice(14 - 2 * i, 16 - 2 * i), 16);
  return cpuidProduct(cpuid) === "Turin"
    ? { hexstring: hex, microcode: le(7), snp: le(3), tee: le(2), boot_loader: le(1), fmc: le(0) }
    : { hexstring: hex, microcode: le(7), snp: le(6), tee: le(1), boot_loader: le(0) };
}

const actions = new Map([
  [
    // Which Sawtooth batcher keys (compressed secp256k1, hex) may submit batches: the whole list.
    "set_sawtooth_batchers",
    new Action(
      (a) => {
        need(Array.isArray(a.batchers), "batchers must be an array");
        for (const k of a.batchers)
          need(
            typeof k === "string" && /^0[23][0-9a-f]{64}$/.test(k),
            "each batcher must be a compressed secp256k1 public key in lowercase hex",
          );
      },
      (a) => {
        const table = ccf.kv["public:ccf.gov.sawtooth.batchers"];
        table.clear();
        for (const k of a.batchers) table.set(buf(k), json({}));
      },
    ),
  ],
  [
    "set_constitution",
    new Action(
      (a) => isString(a.constitution, "constitution"),
      (a) => ccf.kv["public:ccf.gov.constitution"].set(SINGLETON, buf(a.constitution)),
    ),
  ],
  [
    "set_member",
    new Action((a) => {
      isCert(a.cert, "cert");
      isOptionalObject(a.member_data, "member_data");
      if (a.encryption_pub_key !== undefined) isString(a.encryption_pub_key, "encryption_pub_key");
    }, setMember),
  ],
  [
    "remove_member",
    new Action(
      (a) => isEntityId(a.member_id, "member_id"),
      (a) =>
        removeFrom(
          [
            "public:ccf.gov.members.certs",
            "public:ccf.gov.members.encryption_public_keys",
            "public:ccf.gov.members.info",
            "public:ccf.gov.members.acks",
          ],
          a.member_id,
        ),
    ),
  ],
  [
    "set_member_data",
    new Action(
      (a) => {
        isEntityId(a.member_id, "member_id");
        isOptionalObject(a.member_data, "member_data");
      },
      (a) => updateData("public:ccf.gov.members.info", a.member_id, "member_data", a.member_data),
    ),
  ],
  [
    "set_user",
    new Action(
      (a) => {
        isCert(a.cert, "cert");
        isOptionalObject(a.user_data, "user_data");
      },
      (a) => {
        const id = buf(ccf.pemToId(a.cert));
        ccf.kv["public:ccf.gov.users.certs"].set(id, buf(a.cert));
        if (a.user_data !== undefined && a.user_data !== null)
          ccf.kv["public:ccf.gov.users.info"].set(id, json({ user_data: a.user_data }));
        else ccf.kv["public:ccf.gov.users.info"].delete(id);
      },
    ),
  ],
  [
    "remove_user",
    new Action(
      (a) => isEntityId(a.user_id, "user_id"),
      (a) => removeFrom(["public:ccf.gov.users.certs", "public:ccf.gov.users.info"], a.user_id),
    ),
  ],
  [
    // Coco's EVM (docs/ethereum.md): chain id, base fee in wei (0: gas is free) and block gas limit.
    "set_evm_config",
    new Action(
      (a) => {
        need(typeof a === "object" && a !== null, "arguments must be an object");
        for (const k of Object.keys(a))
          need(["chain_id", "gas_price", "block_gas_limit"].includes(k), `unknown argument ${k}`);
        isInteger(a.chain_id, 1, Number.MAX_SAFE_INTEGER, "chain_id");
        need(
          (Number.isInteger(a.gas_price) && a.gas_price >= 0) ||
            (typeof a.gas_price === "string" && /^[0-9]{1,30}$/.test(a.gas_price)),
          "gas_price must be a non-negative integer (or a decimal string) of wei",
        );
        isInteger(a.block_gas_limit, 21000, 1000000000, "block_gas_limit");
      },
      (a) =>
        ccf.kv["public:coco.evm.config"].set(
          buf("config"),
          json({ chain_id: a.chain_id, gas_price: String(a.gas_price), block_gas_limit: a.block_gas_limit }),
        ),
    ),
  ],
  [
    "set_user_data",
    new Action(
      (a) => {
        isEntityId(a.user_id, "user_id");
        isOptionalObject(a.user_data, "user_data");
      },
      (a) => ccf.kv["public:ccf.gov.users.info"].set(buf(a.user_id), json({ user_data: a.user_data })),
    ),
  ],
  [
    "set_recovery_threshold",
    new Action(
      (a) => isInteger(a.recovery_threshold, 1, 254, "recovery_threshold"),
      (a) =>
        ccf.kv["public:ccf.gov.service.config"].set(
          SINGLETON,
          json({ ...serviceConfig(), recovery_threshold: a.recovery_threshold }),
        ),
    ),
  ],
  ["trigger_recovery_shares_refresh", new Action(noArgs, () => ccf.node.triggerRecoverySharesRefresh())],
  ["trigger_ledger_rekey", new Action(noArgs, () => ccf.node.triggerLedgerRekey())],
  ["trigger_snapshot", new Action(noArgs, () => ccf.node.triggerSnapshot())],
  [
    "transition_service_to_open",
    new Action(
      (a) => {
        isCert(a.next_service_identity, "next_service_identity");
        if (a.previous_service_identity !== undefined)
          isCert(a.previous_service_identity, "previous_service_identity");
      },
      (a) =>
        ccf.node.transitionServiceToOpen(
          a.previous_service_identity === undefined ? undefined : buf(a.previous_service_identity),
          buf(a.next_service_identity),
        ),
    ),
  ],
  [
    "transition_node_to_trusted",
    new Action(
      (a) => {
        isEntityId(a.node_id, "node_id");
        isValidity(a);
      },
      (a) => {
        const raw = ccf.kv["public:ccf.gov.nodes.info"].get(buf(a.node_id));
        const wasPending = raw !== undefined && parse(raw).status === "Pending";
        setNodeStatus(a.node_id, "Trusted");
        // A newly trusted node gets its certificate endorsed for the validity the members chose.
        if (wasPending && parse(raw).certificate_signing_request !== undefined)
          renewNodeCertificate(a.node_id, a.valid_from, a.validity_period_days);
      },
    ),
  ],
  [
    "set_node_certificate_validity",
    new Action(
      (a) => {
        isEntityId(a.node_id, "node_id");
        isValidity(a);
      },
      (a) => {
        const info = ccf.kv["public:ccf.gov.nodes.info"].get(buf(a.node_id));
        need(info !== undefined && parse(info).status === "Trusted", `node ${a.node_id} is not trusted`);
        renewNodeCertificate(a.node_id, a.valid_from, a.validity_period_days);
      },
    ),
  ],
  [
    "set_all_nodes_certificate_validity",
    new Action(isValidity, (a) =>
      ccf.kv["public:ccf.gov.nodes.info"].forEach((value, key) => {
        if (parse(value).status === "Trusted")
          renewNodeCertificate(ccf.bufToStr(key), a.valid_from, a.validity_period_days);
      }),
    ),
  ],
  [
    "set_service_certificate_validity",
    new Action(isValidity, (a) => {
      const cert = ccf.network.generateNetworkCertificate(
        a.valid_from,
        validityDays(a.validity_period_days, "maximum_service_certificate_validity_days"),
      );
      const info = parse(ccf.kv["public:ccf.gov.service.info"].get(SINGLETON));
      ccf.kv["public:ccf.gov.service.info"].set(SINGLETON, json({ ...info, cert }));
    }),
  ],
  [
    "remove_node",
    new Action(
      (a) => isEntityId(a.node_id, "node_id"),
      (a) => setNodeStatus(a.node_id, "Retired"),
    ),
  ],
  [
    "add_node_code",
    new Action(
      (a) => isHex(a.code_id ?? a.measurement, 32, "code_id"),
      (a) =>
        ccf.kv["public:ccf.gov.nodes.virtual.measurements"].set(
          buf(a.code_id ?? a.measurement),
          json("AllowedToJoin"),
        ),
    ),
  ],
  [
    "remove_node_code",
    new Action(
      (a) => isHex(a.code_id ?? a.measurement, 32, "code_id"),
      (a) => ccf.kv["public:ccf.gov.nodes.virtual.measurements"].delete(buf(a.code_id ?? a.measurement)),
    ),
  ],
  ["add_virtual_measurement", virtualMeasurements.add],
  ["remove_virtual_measurement", virtualMeasurements.remove],
  ["add_snp_measurement", snpMeasurements.add],
  ["remove_snp_measurement", snpMeasurements.remove],
  [
    "add_snp_host_data",
    new Action(checkHostData, (a) =>
      ccf.kv["public:ccf.gov.nodes.snp.host_data"].set(buf(a.host_data), json(a.security_policy ?? "")),
    ),
  ],
  [
    "remove_snp_host_data",
    new Action(
      (a) => isHex(a.host_data, 32, "host_data"),
      (a) => ccf.kv["public:ccf.gov.nodes.snp.host_data"].delete(buf(a.host_data)),
    ),
  ],
  [
    "set_snp_minimum_tcb_version",
    new Action(
      (a) => {
        isCpuid(a.cpuid);
        need(
          typeof a.tcb_version === "object" && a.tcb_version !== null && !Array.isArray(a.tcb_version),
          "tcb_version must be an object",
        );
        for (const field of ["boot_loader", "tee", "snp", "microcode"]) {
          isInteger(a.tcb_version[field], 0, 255, `tcb_version.${field}`);
        }
      },
      (a) => ccf.kv["public:ccf.gov.nodes.snp.tcb_versions"].set(buf(a.cpuid), json(a.tcb_version)),
    ),
  ],
  [
    "set_snp_minimum_tcb_version_hex",
    new Action(
      (a) => {
        isCpuid(a.cpuid);
        need(cpuidProduct(a.cpuid) !== undefined, `CPUID ${a.cpuid} names no SEV-SNP product Coco knows`);
        need(
          typeof a.tcb_version === "string" && /^[0-9a-f]{16}$/.test(a.tcb_version),
          "tcb_version must be 16 lower-case hex digits (8 bytes)",
        );
      },
      (a) =>
        ccf.kv["public:ccf.gov.nodes.snp.tcb_versions"].set(
          buf(a.cpuid),
          json(tcbHexToPolicy(a.cpuid, a.tcb_version)),
        ),
    ),
  ],
  [
    "remove_snp_minimum_tcb_version",
    new Action(
      (a) => isCpuid(a.cpuid),
      (a) => {
        need(ccf.kv["public:ccf.gov.nodes.snp.tcb_versions"].has(buf(a.cpuid)), `CPUID ${a.cpuid} not found`);
        ccf.kv["public:ccf.gov.nodes.snp.tcb_versions"].delete(buf(a.cpuid));
      },
    ),
  ],
  [
    "set_js_app",
    new Action(
      (a) => {
        const bundle = a.bundle;
        need(typeof bundle === "object" && bundle !== null, "bundle must be an object {metadata, modules}");
        need(Array.isArray(bundle.modules), "bundle.modules must be an array");
        for (const [i, m] of bundle.modules.entries()) {
          need(
            typeof m?.name === "string" && typeof m?.module === "string",
            `bundle.modules[${i}] must be {name, module}`,
          );
        }
        need(typeof bundle.metadata?.endpoints === "object", "bundle.metadata.endpoints must be an object");
        // Coco's node checks the rest (modes, policies, that the code loads) for any constitution.
      },
      (a) => {
        const modules = ccf.kv["public:ccf.gov.modules"];
        const endpoints = ccf.kv["public:ccf.gov.endpoints"];
        modules.clear();
        endpoints.clear();
        for (const m of a.bundle.modules) modules.set(buf(`/${m.name.replace(/^\/+/, "")}`), buf(m.module));
        for (const [path, methods] of Object.entries(a.bundle.metadata.endpoints)) {
          for (const [method, info] of Object.entries(methods)) {
            const stored = { ...info, js_module: `/${info.js_module.replace(/^\/+/, "")}` };
            endpoints.set(buf(`${method.toUpperCase()} ${path}`), json(stored));
          }
        }
        // Written on every install, as CCF does: nodes reload the app when it changes.
        ccf.kv["public:ccf.gov.interpreter.flush"].set(SINGLETON, json(true));
      },
    ),
  ],
  [
    "remove_js_app",
    new Action(noArgs, () => {
      for (const map of [
        "modules",
        "endpoints",
        "interpreter.flush",
        "modules_quickjs_bytecode",
        "modules_quickjs_version",
      ])
        ccf.kv[`public:ccf.gov.${map}`].clear();
    }),
  ],
  [
    "set_js_runtime_options",
    new Action(
      (a) => {
        isInteger(a.max_heap_bytes, 1024 * 1024, 2048 * 1024 * 1024, "max_heap_bytes");
        isInteger(a.max_stack_bytes, 8 * 1024, 2 ** 30, "max_stack_bytes");
        isInteger(a.max_execution_time_ms, 1, 600000, "max_execution_time_ms");
        for (const f of ["log_exception_details", "return_exception_details"])
          need(a[f] === undefined || typeof a[f] === "boolean", `${f} must be a boolean`);
      },
      (a) => ccf.kv["public:ccf.gov.js_runtime_options"].set(SINGLETON, json(a)),
    ),
  ],
  [
    "set_jwt_issuer",
    new Action(
      (a) => {
        isString(a.issuer, "issuer");
        need(a.jwks === undefined || isJwks(a.jwks), "jwks must be {keys: [{kid, kty, ...}]}");
        need(
          !a.auto_refresh,
          "auto_refresh is not supported in Coco: set keys with set_jwt_public_signing_keys",
        );
        need(
          a.audience === undefined ||
            typeof a.audience === "string" ||
            (Array.isArray(a.audience) && a.audience.every((x) => typeof x === "string")),
          "audience must be a string or an array of strings",
        );
      },
      (a) => {
        const { jwks, ...metadata } = a;
        if (jwks) {
          ccf.removeJwtPublicSigningKeys(a.issuer);
          ccf.setJwtPublicSigningKeys(a.issuer, metadata, jwks);
        }
        ccf.kv["public:ccf.gov.jwt.issuers"].set(buf(a.issuer), json(metadata));
      },
    ),
  ],
  [
    "set_jwt_public_signing_keys",
    new Action(
      (a) => {
        isString(a.issuer, "issuer");
        need(isJwks(a.jwks), "jwks must be {keys: [{kid, kty, ...}]}");
      },
      (a) => {
        const metadata = ccf.kv["public:ccf.gov.jwt.issuers"].get(buf(a.issuer));
        need(metadata !== undefined, `issuer ${a.issuer} not found`);
        // The new set replaces the issuer's keys: a key left out is no longer trusted.
        ccf.removeJwtPublicSigningKeys(a.issuer);
        ccf.setJwtPublicSigningKeys(a.issuer, parse(metadata), a.jwks);
      },
    ),
  ],
  [
    "remove_jwt_issuer",
    new Action(
      (a) => isString(a.issuer, "issuer"),
      (a) => {
        if (!ccf.kv["public:ccf.gov.jwt.issuers"].has(buf(a.issuer))) return;
        ccf.kv["public:ccf.gov.jwt.issuers"].delete(buf(a.issuer));
        ccf.removeJwtPublicSigningKeys(a.issuer);
      },
    ),
  ],
  [
    "set_outbound_destination",
    new Action(
      (a) => {
        isString(a.origin, "origin");
        need(
          /^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(a.origin),
          "origin must be https://host[:port], with no path",
        );
        need(a.ca_cert === undefined || typeof a.ca_cert === "string", "ca_cert must be a PEM string");
        if (a.ca_cert !== undefined) isCert(a.ca_cert, "ca_cert");
      },
      (a) => {
        const entry = a.ca_cert === undefined ? {} : { ca_cert: a.ca_cert };
        ccf.kv["public:coco.gov.outbound.destinations"].set(buf(a.origin), json(entry));
      },
    ),
  ],
  [
    "remove_outbound_destination",
    new Action(
      (a) => isString(a.origin, "origin"),
      (a) => ccf.kv["public:coco.gov.outbound.destinations"].delete(buf(a.origin)),
    ),
  ],
  ["refresh_js_app_bytecode_cache", new Action(noArgs, () => ccf.refreshAppBytecodeCache())],
  [
    "set_service_configuration",
    new Action(
      (a) => isOptionalObject(a, "args"),
      (a) => ccf.kv["public:ccf.gov.service.config"].set(SINGLETON, json({ ...serviceConfig(), ...a })),
    ),
  ],
]);
