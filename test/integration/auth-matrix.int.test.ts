/**
 * Authorisation matrix: roles × endpoints × own/foreign patient, every cell
 * asserted. "Own" = the patient in the caller's launch context / care relationship; "foreign" =
 * another patient. A foreign resource is a 404 (reads) or absent with total 0 (searches), never a
 * 403; type-level refusals are 403; anonymous is 401. A cell whose route is not mounted fails
 * (a removed route must not silently drop its security cells).
 *
 * WADO-RS cells run against a fake archive on port 0 (Part 10 parts for the manifests' instances):
 * "visible" there means the policy and the imaging index let the request through and it was served.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { closeApp } from '../../src/app.js';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import type { Manifest } from '../../src/model/manifest.js';
import { auditEvents, waitForAudit } from '../helpers/audit.js';
import { fhirManifest, kos as kosFixture, multipart, provideBundle } from './ingest-fixtures.js';
import { createAuthTestApp, fakeArchive, jwtConfig, makeKeys, mint, type Keys } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';

// ---------------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------------

let t: TestApp;
let keys: Keys;
let upstream: http.Server;
let upstreamUrl: string;
let notified: string[] = [];
let notifyServer: http.Server;

interface Side {
  manifest: Manifest;
  patientId: string;
  identifier: string; // system|value
  docRefIds: string[];
  binaryIds: string[];
  bundleIds: string[];
  imagingStudyIds: string[];
  study: string;
  series: string;
  sop: string;
}
const side: Record<'own' | 'foreign', Side> = {} as never;

async function startServer(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const tokens: Record<string, string | undefined> = {};
/** X-Request-Id of every request this file made (each must have exactly one AuditEvent) */
const seen = new Set<string>();
const track = (res: request.Response) => {
  seen.add(res.headers['x-request-id']!);
  return res;
};

