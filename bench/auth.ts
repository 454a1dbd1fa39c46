/**
 * Security benchmark: FHIR search throughput with JWT authentication + policy + audit
 * trail on, as a ratio to the same search with authentication off (loopback) and no audit.
 * Target ≥ 0.85×. Both apps run in this process on the same database, each behind its own HTTP
 * listener; autocannon runs alternate between them (interleaved) and the medians are compared.
 * Endpoint: GET /fhir/DocumentReference?patient=<id>&_count=10 (ITI-67), over 40 seeded manifests.
 * Writes bench/results-auth.md.
 * Run: npm run bench:auth  [-- --runs 5 --duration 5 --connections 10]
 */
import fs, { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { buildApp, closeApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { syntheticManifest, writeKos } from '../src/dicom/index.js';
import { createLogger } from '../src/log.js';
import { countAuditEvents } from '../src/store/audit-store.js';
import { createDb } from '../src/store/db.js';
import { createTestDb } from '../test/helpers/db.js';
import { AUDIENCE, ISSUER, makeKeys, mint } from '../test/helpers/auth.js';
import { median } from './lib/report.js';
import { NO_AUDIT } from './lib/no-audit.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const RUNS = arg('runs', 5);
const DURATION = arg('duration', 5);
const CONNECTIONS = arg('connections', 10);

const tdb = await createTestDb();
const log = createLogger('silent');
const keys = await makeKeys('bench');
const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-auth-'));
const cfgFile = path.join(cfgDir, 'gateway.json');
fs.writeFileSync(cfgFile, JSON.stringify({ auth: { jwt: { issuer: ISSUER, audience: AUDIENCE, keys: [keys.publicJwk], algorithms: ['RS256'] } } }));
const base = { DATABASE_URL: tdb.url, PUBLIC_BASE_URL: 'http://bench.test', LOG_LEVEL: 'silent', PORT: '0' };
// Each app gets its own pool of the production size (createDb default, 20), as a deployment would.
const pools = [createDb({ url: tdb.url }), createDb({ url: tdb.url }), createDb({ url: tdb.url })];
const off = buildApp({ config: loadConfig(base), db: pools[0]!, log, version: 'bench' }, NO_AUDIT).app;
const on = buildApp({ config: loadConfig({ ...base, GATEWAY_CONFIG: cfgFile }), db: pools[1]!, log, version: 'bench' }).app;
// Diagnostic third configuration: authentication and policy on, audit off (splits the cost).
const authOnly = buildApp({ config: loadConfig({ ...base, GATEWAY_CONFIG: cfgFile }), db: pools[2]!, log, version: 'bench' }, NO_AUDIT).app;

async function listen(app: typeof on): Promise<{ server: Server; url: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
const A = await listen(off);
const B = await listen(on);
const C = await listen(authOnly);

// Seed through the real ingest route (loopback app): 40 manifests over 8 patients.
const patientValues: string[] = [];
for (let i = 0; i < 40; i++) {
  const m = syntheticManifest({ series: 3, instancesPerSeries: 10, seed: `bench-auth-${i % 8}-${i}` });
  if (i >= 8) {
    // same patient as manifest i % 8
    const p = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: `bench-auth-${i % 8}-${i % 8}` }).patient;
    m.patient = p;
  } else patientValues.push(m.patient.id!.value);
  const res = await fetch(`${A.url}/fhir/Binary`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: Buffer.from(writeKos(m)) });
  if (res.status >= 300) throw new Error(`seed failed: ${res.status} ${await res.text()}`);
}
const row = (await tdb.db('patient_identifier').where({ value: patientValues[0] }).first()) as { patient_id: string };
const searchPath = `/fhir/DocumentReference?patient=${row.patient_id}&_count=10`;
const token = await mint({ sub: 'bench-user', client_id: 'bench', roles: ['radiologist'], scope: 'user/*.rs RAD-107' }, { keys, expiresIn: '2h' });

// sanity: both answer the same search with the same number of results
const check = async (url: string, headers: Record<string, string>) => ((await (await fetch(url + searchPath, { headers })).json()) as { entry?: unknown[] }).entry?.length ?? 0;
const tOff = await check(A.url, {});
const tOn = await check(B.url, { authorization: `Bearer ${token}` });
if (tOff !== tOn || !tOff) throw new Error(`search results differ or empty: ${tOff} vs ${tOn}`);

/**
 * CPU time (µs) of this process (apps + autocannon) plus the PostgreSQL backends serving the bench
 * database (found by the database name in their process title; Linux /proc). Unlike throughput,
 * CPU per request barely moves when other work shares the machine.
 */
function cpuMicros(): number {
  const u = process.cpuUsage();
  let pg = 0;
  try {
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (!cmd.startsWith('postgres:') || !cmd.includes(` ${tdb.name} `)) continue;
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        pg += (Number(f[11]) + Number(f[12])) * 10_000; // utime + stime, clock ticks of 10 ms
      } catch {
        /* process gone */
      }
    }
  } catch {
    /* no /proc */
  }
  return u.user + u.system + pg;
}

async function run(url: string, headers: Record<string, string>) {
  const c0 = cpuMicros();
  const r = await autocannon({ url: url + searchPath, connections: CONNECTIONS, duration: DURATION, headers });
  const cpu = (cpuMicros() - c0) / Math.max(1, r.requests.total);
  if (r.non2xx || r.errors) throw new Error(`non-2xx ${r.non2xx}, errors ${r.errors}`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, sent: r.requests.sent, cpu };
}

// warm-up both
await run(A.url, {});
await run(B.url, { authorization: `Bearer ${token}` });
const security = on.locals.security as { audit?: { flush(): Promise<void> } };
await security.audit?.flush();

