/**
 * Content creator against a real Orthanc: instances made by pydicom (CT ×2 series, a multi-frame
 * MR, US; a second study without Issuer of Patient ID) are stored in Orthanc, then published by
 * POST /fhir/ImagingStudy/$publish and by the CLI. The stored KOS is checked with dciodvfy and read
 * back with pydicom against Orthanc's instance list; ITI-67 finds it; WADO-RS through the gateway
 * serves every instance; re-publishing is a no-op; one more instance supersedes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { auditFor } from '../helpers/audit.js';
import { validateR4 } from '../../src/fhir/validate.js';
import { testUid } from '../helpers/dicomweb-seed.js';
import { makeInstances, PYTHON, pydicomUnavailable, type InstanceSpec } from '../helpers/instances.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const CI = process.env.CI === 'true';
const ROOT = path.resolve(import.meta.dirname, '../..');
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const noPy = pydicomUnavailable();
if (noPy && CI) throw new Error(`CI=true and ${noPy}`);
if (!have('dciodvfy') && CI) throw new Error('CI=true and dciodvfy missing');
const started = noPy ? { skip: noPy } : await startOrthanc();
const skip = 'skip' in started ? started.skip : !have('dciodvfy') ? 'dciodvfy not installed' : false;
if (skip) console.log(`# SKIP publish: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);

/** dciodvfy errors tolerated for MADO CP-2595 content (as in test/unit/kos-write.test.ts). */
const TOLERATED = [
  /^Error - Unrecognized enumerated value <(NUM|DATE|TIME)> for value 1 of attribute <Value Type>$/,
  /^Error - Attribute with an even group number is not a recognized standard attribute - \(0x0040,0xe012\)/,
];

const A = testUid();
const B = testUid();
const seriesA = [testUid(), testUid(), testUid(), testUid()];
const seriesB = testUid();
const patientA = { patientId: 'PUB-001', issuer: 'HOSP-A', issuerUid: '1.2.826.0.1.3680043.10.543.1' };
function specsA(): InstanceSpec[] {
  const s: InstanceSpec[] = [];
  const add = (series: number, modality: string, n: number, extra: Partial<InstanceSpec> = {}) => {
    for (let k = 1; k <= n; k++) s.push({ modality, study: A, series: seriesA[series]!, sop: testUid(), seriesNumber: series + 1, instanceNumber: k, ...patientA, bodyPart: 'CHEST', ...extra });
  };
  add(0, 'CT', 3);
  add(1, 'CT', 2); // a second series with the same Modality
  add(2, 'MR', 1, { frames: 4, bodyPart: 'HEAD' });
  add(3, 'US', 1, { bodyPart: 'ABDOMEN' });
  return s;
}
const specsB: InstanceSpec[] = [1, 2].map((k) => ({ modality: 'OT', study: B, series: seriesB, sop: testUid(), seriesNumber: 1, instanceNumber: k, patientId: 'PUB-002' }));

let t: TestApp;
let gw: string;
let stop: () => void;
let tmp: string;

async function publish(study: string, upstream?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const parameter = [{ name: 'study', valueString: study }, ...(upstream ? [{ name: 'upstream', valueString: upstream }] : [])];
  const r = await fetch(`${gw}/fhir/ImagingStudy/$publish`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });
  return { status: r.status, body: await r.json(), headers: r.headers };
}

const docRefsOf = (body: any): string[] => body.parameter.filter((p: any) => p.name === 'documentReference').map((p: any) => p.valueReference.reference.split('/')[1]);
const local = (u: string) => u.replace('http://gateway.test', gw);

async function kosOf(docRefId: string): Promise<Buffer> {
  const dr = (await (await fetch(`${gw}/fhir/DocumentReference/${docRefId}`)).json()) as any;
  const r = await fetch(local(dr.content[0].attachment.url), { headers: { accept: 'application/dicom' } });
  assert.equal(r.status, 200);
  return Buffer.from(await r.arrayBuffer());
}