before(async () => {
  keys = await makeKeys('m1');
  ({ server: upstream, url: upstreamUrl } = await startServer(fakeArchive(() => [side.own?.manifest, side.foreign?.manifest])));
  ({ server: notifyServer } = await startServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      notified.push(body);
      res.writeHead(204).end();
    });
  }));
  const notifyUrl = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/break-glass`;
  t = await createAuthTestApp(
    { auth: { jwt: jwtConfig([keys.publicJwk]), breakGlass: { purposeOfUseClaim: 'purpose_of_use', value: 'BTG', notifyUrl } } },
    { DICOMWEB_UPSTREAM_URL: `${upstreamUrl}/dicom-web` },
  );

  tokens.technologist = await mint({ sub: 'tech', roles: ['technologist'], scope: 'user/*.cruds RAD-107' }, { keys });
  // Seed two manifests for two patients through the real ingest route (itself a matrix cell).
  for (const [k, seed] of [['own', 'matrix-own'], ['foreign', 'matrix-foreign']] as const) {
    const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed });
    const res = track(await request(t.app).post('/fhir/Binary').set('Authorization', `Bearer ${tokens.technologist}`).set('Content-Type', 'application/dicom').send(Buffer.from(writeKos(m))));
    assert.ok(res.status === 200 || res.status === 201, `seed ${k}: ${res.status} ${res.text.slice(0, 300)}`);
    const idRow = (await t.tdb.db('patient_identifier').where({ value: m.patient.id!.value }).first()) as { patient_id: string; system: string };
    side[k] = {
      manifest: m,
      patientId: idRow.patient_id,
      identifier: `${idRow.system}|${m.patient.id!.value}`,
      docRefIds: [],
      binaryIds: [],
      bundleIds: [],
      imagingStudyIds: [],
      study: m.study.studyInstanceUid,
      series: m.evidence[0]!.series[0]!.uid,
      sop: m.evidence[0]!.series[0]!.instances[0]!.sopInstanceUid,
    };
  }
  const ownId = side.own.patientId;
  const [ownSystem, ownValue] = [side.own.identifier.slice(0, side.own.identifier.indexOf('|')), side.own.identifier.slice(side.own.identifier.indexOf('|') + 1)];
  tokens.radiologist = await mint({ sub: 'rad', roles: ['radiologist'], scope: 'user/*.rs RAD-107' }, { keys });
  tokens['referring (care relationship)'] = await mint({ sub: 'ref1', roles: ['referring'], scope: 'user/*.rs RAD-107', care_patients: [`${ownSystem}|${ownValue}`] }, { keys });
  tokens['referring (launch context)'] = await mint({ sub: 'ref2', roles: ['referring'], scope: 'user/*.rs RAD-107', patient: ownId }, { keys });
  tokens.administrator = await mint({ sub: 'admin', roles: ['administrator'], scope: 'user/*.rs' }, { keys });
  tokens['patient app (patient/*.rs)'] = await mint({ sub: 'pat', scope: 'patient/*.rs launch/patient', patient: ownId }, { keys });
  tokens['system client'] = await mint({ sub: 'svc', client_id: 'svc', scope: 'system/*.rs RAD-107' }, { keys });
  tokens['referring + break-glass'] = await mint({ sub: 'ref3', roles: ['referring'], scope: 'user/*.rs RAD-107', purpose_of_use: ['BTG'] }, { keys });
  tokens.anonymous = undefined;

  // Learn the ids of each side's resources (as a radiologist, who sees both).
  for (const k of ['own', 'foreign'] as const) {
    const s = side[k];
    const dr = track(await request(t.app).get(`/fhir/DocumentReference?patient=${s.patientId}`).set('Authorization', `Bearer ${tokens.radiologist}`));
    if (dr.status === 200) {
      for (const e of dr.body.entry ?? []) {
        s.docRefIds.push(e.resource.id);
        for (const c of e.resource.content ?? []) {
          const m = /\/(Binary|Bundle)\/([^/?]+)$/.exec(c.attachment?.url ?? '');
          if (m?.[1] === 'Binary') s.binaryIds.push(m[2]!);
          if (m?.[1] === 'Bundle') s.bundleIds.push(m[2]!);
        }
      }
    }
    const is = track(await request(t.app).get(`/fhir/ImagingStudy?patient=${s.patientId}`).set('Authorization', `Bearer ${tokens.radiologist}`));
    if (is.status === 200) for (const e of is.body.entry ?? []) s.imagingStudyIds.push(e.resource.id);
  }
});

after(async () => {
  await closeApp(t.app);
  await t.close();
  upstream.closeAllConnections();
  upstream.close();
  notifyServer.close();
});

// ---------------------------------------------------------------------------------------------
// the table
// ---------------------------------------------------------------------------------------------

type Expect = 'visible' | 'hidden' | 'forbidden' | 'unauthenticated';

interface Role {
  name: string;
  own: Expect;
  foreign: Expect;
  audit: Expect; // AuditEvent search
  breakGlass?: boolean;
}

const ROLES: Role[] = [
  { name: 'radiologist', own: 'visible', foreign: 'visible', audit: 'forbidden' },
  { name: 'referring (care relationship)', own: 'visible', foreign: 'hidden', audit: 'forbidden' },
  { name: 'referring (launch context)', own: 'visible', foreign: 'hidden', audit: 'forbidden' },
  { name: 'technologist', own: 'visible', foreign: 'visible', audit: 'forbidden' },
  { name: 'administrator', own: 'forbidden', foreign: 'forbidden', audit: 'visible' },
  { name: 'patient app (patient/*.rs)', own: 'visible', foreign: 'hidden', audit: 'forbidden' },
  { name: 'system client', own: 'visible', foreign: 'visible', audit: 'forbidden' },
  { name: 'referring + break-glass', own: 'visible', foreign: 'visible', audit: 'forbidden', breakGlass: true },
  { name: 'anonymous', own: 'unauthenticated', foreign: 'unauthenticated', audit: 'unauthenticated' },
];

interface Endpoint {
  name: string;
  kind: 'read' | 'search' | 'wado';
  /** path for a side; undefined = no such resource was produced (reported) */
  path: (s: Side) => string | undefined;
  /** for searches: the resources a response shows */
  shown?: (res: request.Response) => { count: number; total?: number };
}

const fhirShown = (res: request.Response) => ({ count: (res.body.entry ?? []).filter((e: { search?: { mode?: string } }) => e.search?.mode !== 'include').length, total: res.body.total });
const qidoShown = (res: request.Response) => ({ count: res.status === 204 ? 0 : Array.isArray(res.body) ? res.body.length : 0 });

const ENDPOINTS: Endpoint[] = [
  { name: 'FHIR DocumentReference search (ITI-67, patient=)', kind: 'search', path: (s) => `/fhir/DocumentReference?patient=${s.patientId}&_total=accurate`, shown: fhirShown },
  { name: 'FHIR DocumentReference search (patient.identifier=)', kind: 'search', path: (s) => `/fhir/DocumentReference?patient.identifier=${encodeURIComponent(s.identifier)}&_total=accurate`, shown: fhirShown },
  { name: 'FHIR DocumentReference search by study-instance-uid', kind: 'search', path: (s) => `/fhir/DocumentReference?study-instance-uid=${s.study}&_total=accurate`, shown: fhirShown },
  { name: 'FHIR DocumentReference read', kind: 'read', path: (s) => s.docRefIds[0] && `/fhir/DocumentReference/${s.docRefIds[0]}` },
  { name: 'FHIR Binary read (ITI-68)', kind: 'read', path: (s) => s.binaryIds[0] && `/fhir/Binary/${s.binaryIds[0]}` },
  { name: 'FHIR Bundle read (ITI-68, FHIR form)', kind: 'read', path: (s) => s.bundleIds[0] && `/fhir/Bundle/${s.bundleIds[0]}` },
  { name: 'FHIR ImagingStudy search', kind: 'search', path: (s) => `/fhir/ImagingStudy?patient=${s.patientId}&_total=accurate`, shown: fhirShown },
  { name: 'FHIR ImagingStudy read', kind: 'read', path: (s) => s.imagingStudyIds[0] && `/fhir/ImagingStudy/${s.imagingStudyIds[0]}` },
  { name: 'FHIR Patient read', kind: 'read', path: (s) => `/fhir/Patient/${s.patientId}` },
  { name: 'WADO-RS instance', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/instances/${s.sop}` },
  { name: 'WADO-RS series', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}` },
  { name: 'WADO-RS series metadata', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/metadata` },
  { name: 'WADO-RS study', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}` },
  { name: 'WADO-RS study metadata', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/metadata` },
  { name: 'WADO-RS instance metadata', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/instances/${s.sop}/metadata` },
  { name: 'WADO-RS frames', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/instances/${s.sop}/frames/1` },
  { name: 'WADO-RS series thumbnail', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/thumbnail` },
  { name: 'WADO-RS instance rendered', kind: 'wado', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/instances/${s.sop}/rendered` },
  { name: 'QIDO-RS studies by StudyInstanceUID', kind: 'search', path: (s) => `/dicomweb/studies?StudyInstanceUID=${s.study}`, shown: qidoShown },
  { name: 'QIDO-RS series of a study', kind: 'search', path: (s) => `/dicomweb/studies/${s.study}/series`, shown: qidoShown },
  { name: 'QIDO-RS instances of a series', kind: 'search', path: (s) => `/dicomweb/studies/${s.study}/series/${s.series}/instances`, shown: qidoShown },
  { name: 'QIDO-RS studies by PatientID', kind: 'search', path: (s) => `/dicomweb/studies?PatientID=${encodeURIComponent(s.manifest.patient.id!.value)}`, shown: qidoShown },
];

