/** CLI converters (contract "Command line"): kos2fhir, fhir2kos, validate — exit codes, stdout/stderr. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFhir2Kos, runKos2Fhir, runValidate, type CliIo } from '../../src/cli/convert.js';
import { readKos } from '../../src/dicom/index.js';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import { validateFhirResource } from '../../src/fhir/validate.js';
import { CTX, manifestRich } from '../fixtures/fhir/sample-manifests.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FX = path.join(ROOT, 'test/fixtures/fhir');
const KOS101 = path.join(FX, 'mado-kos-101.dcm');

function io(): CliIo & { out: string; err: string } {
  const o = { out: '', err: '', env: {} as Record<string, string | undefined>, stdout: (s: string) => void (o.out += s), stderr: (s: string) => void (o.err += s) };
  return o;
}
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'mado-cli-'));

test('kos2fhir prints a valid MADO document Bundle', async () => {
  const x = io();
  assert.equal(await runKos2Fhir([KOS101, '--base-url', 'https://gw.example.org'], x), 0);
  const b = JSON.parse(x.out);
  assert.equal(b.resourceType, 'Bundle');
  assert.equal(b.type, 'document');
  assert.equal(b.identifier.value, 'urn:oid:2.25.57007867845839123962305187603289084537');
  assert.deepEqual(validateFhirResource(b).filter((i) => i.severity === 'error'), []);
  // reader warnings (the IG example KOS is lenient-read, decisions.md D12) go to stderr, not stdout
  assert.match(x.err, /warning/);
  // same input → byte-identical output
  const y = io();
  await runKos2Fhir([KOS101, '--base-url', 'https://gw.example.org'], y);
  assert.equal(y.out, x.out);
});

test('kos2fhir usage and input errors', async () => {
  let x = io();
  assert.equal(await runKos2Fhir([], x), 2);
  assert.match(x.err, /missing FILE\.dcm[\s\S]*usage: mado-gateway kos2fhir/);
  x = io();
  assert.equal(await runKos2Fhir([KOS101, '--frobnicate'], x), 2);
  assert.match(x.err, /unknown option --frobnicate/);
  x = io();
  assert.equal(await runKos2Fhir([KOS101, '--base-url', 'ftp://x'], x), 2);
  x = io();
  assert.equal(await runKos2Fhir([path.join(FX, 'nope.dcm')], x), 1);
  assert.match(x.err, /nope\.dcm: no such file/);
  x = io();
  assert.equal(await runKos2Fhir([path.join(FX, 'seed-list.json')], x), 1);
  assert.match(x.err, /not a readable MADO manifest/);
  assert.equal(JSON.parse(x.out).resourceType, 'OperationOutcome');
  x = io();
  assert.equal(await runKos2Fhir([path.join(ROOT, 'test/fixtures/kos/rejection.dcm')], x), 1);
  assert.match(x.err, /rejection-note/);
});

test('fhir2kos writes a KOS with the same references (IG bundle 101)', async () => {
  const d = tmp();
  try {
    const out = path.join(d, 'out.dcm');
    const x = io();
    assert.equal(await runFhir2Kos([path.join(FX, 'mado-fhir-bundle-101.json'), '-o', out], x), 0);
    const r = readKos(new Uint8Array(readFileSync(out)));
    assert.equal(r.kind, 'manifest');
    assert.equal(r.manifest!.evidence[0]!.series.reduce((n, s) => n + s.instances.length, 0), 86);
    assert.match(x.err, /ACME/); // Q19 warning: not a UID, left out of the KOS
    assert.match(x.err, /not an OID/); // Q20 warning
    assert.equal(x.out, '');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('fhir2kos: incomplete legacy example → exit 1 naming each missing element; usage errors → 2', async () => {
  const d = tmp();
  try {
    let x = io();
    assert.equal(await runFhir2Kos([path.join(FX, 'legacy-list-incomplete.json'), '-o', path.join(d, 'x.dcm')], x), 1);
    assert.match(x.err, /Bundle\.entry\[1\]\.resource\.subject/);
    assert.match(x.err, /Bundle\.entry\[1\]\.resource\.series\[0\]\.instance/);
    assert.match(x.err, /Bundle\.entry\[1\]\.resource\.series\[0\]\.endpoint\[0\]/);
    x = io();
    assert.equal(await runFhir2Kos([path.join(FX, 'legacy-list-complete.json'), '-o', path.join(d, 'ok.dcm')], x), 0);
    x = io();
    assert.equal(await runFhir2Kos([path.join(FX, 'legacy-list-complete.json')], x), 2);
    assert.match(x.err, /missing -o/);
    writeFileSync(path.join(d, 'bad.json'), '{not json');
    x = io();
    assert.equal(await runFhir2Kos([path.join(d, 'bad.json'), '-o', path.join(d, 'y.dcm')], x), 1);
    assert.match(x.err, /not valid JSON/);
    x = io();
    assert.equal(await runFhir2Kos([path.join(FX, 'legacy-list-complete.json'), '-o', path.join(d, 'no/such/dir/z.dcm')], x), 3);
    assert.match(x.err, /cannot write/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('validate: KOS and FHIR auto-detected; OperationOutcome on stdout; exit 0 / 1', async () => {
  const d = tmp();
  try {
    let x = io();
    assert.equal(await runValidate([KOS101], x), 0); // lenient-read warnings only
    const oo = JSON.parse(x.out);
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.ok(oo.issue.every((i: { severity: string }) => i.severity !== 'error'));
    const good = path.join(d, 'good.json');
    writeFileSync(good, JSON.stringify(manifestToFhirBundle(manifestRich(), CTX)));
    x = io();
    assert.equal(await runValidate([good], x), 0);
    x = io();
    assert.equal(await runValidate([path.join(FX, 'legacy-list-incomplete.json')], x), 1);
    const exprs = JSON.parse(x.out).issue.flatMap((i: { expression?: string[] }) => i.expression ?? []);
    assert.ok(exprs.includes('Bundle.entry[1].resource.series[0].instance'));
    // the IG example: fullUrl "urn:Composition/…" is not an absolute URI (Q20)
    x = io();
    assert.equal(await runValidate([path.join(FX, 'mado-fhir-bundle-101.json')], x), 1);
    assert.ok(JSON.parse(x.out).issue.some((i: { expression?: string[] }) => i.expression?.[0] === 'Bundle.entry[0].fullUrl'));
    writeFileSync(path.join(d, 'junk.bin'), 'hello');
    x = io();
    assert.equal(await runValidate([path.join(d, 'junk.bin')], x), 1);
    x = io();
    assert.equal(await runValidate([], x), 2);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('runnable as a script: node --import tsx src/cli/convert.ts', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/convert.ts', 'kos2fhir', KOS101], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, GATEWAY_CONFIG: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).type, 'document');
  const u = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/convert.ts', 'bogus'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(u.status, 2);
  assert.match(u.stderr, /usage/);
});

test('kos2fhir refuses what validate refuses (exit 1 + the same OperationOutcome); --lenient converts with the errors as warnings', async () => {
  const INVALID = path.join(ROOT, 'test/fixtures/kos-invalid');
  // made by pydicom (scripts/fixtures/gen_kos_fixtures.py): each breaks one rule of the evidence
  const cases: Array<[string, string]> = [
    ['no-evidence.dcm', 'GW_KOS_NO_EVIDENCE'],
    ['empty-sop-sequence.dcm', 'GW_KOS_EMPTY_INSTANCE_LIST'],
    ['uid-letters.dcm', 'GW_KOS_BAD_UID'],
    ['uid-too-long.dcm', 'GW_KOS_BAD_UID'],
  ];
  for (const [file, code] of cases) {
    const f = path.join(INVALID, file);
    const v = io();
    assert.equal(await runValidate([f], v), 1, file);
    const k = io();
    assert.equal(await runKos2Fhir([f], k), 1, file);
    assert.equal(k.out, v.out, `${file}: kos2fhir prints the OperationOutcome validate prints`);
    const oo = JSON.parse(k.out);
    assert.ok(oo.issue.some((i: any) => i.severity === 'error' && JSON.stringify(i).includes(code)), `${file}: ${code}`);
    assert.match(k.err, /--lenient converts it anyway/);
    const l = io();
    assert.equal(await runKos2Fhir([f, '--lenient'], l), 0, file);
    assert.equal(JSON.parse(l.out).resourceType, 'Bundle');
    assert.match(l.err, new RegExp(`warning: .*\\(--lenient\\)`));
    assert.doesNotMatch(l.err, /^\s*error:/m);
  }
  // a valid manifest converts, and what FHIR cannot carry is listed
  const ok = io();
  assert.equal(await runKos2Fhir([path.join(ROOT, 'test/fixtures/kos/mado-base.dcm')], ok), 0);
  assert.match(ok.err, /Referenced Frame Number .* not carried over/);
});
