/**
 * Security benchmark: ITI-67 search throughput with authentication + policy + audit trail on, as a
 * ratio to the same search with authentication off (loopback) and no audit, measured in the same
 * run. Two "on" configurations: a JWT verified locally (target ≥ 0.85×) and an opaque token checked
 * by RFC 7662 introspection, cached (target ≥ 0.8×). The apps and a real OpenID provider
 * (oidc-provider, test/helpers/oidc.ts) run in this process on one database, each app behind its
 * own HTTP listener; the load generator (autocannon, bench/lib/load.ts) runs in its own process.
 * A diagnostic fourth configuration (JWT + policy, audit off) splits the cost. Rounds interleave the
 * configurations (order rotated); medians are compared.
 * Endpoint: GET /fhir/DocumentReference?patient=<id>&_count=10 over 40 seeded manifests / 8 patients.
 * Writes bench/results-auth.md (finishBench: summary rows from this run's figures); last line
 * `RESULT auth.jwt/off=… auth.introspection/off=… auth.jwt-noaudit/off=…`.
 * Run: npm run bench:auth  [-- --runs 5 --duration 5 --connections 10]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildApp, closeApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { syntheticManifest, writeKos } from '../src/dicom/index.js';
import { createLogger } from '../src/log.js';
import { countAuditEvents } from '../src/store/audit-store.js';
import { createDb } from '../src/store/db.js';
import { createTestDb } from '../test/helpers/db.js';
import { startOidcProvider } from '../test/helpers/oidc.js';
import { NO_AUDIT } from './lib/no-audit.js';
import { benchHeader, finishBench, loadNow, median, numArg, pgVersion, range } from './lib/report.js';

const RUNS = numArg('runs', 5);
const DURATION = numArg('duration', 5);
const CONNECTIONS = numArg('connections', 10);
const loadStart = loadNow();

const tdb = await createTestDb();
const header = benchHeader({ postgres: await pgVersion(tdb.db) });
const log = createLogger('silent');
const idp = await startOidcProvider({ users: [{ sub: 'bench-user', claims: { roles: ['radiologist'] } }] });
const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-bench-auth-'));
const configFile = (name: string, auth: unknown) => {
  const f = path.join(cfgDir, `${name}.json`);
  fs.writeFileSync(f, JSON.stringify({ auth }));
  return f;
};
const base = { DATABASE_URL: tdb.url, PUBLIC_BASE_URL: 'http://bench.test', LOG_LEVEL: 'silent', PORT: '0' };
// Each app gets its own pool of the production size (createDb default, 20), as a deployment would.
const pools = [createDb({ url: tdb.url }), createDb({ url: tdb.url }), createDb({ url: tdb.url }), createDb({ url: tdb.url })];
const apps = {
  off: buildApp({ config: loadConfig(base), db: pools[0]!, log, version: 'bench' }, NO_AUDIT).app,
  jwt: buildApp({ config: loadConfig({ ...base, GATEWAY_CONFIG: configFile('jwt', { jwt: idp.jwtConfig() }) }), db: pools[1]!, log, version: 'bench' }).app,
  introspection: buildApp({ config: loadConfig({ ...base, GATEWAY_CONFIG: configFile('introspection', { introspection: idp.introspectionConfig() }) }), db: pools[2]!, log, version: 'bench' }).app,
  // Diagnostic: JWT + policy without the audit trail (splits the cost between access control and audit).
  jwtNoAudit: buildApp({ config: loadConfig({ ...base, GATEWAY_CONFIG: configFile('jwt-no-audit', { jwt: idp.jwtConfig() }) }), db: pools[3]!, log, version: 'bench' }, NO_AUDIT).app,
};
type Name = keyof typeof apps;
const NAMES: Name[] = ['off', 'jwt', 'introspection', 'jwtNoAudit'];

async function listen(app: (typeof apps)[Name]): Promise<{ server: Server; url: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
const listeners = { off: await listen(apps.off), jwt: await listen(apps.jwt), introspection: await listen(apps.introspection), jwtNoAudit: await listen(apps.jwtNoAudit) };

// Seed through the real ingest route (loopback app): 40 manifests over 8 patients.
const patientValues: string[] = [];
for (let i = 0; i < 40; i++) {
  const m = syntheticManifest({ series: 3, instancesPerSeries: 10, seed: `bench-auth-${i % 8}-${i}` });
  if (i >= 8) m.patient = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: `bench-auth-${i % 8}-${i % 8}` }).patient;
  else patientValues.push(m.patient.id!.value);
  const res = await fetch(`${listeners.off.url}/fhir/Binary`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: Buffer.from(writeKos(m)) });
  if (res.status >= 300) throw new Error(`seed failed: ${res.status} ${await res.text()}`);
}
const row = (await tdb.db('patient_identifier').where({ value: patientValues[0] }).first()) as { patient_id: string };
const searchPath = `/fhir/DocumentReference?patient=${row.patient_id}&_count=10`;
const scope = 'user/*.rs RAD-107';
const headers: Record<Name, Record<string, string>> = {
  off: {},
  jwt: { authorization: `Bearer ${await idp.token({ sub: 'bench-user', scope, expiresIn: 7200 })}` },
  introspection: { authorization: `Bearer ${await idp.token({ sub: 'bench-user', scope, expiresIn: 7200, format: 'opaque' })}` },
  jwtNoAudit: {},
};
headers.jwtNoAudit = headers.jwt;

// sanity: every configuration answers the same search with the same results
const count = async (n: Name) => ((await (await fetch(listeners[n].url + searchPath, { headers: headers[n] })).json()) as { entry?: unknown[] }).entry?.length ?? 0;
const perPage = await count('off');
for (const n of NAMES) if ((await count(n)) !== perPage || !perPage) throw new Error(`search results differ or empty for ${n}`);

/** CPU µs of this (server) process plus the PostgreSQL backends of the bench database; the load generator is not counted. */
function serverCpuMicros(): number {
  const u = process.cpuUsage();
  let pg = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.startsWith('postgres:') || !cmd.includes(` ${tdb.name} `)) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      pg += (Number(f[11]) + Number(f[12])) * 10_000;
    } catch {
      /* process gone */
    }
  }
  return u.user + u.system + pg;
}