function notMounted(res: request.Response): string | undefined {
  const code = res.body?.code ?? res.body?.issue?.[0]?.details?.coding?.[0]?.code;
  if (res.status === 404 && (code === 'GW_UNKNOWN_RESOURCE_TYPE' || (code === 'GW_DICOMWEB_NOT_FOUND' && res.body?.message === 'Unknown DICOMweb resource'))) return 'route not mounted';
  if (res.status === 405 && code === 'GW_METHOD_NOT_ALLOWED') return 'interaction not mounted';
  return undefined;
}

async function call(role: string, path: string, accept?: string): Promise<request.Response> {
  const r = request(t.app).get(path);
  if (tokens[role]) r.set('Authorization', `Bearer ${tokens[role]}`);
  if (accept) r.set('Accept', accept);
  return track(await r);
}

function assertCell(res: request.Response, expect: Expect, ep: Endpoint, label: string) {
  const msg = `${label}: HTTP ${res.status} ${res.text?.slice(0, 200)}`;
  switch (expect) {
    case 'unauthenticated':
      assert.equal(res.status, 401, msg);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer realm=/, msg);
      return;
    case 'forbidden':
      assert.equal(res.status, 403, msg);
      return;
    case 'hidden':
      if (ep.kind === 'search') {
        assert.ok(res.status === 200 || res.status === 204, msg);
        const { count, total } = ep.shown!(res);
        assert.equal(count, 0, `${msg} (foreign data shown)`);
        if (ep.path(side.own)?.includes('_total=accurate')) assert.equal(total, 0, `${msg} (foreign data counted in total)`);
      } else {
        assert.equal(res.status, 404, `${msg} (foreign resource must be 404, never 403)`);
      }
      return;
    case 'visible':
      if (ep.kind === 'search') {
        assert.equal(res.status, 200, msg);
        const { count, total } = ep.shown!(res);
        assert.ok(count > 0, `${msg} (nothing shown)`);
        if (ep.path(side.own)?.includes('_total=accurate')) assert.equal(total, count, `${msg} (total)`);
      } else if (ep.kind === 'wado') {
        // let through to the (fake) archive and served
        assert.equal(res.status, 200, `${msg} (not let through)`);
      } else {
        assert.equal(res.status, 200, msg);
      }
  }
}

