/**
 * POST /fhir/$validate: the ingest rules on a KOS or a FHIR manifest, nothing stored; the verdict
 * in the OperationOutcome (each error with its element path and code); who may call it; audited.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { writeKos } from '../../src/dicom/index.js';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import { mappingContext } from '../../src/ingest/service.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { waitForAudit } from '../helpers/audit.js';
import { createAuthTestApp, jwtConfig, makeKeys, mint, type Keys } from '../helpers/auth.js';
import { makeManifest } from '../helpers/query-data.js';
import { brokenKos } from '../helpers/ui-world.js';

type Issue = { severity: string; expression?: string[]; details?: { coding?: Array<{ code: string }>; text?: string } };
const codes = (issues: Issue[]) => issues.map((i) => i.details?.coding?.[0]?.code);
const manifestCount = async (t: TestApp) => Number((await t.tdb.db('manifest').count<{ count: string }[]>('* as count'))[0]!.count);

describe('POST /fhir/$validate', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(async () => t?.close());

  it('a valid KOS: 200, valid, nothing stored', async () => {
    const r = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/dicom').send(Buffer.from(writeKos(makeManifest({ seed: 'v-ok' })))).expect(200);
    assert.equal(r.headers['x-validation-result'], 'valid');
    assert.equal(r.body.resourceType, 'OperationOutcome');
    assert.equal(r.body.issue[0].details.coding[0].code, 'GW_VALID');
    assert.ok(!r.body.issue.some((i: Issue) => i.severity === 'error'));
    assert.equal(await manifestCount(t), 0);
  });

  it('a broken KOS: 200, invalid, the refusal ingest would give and each error with its path', async () => {
    const bytes = brokenKos('http://pacs.test/dicom-web');
    const r = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/dicom').send(bytes).expect(200);
    assert.equal(r.headers['x-validation-result'], 'invalid');
    const issues = r.body.issue as Issue[];
    assert.deepEqual(codes(issues).slice(0, 1), ['GW_MANIFEST_INVALID']);
    assert.ok(issues.some((i) => i.details?.coding?.[0]?.code === 'GW_KOS_NO_PATIENT_ID' && i.expression?.[0] === '(0010,0020)'), JSON.stringify(issues));
    assert.ok(issues.some((i) => i.details?.coding?.[0]?.code === 'GW_KOS_BAD_UID' && /\(0008,1155\)$/.test(i.expression?.[0] ?? '')), JSON.stringify(issues));
    // the same bytes through ingest are refused with the same code
    const ingest = await request(t.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(bytes).expect(422);
    assert.equal(ingest.body.issue[0].details.coding[0].code, 'GW_MANIFEST_INVALID');
    assert.equal(await manifestCount(t), 0);
  });

  it('a FHIR manifest (JSON), a Binary wrapping a KOS, and unreadable content', async () => {
    const bundle = manifestToFhirBundle(makeManifest({ seed: 'v-fhir' }), mappingContext(t.config));
    const ok = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/fhir+json').send(JSON.stringify(bundle)).expect(200);
    assert.equal(ok.headers['x-validation-result'], 'valid', JSON.stringify(ok.body));
    const wrapped = { resourceType: 'Binary', contentType: 'application/dicom', data: Buffer.from(writeKos(makeManifest({ seed: 'v-bin' }))).toString('base64') };
    const bin = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/fhir+json').send(JSON.stringify(wrapped)).expect(200);
    assert.equal(bin.headers['x-validation-result'], 'valid');
    const bad = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/fhir+json').send('{"resourceType":"Bundle","type":"document"}').expect(200);
    assert.equal(bad.headers['x-validation-result'], 'invalid');
    const junk = await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/dicom').send(Buffer.from('not dicom at all')).expect(200);
    assert.equal(junk.headers['x-validation-result'], 'invalid');
    assert.match(junk.body.issue[0].details.coding[0].code, /^GW_/);
    assert.equal(await manifestCount(t), 0);
  });

  it('request-level problems stay 4xx: 415 for another media type', async () => {
    const r = await request(t.app).post('/fhir/$validate').set('Content-Type', 'text/plain').send('x').expect(415);
    assert.equal(r.body.issue[0].details.coding[0].code, 'GW_UNSUPPORTED_MEDIA_TYPE');
  });

  it('the CapabilityStatement lists the operation', async () => {
    const r = await request(t.app).get('/fhir/metadata').expect(200);
    assert.ok(r.body.rest[0].operation.some((o: { name: string }) => o.name === 'validate'));
  });
});

describe('POST /fhir/$validate with authentication', () => {
  let t: TestApp;
  let keys: Keys;
  before(async () => {
    keys = await makeKeys();
    t = await createAuthTestApp({ auth: { jwt: jwtConfig([keys.publicJwk]) } });
  });
  after(async () => t?.close());

  it('any deployment role with a manifest-reading scope may validate; no token is 401; audited as an operation', async () => {
    const kos = Buffer.from(writeKos(makeManifest({ seed: 'v-auth' })));
    await request(t.app).post('/fhir/$validate').set('Content-Type', 'application/dicom').send(kos).expect(401);
    for (const role of ['radiologist', 'referring', 'technologist', 'administrator']) {
      const token = await mint({ sub: `u-${role}`, roles: [role], scope: 'user/DocumentReference.rs' }, { keys });
      const r = await request(t.app).post('/fhir/$validate').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/dicom').send(kos);
      assert.equal(r.status, 200, `${role}: ${JSON.stringify(r.body)}`);
    }
    const noScope = await mint({ sub: 'u-noscope', roles: ['radiologist'], scope: 'user/Patient.rs' }, { keys });
    await request(t.app).post('/fhir/$validate').set('Authorization', `Bearer ${noScope}`).set('Content-Type', 'application/dicom').send(kos).expect(403);
    const rows = await waitForAudit(t.tdb.db, 6);
    const ops = rows.filter((r) => r.subtype_code === 'operation' && r.outcome === '0');
    assert.deepEqual(ops.map((r) => r.agent_who).sort(), ['u-administrator', 'u-radiologist', 'u-referring', 'u-technologist']);
    assert.ok(ops.every((r) => r.action === 'E'));
    assert.equal(await manifestCount(t), 0);
  });
});