interface Run { rps: number; p50: number; p99: number; total: number; sent: number; cpu: number }
const exec = promisify(execFile);

async function run(n: Name): Promise<Run> {
  const c0 = serverCpuMicros();
  const arg = JSON.stringify({ url: listeners[n].url + searchPath, headers: headers[n], connections: CONNECTIONS, duration: DURATION });
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'lib/load.ts'), arg], { cwd: path.join(import.meta.dirname, '..') });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as Omit<Run, 'cpu'> & { non2xx: number; errors: number };
  if (r.non2xx || r.errors) throw new Error(`${n}: non-2xx ${r.non2xx}, errors ${r.errors}`);
  return { ...r, cpu: (serverCpuMicros() - c0) / Math.max(1, r.total) };
}

const auditOf = (n: Name) => (apps[n].locals.security as { audit?: { flush(): Promise<void> } }).audit;
for (const n of NAMES) await run(n); // warm-up (also loads the JWKS and the introspection cache)
for (const n of NAMES) await auditOf(n)?.flush();

const runs: Record<Name, Run[]> = { off: [], jwt: [], introspection: [], jwtNoAudit: [] };
const audit = { written: 0, completed: 0, sent: 0 };
const introspectionsBefore = idp.introspections;
for (let i = 0; i < RUNS; i++) {
  for (const k of NAMES.map((_, x) => (x + i) % NAMES.length)) {
    const n = NAMES[k]!;
    const audited = n === 'jwt' || n === 'introspection';
    const before = audited ? await countAuditEvents(tdb.db) : 0;
    const r = await run(n);
    runs[n].push(r);
    if (audited) {
      await new Promise((res) => setTimeout(res, 200)); // the last in-flight responses finish
      await auditOf(n)?.flush();
      audit.written += (await countAuditEvents(tdb.db)) - before;
      audit.completed += r.total;
      audit.sent += r.sent;
    }
  }
  process.stdout.write(`round ${i + 1}/${RUNS}: ${NAMES.map((n) => `${n} ${runs[n][i]!.rps.toFixed(0)}`).join(', ')} req/s\n`);
}
const introspectionCalls = idp.introspections - introspectionsBefore;

const loadEnd = loadNow();
const med = (n: Name, f: (r: Run) => number) => median(runs[n].map(f));
const ratio = (n: Name) => med(n, (r) => r.rps) / med('off', (r) => r.rps);
const perRound = (n: Name) => runs[n].map((r, i) => r.rps / runs.off[i]!.rps);
// Throughput a CPU-bound deployment could expect, from server CPU per request (robust to machine load).
const cpuRatio = (n: Name) => med('off', (r) => r.cpu) / med(n, (r) => r.cpu);
const jwtRatio = ratio('jwt');
const inRatio = ratio('introspection');
const auditOk = audit.written >= audit.completed && audit.written <= audit.sent;

