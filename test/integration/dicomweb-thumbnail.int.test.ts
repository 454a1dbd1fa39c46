/**
 * Thumbnails from an upstream without a thumbnail resource (404): the gateway answers with the
 * rendering of the middle image instance (by Series Instance UID, then Instance Number; objects
 * that are not images skipped), or of the instance / frames asked for. A fake upstream records what was asked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { seedManifest, testUid } from '../helpers/dicomweb-seed.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const SR = '1.2.840.10008.5.1.4.1.1.88.22';
let t: TestApp;
let fake: FakeUpstream;
const study = testUid();
const se = [testUid(), testUid()];
const sop = Array.from({ length: 6 }, () => testUid());

before(async () => {
  fake = await startFakeUpstream((req, res) => {
    if (req.url!.includes('/thumbnail')) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(`jpeg of ${req.url}`);
  });
  t = await createTestApp({ DICOMWEB_UPSTREAM_URL: fake.url });
  await seedManifest(t.tdb.db, {
    study,
    series: [
      // an SR first in the series: it is not an image and is never picked
      { uid: se[0]!, modality: 'CT', number: 1, instances: [{ sop: sop[0]!, sopClass: SR, number: 1 }, { sop: sop[3]!, sopClass: CT, number: 4 }, { sop: sop[1]!, sopClass: CT, number: 2 }, { sop: sop[2]!, sopClass: CT, number: 3 }] },
      { uid: se[1]!, modality: 'CT', number: 2, instances: [{ sop: sop[4]!, sopClass: CT, number: 1 }, { sop: sop[5]!, sopClass: CT, number: 2, frames: 3 }] },
    ],
  });
});

after(async () => {
  await t.close();
  await fake.close();
});

async function thumb(path: string, accept = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8') {
  const before = fake.requests.length;
  const r = await request(t.app).get(`/dicomweb${path}`).set('Accept', accept);
  return { r, asked: fake.requests.slice(before).map((q) => `${q.url} ${q.headers.accept}`) };
}

describe('thumbnail from an upstream without thumbnails', () => {
  it('series: the middle image instance by Instance Number, rendered as JPEG', async () => {
    const { r, asked } = await thumb(`/studies/${study}/series/${se[0]}/thumbnail?viewport=64,64`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'image/jpeg');
    assert.deepEqual(asked, [
      `/dicom-web/studies/${study}/series/${se[0]}/thumbnail?viewport=64%2C64 image/jpeg`,
      `/dicom-web/studies/${study}/series/${se[0]}/instances/${sop[2]}/rendered?viewport=64%2C64 image/jpeg`,
    ]);
  });

  it('study: the middle image of all its series; instance and frames: their own rendering', async () => {
    // images by Series Instance UID, then Instance Number: the middle (third) of five
    const images = [[se[0]!, 2, sop[1]!], [se[0]!, 3, sop[2]!], [se[0]!, 4, sop[3]!], [se[1]!, 1, sop[4]!], [se[1]!, 2, sop[5]!]] as const;
    const [mse, , msop] = [...images].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]))[2]!;
    assert.match((await thumb(`/studies/${study}/thumbnail`)).asked[1]!, new RegExp(`/series/${mse}/instances/${msop}/rendered `));
    assert.match((await thumb(`/studies/${study}/series/${se[0]}/instances/${sop[0]}/thumbnail`)).asked[1]!, new RegExp(`/instances/${sop[0]}/rendered `));
    assert.match((await thumb(`/studies/${study}/series/${se[1]}/instances/${sop[5]}/frames/2/thumbnail`)).asked[1]!, new RegExp(`/instances/${sop[5]}/frames/2/rendered `));
  });

  it('nothing acceptable is 406 before the upstream is asked', async () => {
    const { r, asked } = await thumb(`/studies/${study}/series/${se[0]}/thumbnail`, 'application/pdf');
    assert.equal(r.status, 406);
    assert.deepEqual(asked, []);
  });
});