const offRuns: Array<Awaited<ReturnType<typeof run>>> = [];
const onRuns: typeof offRuns = [];
const authRuns: typeof offRuns = [];
let audited = 0;
let completed = 0;
let sent = 0;
const auth = { authorization: `Bearer ${token}` };
for (let i = 0; i < RUNS; i++) {
  // rotate the order so no configuration always runs first
  const order = [0, 1, 2].map((k) => (k + i) % 3);
  for (const k of order) {
    if (k === 0) offRuns.push(await run(A.url, {}));
    else if (k === 2) authRuns.push(await run(C.url, auth));
    else {
      const before = await countAuditEvents(tdb.db);
      const r = await run(B.url, auth);
      await new Promise((res) => setTimeout(res, 200)); // let the last in-flight responses finish
      await security.audit?.flush();
      audited += (await countAuditEvents(tdb.db)) - before;
      completed += r.total;
      sent += r.sent;
      onRuns.push(r);
    }
  }
  process.stdout.write(`run ${i + 1}/${RUNS}: off ${offRuns[i]!.rps.toFixed(0)}, auth only ${authRuns[i]!.rps.toFixed(0)}, auth+audit ${onRuns[i]!.rps.toFixed(0)} req/s\n`);
}

const mOff = median(offRuns.map((r) => r.rps));
const mOn = median(onRuns.map((r) => r.rps));
const ratio = mOn / mOff;
// Paired view: each round ran both configurations back to back, so their ratio cancels slow drift
// in machine load (shared CI / dev machines).
const paired = median(onRuns.map((r, i) => r.rps / offRuns[i]!.rps));
// Throughput a CPU-bound deployment could expect, from CPU per request (robust to machine load).
const cpuRatio = median(offRuns.map((r) => r.cpu)) / median(onRuns.map((r) => r.cpu));
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const md = `# Security benchmark

FHIR search throughput with **JWT authentication, the policy and the audit trail on**, against the same
search with **authentication off (loopback) and no audit**, measured in the same run (interleaved
autocannon runs, medians). Target: ratio ≥ 0.85.

- Endpoint: \`GET /fhir/DocumentReference?patient=<id>&_count=10\` (ITI-67; ${tOn} DocumentReferences per page, 40 manifests / 8 patients seeded through POST /fhir/Binary)
- Auth on: RS256 bearer token (static JWKS), radiologist role, scopes \`user/*.rs RAD-107\`; one AuditEvent written per request (batched INSERT)
- ${RUNS} rounds × ${DURATION} s per configuration (order rotated each round), ${CONNECTIONS} connections; the apps run in one Node process, each with its own DB pool of the production size (20), on one embedded PostgreSQL
- Load average at start: ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} (shared machine: other work running raises the spread between rounds)
- Machine: ${os.cpus().length} × ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}

| Configuration | median req/s | p50 ms (median) | p99 ms (median) | CPU µs / request (median) | runs (req/s) |
|---|---:|---:|---:|---:|---|
| auth off, audit off | ${mOff.toFixed(0)} | ${median(offRuns.map((r) => r.p50)).toFixed(1)} | ${median(offRuns.map((r) => r.p99)).toFixed(1)} | ${median(offRuns.map((r) => r.cpu)).toFixed(0)} | ${offRuns.map((r) => r.rps.toFixed(0)).join(', ')} |
| JWT + policy, audit off (diagnostic) | ${median(authRuns.map((r) => r.rps)).toFixed(0)} | ${median(authRuns.map((r) => r.p50)).toFixed(1)} | ${median(authRuns.map((r) => r.p99)).toFixed(1)} | ${median(authRuns.map((r) => r.cpu)).toFixed(0)} | ${authRuns.map((r) => r.rps.toFixed(0)).join(', ')} |
| JWT + policy + audit on | ${mOn.toFixed(0)} | ${median(onRuns.map((r) => r.p50)).toFixed(1)} | ${median(onRuns.map((r) => r.p99)).toFixed(1)} | ${median(onRuns.map((r) => r.cpu)).toFixed(0)} | ${onRuns.map((r) => r.rps.toFixed(0)).join(', ')} |
| **ratio on / off** (medians) | **${ratio.toFixed(3)}** | | | off/on CPU: **${cpuRatio.toFixed(3)}** | target ≥ 0.85: **${ratio >= 0.85 ? 'met' : 'NOT met'}** |
| ratio on / off (median of per-round paired ratios) | ${paired.toFixed(3)} | | | | ${onRuns.map((r, i) => (r.rps / offRuns[i]!.rps).toFixed(2)).join(', ')} |

AuditEvents written during the measured "on" runs: ${audited}; requests completed inside the measuring windows ${completed}, sent ${sent} (${audited >= completed && audited <= sent ? 'one per request: the difference is requests still in flight when a window closed' : 'MISMATCH'}).

CPU µs / request = CPU of this Node process (the apps and autocannon) plus the PostgreSQL backends of
the bench database, divided by the requests completed. PostgreSQL CPU is read from /proc in 10 ms
ticks per backend, so this column is only good to about ±150 µs per request at these request counts.

Notes: a verified token is cached (by its SHA-256, never past \`exp\`, at most 60 s), as a client reuses its
token across requests; the first use of each token pays for the RS256 signature check.
`;
writeFileSync(path.join(import.meta.dirname, 'results-auth.md'), md);
process.stdout.write(md);

await closeApp(on);
await closeApp(off);
await closeApp(authOnly);
A.server.close();
B.server.close();
C.server.close();
for (const p of pools) await p.destroy();
await tdb.drop();
process.exit(ratio >= 0.85 && audited >= completed && audited <= sent ? 0 : 1);