function report(): string {
  const line = (label: string, n: Name) =>
    `| ${label} | ${med(n, (r) => r.rps).toFixed(0)} | ${range(runs[n].map((r) => r.rps), (x) => x.toFixed(0))} | ${med(n, (r) => r.p50).toFixed(1)} | ${med(n, (r) => r.p99).toFixed(1)} | ${med(n, (r) => r.cpu).toFixed(0)} |`;
  const ratioLine = (label: string, n: Name, target?: number) =>
    `| ${label} | **${ratio(n).toFixed(3)}** | ${median(perRound(n)).toFixed(3)} (${range(perRound(n), (x) => x.toFixed(3))}) | ${cpuRatio(n).toFixed(3)} | ${target === undefined ? 'diagnostic' : `≥ ${target}: **${ratio(n) >= target ? 'met' : 'NOT met'}**`} |`;
  return `# Security benchmark

${header}

ITI-67 search throughput with **authentication, the policy and the audit trail on**, against the
same search with **authentication off (loopback) and no audit**, measured in the same run
(${RUNS} interleaved rounds, order rotated, medians). Targets: JWT ≥ 0.85, introspection (cached) ≥ 0.8.

- Endpoint: \`GET /fhir/DocumentReference?patient=<id>&_count=10\` (ITI-67; ${perPage} DocumentReferences per page, 40 manifests / 8 patients seeded through POST /fhir/Binary)
- JWT: RS256 access token from a real OpenID provider (oidc-provider on loopback, remote JWKS), radiologist role, scopes \`${scope}\`
- Introspection: an opaque token from the same provider, RFC 7662 introspection (client_secret_basic), answers cached by token hash (≤ 60 s, ≤ exp); ${introspectionCalls} introspection call(s) during the measured rounds
- Audit on in both: AuditEvents per the MHD / BALP profiles (one per patient: one per request here), queued and written in batches (multi-row INSERT, one transaction per batch)
- ${RUNS} rounds × ${DURATION} s per configuration, ${CONNECTIONS} connections. The apps and the provider run in one Node process, each app with its own DB pool of the production size (20), on one embedded PostgreSQL; the load generator (autocannon) runs in its own process, spawned per run
- Load average at start ${loadStart}, at the end ${loadEnd}. The machine has ${os.cpus().length} cores shared with other sessions (test suites, other benches): absolute figures move with that load, the same-run ratios much less

| Configuration | median req/s | range req/s | p50 ms (median) | p99 ms (median) | server CPU µs / request (median) |
|---|---:|---|---:|---:|---:|
${line('auth off, audit off', 'off')}
${line('JWT + policy + audit', 'jwt')}
${line('opaque token (introspection, cached) + policy + audit', 'introspection')}
${line('JWT + policy, audit off (diagnostic)', 'jwtNoAudit')}

| Ratio to auth off | medians (req/s) | per-round ratios: median (range) | server CPU per request, off / on | target (on the medians) |
|---|---:|---|---:|---|
${ratioLine('JWT + policy + audit', 'jwt', 0.85)}
${ratioLine('introspection (cached) + policy + audit', 'introspection', 0.8)}
${ratioLine('JWT + policy, audit off', 'jwtNoAudit')}

AuditEvents written during the measured "on" runs: ${audit.written}; requests completed inside the measuring windows ${audit.completed}, sent ${audit.sent} (${auditOk ? 'one per request: the difference is requests still in flight when a window closed' : 'MISMATCH'}).

Server CPU µs / request = CPU of the server process (apps + provider) plus the PostgreSQL backends of
the bench database (from /proc in 10 ms ticks), divided by the requests completed; the load
generator's CPU is not in it.
`;
}

const verdict = (r: number, t: number) => (r >= t ? 'met' : 'NOT met');
finishBench('results-auth.md', report(), {
  summary: [
    { issue: '17', measure: 'ITI-67 req/s, JWT + policy + audit ÷ auth off (bench:auth)', result: `${jwtRatio.toFixed(3)} (rounds ${range(perRound('jwt'), (x) => x.toFixed(2))}; load ${loadStart.split(' ')[0]})`, target: `≥ 0.85: ${verdict(jwtRatio, 0.85)}` },
    { issue: '17', measure: 'ITI-67 req/s, introspection (cached) + policy + audit ÷ auth off (bench:auth)', result: `${inRatio.toFixed(3)} (rounds ${range(perRound('introspection'), (x) => x.toFixed(2))})`, target: `≥ 0.8: ${verdict(inRatio, 0.8)}` },
  ],
  result: { 'auth.jwt/off': jwtRatio, 'auth.introspection/off': inRatio, 'auth.jwt-noaudit/off': ratio('jwtNoAudit') },
});

for (const n of NAMES) {
  await closeApp(apps[n]);
  listeners[n].server.close();
}
for (const p of pools) await p.destroy();
await idp.close();
await tdb.drop();
process.exit(jwtRatio >= 0.85 && inRatio >= 0.8 && auditOk ? 0 : 1);