async function orthancSops(study: string): Promise<string[]> {
  const list = (await (await fetch(`${orthanc!.dicomweb}/studies/${study}/instances`, { headers: { accept: 'application/dicom+json' } })).json()) as any[];
  return list.map((i) => i['00080018'].Value[0]).sort();
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('content creator ($publish) against Orthanc', { skip }, () => {
  let first: any;
  before(async () => {
    for (const b of [...makeInstances(specsA()), ...makeInstances(specsB)]) await orthanc!.upload(b);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-'));
    const cfg = path.join(tmp, 'gateway.json');
    fs.writeFileSync(cfg, JSON.stringify({
      upstreams: [
        { name: 'pacs', url: orthanc!.dicomweb, patientIdIssuer: { localNamespace: 'HOSP-B', universalEntityId: '1.2.826.0.1.3680043.10.543.2' } },
        { name: 'bare', url: orthanc!.dicomweb },
      ],
      publish: { institutionName: 'Publish Test Hospital^^^^^^^^^1.2.826.0.1.3680043.10.543' },
    }));
    t = await createTestApp({ GATEWAY_CONFIG: cfg });
    const l = await listenTestApp(t);
    gw = l.base;
    stop = l.close;
  });
  after(async () => {
    stop?.();
    await t?.close();
    await orthanc?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('publishes a study over HTTP: 201 with the DocumentReferences', async () => {
    const r = await publish(A, 'pacs');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.resourceType, 'Parameters');
    assert.equal(r.body.parameter.find((p: any) => p.name === 'outcome').valueCode, 'created');
    assert.equal(r.body.parameter.find((p: any) => p.name === 'instances').valueInteger, 7);
    assert.equal(docRefsOf(r.body).length, 2);
    assert.deepEqual(validateR4(r.body).filter((i) => i.severity === 'error'), []);
    first = r.body;
  });

  it('the stored KOS passes dciodvfy and references exactly Orthanc\'s instances (pydicom)', async () => {
    const kos = await kosOf(docRefsOf(first)[0]!);
    const file = path.join(tmp, 'a.dcm');
    fs.writeFileSync(file, kos);
    const v = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
    const errors = `${v.stdout}\n${v.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('Error') && !TOLERATED.some((re) => re.test(l)));
    assert.deepEqual(errors, []);
    const py = spawnSync(PYTHON, ['-c', `import pydicom,sys
ds = pydicom.dcmread(sys.argv[1])
for st in ds.CurrentRequestedProcedureEvidenceSequence:
    for se in st.ReferencedSeriesSequence:
        for i in se.ReferencedSOPSequence: print(i.ReferencedSOPInstanceUID)
print('PID', ds.PatientID, ds.IssuerOfPatientID, ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID)
print('URL', ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].RetrieveURL)`, file], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const lines = py.stdout.trim().split('\n');
    assert.deepEqual(lines.filter((l) => !/^(PID|URL) /.test(l)).sort(), await orthancSops(A));
    assert.ok(lines.includes(`PID PUB-001 HOSP-A ${patientA.issuerUid}`), py.stdout);
    assert.ok(lines.includes('URL http://gateway.test/dicomweb'), py.stdout);
  });

  it('ITI-67 finds it by study-instance-uid and patient.identifier', async () => {
    const ids = docRefsOf(first);
    for (const q of [`study-instance-uid=${A}`, `patient.identifier=${encodeURIComponent(`urn:oid:${patientA.issuerUid}|PUB-001`)}`]) {
      const b = (await (await fetch(`${gw}/fhir/DocumentReference?${q}`)).json()) as any;
      const found = (b.entry ?? []).map((e: any) => e.resource.id);
      for (const id of ids) assert.ok(found.includes(id), `${q}: ${found}`);
    }
  });

  it('WADO-RS through the gateway serves every instance', async () => {
    for (const s of specsA().length ? await orthancInstances(A) : []) {
      const r = await fetch(`${gw}/dicomweb/studies/${A}/series/${s.series}/instances/${s.sop}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
      assert.equal(r.status, 200, `${s.sop}`);
      const body = Buffer.from(await r.arrayBuffer());
      assert.ok(body.includes(Buffer.from(s.sop)), 'the part carries the instance');
    }
  });

  it('re-publishing an unchanged study is a no-op (200, same DocumentReferences)', async () => {
    const r = await publish(A, 'pacs');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-publish-result'), 'unchanged');
    assert.deepEqual(docRefsOf(r.body), docRefsOf(first));
    const n = await t.tdb.db.raw('select count(*)::int as n from manifest where study_instance_uid = ?', [A]);
    assert.equal(n.rows[0].n, 1);
  });

  it('a study without Issuer of Patient ID is refused without a configured issuer, published with one', async () => {
    const refused = await publish(B, 'bare');
    assert.equal(refused.status, 422);
    assert.equal(refused.body.issue[0].details.coding[0].code, 'GW_PUBLISH_NO_PATIENT_ISSUER');
    const ok = await publish(B, 'pacs');
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const b = (await (await fetch(`${gw}/fhir/DocumentReference?patient.identifier=${encodeURIComponent('urn:oid:1.2.826.0.1.3680043.10.543.2|PUB-002')}`)).json()) as any;
    assert.ok((b.entry ?? []).length >= 1);
  });

  it('an unknown study is a 404', async () => {
    const r = await publish(testUid(), 'pacs');
    assert.equal(r.status, 404);
  });

  it('one more instance in Orthanc: re-publishing supersedes', async () => {
    const [extra] = makeInstances([{ modality: 'CT', study: A, series: seriesA[0]!, sop: testUid(), seriesNumber: 1, instanceNumber: 4, ...patientA, bodyPart: 'CHEST' }]);
    await orthanc!.upload(extra!);
    const r = await publish(A, 'pacs');
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('x-publish-result'), 'replaced');
    const [oldKos] = docRefsOf(first);
    const [newKos] = docRefsOf(r.body);
    const old = (await (await fetch(`${gw}/fhir/DocumentReference/${oldKos}`)).json()) as any;
    const neu = (await (await fetch(`${gw}/fhir/DocumentReference/${newKos}`)).json()) as any;
    assert.equal(old.status, 'superseded');
    assert.equal(neu.status, 'current');
    assert.ok(neu.relatesTo.some((x: any) => x.code === 'replaces' && x.target.reference.endsWith(`DocumentReference/${oldKos}`)), JSON.stringify(neu.relatesTo));
    assert.equal(r.body.parameter.find((p: any) => p.name === 'instances').valueInteger, 8);
  });

  it('CLI: publish --study (unchanged), --all with a refusal (exit 1), usage (exit 2), unreachable (exit 3)', async () => {
    const one = await runCli(['publish', '--url', gw, '--upstream', 'pacs', '--study', A, B]);
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(one.stdout, /0 created, 0 replaced, 2 unchanged, 0 refused, 0 failed \(of 2\)/);
    const all = await runCli(['publish', '--url', gw, '--upstream', 'bare', '--all', '--concurrency', '2']);
    assert.equal(all.code, 1, all.stdout + all.stderr);
    assert.match(all.stdout, /1 refused/);
    assert.match(all.stdout, new RegExp(`${B}: 422 GW_PUBLISH_NO_PATIENT_ISSUER`));
    assert.equal((await runCli(['publish', '--url', gw])).code, 2);
    assert.equal((await runCli(['publish', '--url', 'http://127.0.0.1:9', '--study', A])).code, 3);
  });

  it('is audited as an Import (DCM 110107) with the study and patient', async () => {
    const r = await publish(A, 'pacs');
    const e = await auditFor(t.tdb.db, r.headers.get('x-request-id')!);
    assert.equal(e.type_code, '110107');
    assert.equal(e.action, 'C');
    assert.ok(e.entity_refs.includes(`study:${A}`), JSON.stringify(e.entity_refs));
    assert.ok(e.patient_ref, 'patient recorded');
  });
});

async function orthancInstances(study: string): Promise<Array<{ series: string; sop: string }>> {
  const list = (await (await fetch(`${orthanc!.dicomweb}/studies/${study}/instances`, { headers: { accept: 'application/dicom+json' } })).json()) as any[];
  return list.map((i) => ({ series: i['0020000E'].Value[0], sop: i['00080018'].Value[0] }));
}