for (const ep of ENDPOINTS) {
  describe(ep.name, () => {
    for (const role of ROLES) {
      for (const which of ['own', 'foreign'] as const) {
        test(`${role.name} × ${which} patient → ${role[which]}`, async () => {
          const path = ep.path(side[which]);
          assert.ok(path, `no ${ep.name.split(' ').slice(1, 2).join('')} resource was produced for the ${which} manifest`);
          const res = await call(role.name, path);
          assert.equal(notMounted(res), undefined, `${ep.name}: HTTP ${res.status}`);
          assertCell(res, role[which], ep, `${role.name} × ${which} × ${ep.name}`);
        });
      }
    }
  });
}

describe('AuditEvent search (administrators only)', () => {
  for (const role of ROLES) {
    test(`${role.name} → ${role.audit}`, async () => {
      const res = await call(role.name, `/fhir/AuditEvent?patient=${side.own.patientId}&_count=5`);
      if (role.audit === 'visible') {
        assert.equal(res.status, 200);
        assert.equal(res.body.resourceType, 'Bundle');
      } else assertCell(res, role.audit, { name: 'AuditEvent', kind: 'read', path: () => '' }, role.name);
    });
  }
});

describe('path spelling cannot dodge the policy', () => {
  // Express matches mount paths case-insensitively; trailing and doubled slashes are tolerated.
  for (const p of ['/FHIR/AuditEvent', '/Fhir/AuditEvent/', '/fhir//AuditEvent', '/fhir/AuditEvent/']) {
    test(`radiologist GET ${p} → 403`, async () => {
      const res = await call('radiologist', p);
      assert.equal(res.status, 403, res.text.slice(0, 200));
    });
  }
  test('referring GET /FHIR/DocumentReference/{foreign} → 404', async () => {
    const res = await call('referring (launch context)', `/FHIR/DocumentReference/${side.foreign.docRefIds[0]}`);
    assert.equal(res.status, 404);
  });
  test('referring GET /DICOMWEB/studies/{foreign} → 404', async () => {
    const res = await call('referring (launch context)', `/DICOMWEB/studies/${side.foreign.study}/series/${side.foreign.series}`);
    assert.equal(res.status, 404);
  });
});

describe('searches without a patient: totals never count foreign data', () => {
  for (const role of ROLES.filter((r) => r.own === 'visible' && r.foreign === 'hidden')) {
    test(`${role.name}: DocumentReference?_count=100 shows own documents only`, async () => {
      const res = await call(role.name, '/fhir/DocumentReference?_count=100&_total=accurate');
      assert.equal(notMounted(res), undefined);
      assert.equal(res.status, 200, res.text.slice(0, 200));
      const ids = (res.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id);
      for (const id of side.foreign.docRefIds) assert.ok(!ids.includes(id), 'foreign DocumentReference shown');
      assert.equal(res.body.total, ids.length, 'total counts own documents only');
    });
    test(`${role.name}: QIDO /studies shows own studies only`, async () => {
      const res = await call(role.name, '/dicomweb/studies');
      assert.equal(notMounted(res), undefined);
      assert.ok(res.status === 200 || res.status === 204);
      const uids = (Array.isArray(res.body) ? res.body : []).map((d: Record<string, { Value?: string[] }>) => d['0020000D']?.Value?.[0]);
      assert.ok(uids.includes(side.own.study), 'own study listed');
      assert.ok(!uids.includes(side.foreign.study), 'foreign study never listed');
    });
  }
});

