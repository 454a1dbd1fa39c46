import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { fhirManifest, kos, multipart } from './ingest-fixtures.js';

let small: TestApp;
before(async () => {
  small = await createTestApp({ MAX_BODY_BYTES: '20000', MAX_REFERENCES: '5' });
});
after(async () => small.close());

describe('limits', () => {
  
  test('body over maxBodyBytes → 413 (Binary, Bundle, STOW, ITI-65)', async () => {
    const big = kos('lim-1', { series: 3, perSeries: 100 });
    assert.ok(big.bytes.length > 20000);
    const r = await request(small.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(big.bytes);
    assert.equal(r.status, 413);
    const mp = multipart([{ body: big.bytes }]);
    const s = await request(small.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body);
    assert.equal(s.status, 413);
    assert.equal(s.body.code, 'GW_BODY_TOO_LARGE');
  });

  test('more references than maxReferences → 422 with a clear message (KOS, FHIR, STOW)', async () => {
    const k = kos('lim-2', { series: 2, perSeries: 3 });
    const r = await request(small.app).post('/fhir/Binary').set('Content-Type', 'application/dicom').send(k.bytes).expect(422);
    assert.equal(r.body.issue[0].details.coding[0].code, 'GW_TOO_MANY_REFERENCES');
    assert.match(r.body.issue[0].details.text, /at most 5/);
    const f = fhirManifest('lim-3', { series: 2, perSeries: 3 });
    const r2 = await request(small.app).post('/fhir/Bundle').set('Content-Type', 'application/fhir+json').send(f.json).expect(422);
    assert.equal(r2.body.issue[0].details.coding[0].code, 'GW_TOO_MANY_REFERENCES');
    const mp = multipart([{ body: k.bytes }]);
    const s = await request(small.app).post('/dicomweb/studies').set('Content-Type', mp.contentType).send(mp.body).expect(409);
    assert.equal(s.body['00081198'].Value[0]['00081197'].Value[0], 0xa700);
  });
});