describe('writes (ITI-65 transaction, POST Binary, POST Bundle, STOW-RS, PATCH status)', () => {
  let n = 0;
  const seed = () => `w-${process.pid}-${n++}`;
  const WRITES: Array<{ name: string; send: (r: (m: 'post' | 'patch', p: string) => request.Test) => Promise<request.Response> }> = [
    { name: 'POST /fhir (ITI-65 transaction)', send: (r) => r('post', '/fhir').set('Content-Type', 'application/fhir+json').send(JSON.stringify(provideBundle([{ kos: kosFixture(seed()) }]))) },
    { name: 'POST /fhir/Binary (KOS)', send: (r) => r('post', '/fhir/Binary').set('Content-Type', 'application/dicom').send(kosFixture(seed()).bytes) },
    { name: 'POST /fhir/Bundle (FHIR manifest)', send: (r) => r('post', '/fhir/Bundle').set('Content-Type', 'application/fhir+json').send(fhirManifest(seed()).json) },
    {
      name: 'POST /dicomweb/studies (STOW-RS)',
      send: (r) => {
        const mp = multipart([{ body: kosFixture(seed()).bytes }]);
        return r('post', '/dicomweb/studies').set('Content-Type', mp.contentType).set('Accept', 'application/dicom+json').send(mp.body);
      },
    },
    {
      name: 'PATCH /fhir/DocumentReference/{id} (status)',
      send: (r) => r('patch', `/fhir/DocumentReference/${side.own.docRefIds[0]}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/status', value: 'current' }])),
    },
  ];
  for (const w of WRITES) {
    for (const role of ROLES) {
      const allowed = role.name === 'technologist';
      const expect = allowed ? 'allowed' : role.own === 'unauthenticated' ? '401' : '403';
      test(`${w.name} × ${role.name} → ${expect}`, async () => {
        const res = track(
          await w.send((m, p) => {
            const r = request(t.app)[m](p);
            if (tokens[role.name]) r.set('Authorization', `Bearer ${tokens[role.name]}`);
            return r;
          }),
        );
        assert.equal(notMounted(res), undefined, `${w.name}: HTTP ${res.status}`);
        const msg = `HTTP ${res.status} ${res.text?.slice(0, 200)}`;
        if (!allowed) assert.equal(res.status, role.own === 'unauthenticated' ? 401 : 403, msg);
        else if (w.name.startsWith('PATCH')) {
          // status current → current: nothing changes, the unchanged DocumentReference comes back
          assert.equal(res.status, 200, msg);
          assert.equal(res.body.resourceType, 'DocumentReference', msg);
          assert.equal(res.body.status, 'current', msg);
        }
        else assert.ok(res.status >= 200 && res.status < 300, msg);
      });
    }
  }
});

describe('audit of the matrix', () => {
  test('break-glass reads are flagged and notified', async () => {
    const res = await call('referring + break-glass', `/fhir/DocumentReference?patient=${side.foreign.patientId}`);
    assert.equal(res.status, 200);
    const deadline = Date.now() + 5000;
    let ev;
    while (Date.now() < deadline) {
      ev = (await auditEvents(t.tdb.db)).find((e) => JSON.stringify(e.resource).includes(res.headers['x-request-id']!));
      if (ev && notified.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(ev, `AuditEvent written (${(await auditEvents(t.tdb.db)).length} events; ${t.logs.filter((l) => /audit/.test(l)).slice(0, 3).join(' ')})`);
    assert.equal(ev!.break_glass, true);
    assert.equal(ev!.resource.purposeOfEvent?.[0]?.coding?.[0]?.code, 'BTG');
    assert.ok(notified.length > 0, 'notification hook called');
    const n = JSON.parse(notified[notified.length - 1]!);
    assert.equal(n.event, 'break-glass');
    assert.equal(n.subject, 'ref3');
    assert.doesNotMatch(notified.join(''), new RegExp(side.foreign.patientId), 'notice carries no patient id');
  });

  test('every request of the matrix produced exactly one AuditEvent', async () => {
    const rows = await waitForAudit(t.tdb.db, seen.size);
    const perRequest = new Map<string, number>();
    for (const r of rows) {
      const rid = r.resource.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value;
      if (rid) perRequest.set(rid, (perRequest.get(rid) ?? 0) + 1);
    }
    for (const rid of seen) assert.equal(perRequest.get(rid), 1, `request ${rid}`);
    assert.equal(rows.length, seen.size, 'no AuditEvent without a request');
  });
});
