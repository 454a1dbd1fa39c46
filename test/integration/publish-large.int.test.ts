/**
 * A large study (5,000 instances in one series, a pydicom template re-stamped with new UIDs) in a
 * real Orthanc is published in one go: its series metadata (≈ 5,000 documents) streams through
 * the builder one document at a time, and the KOS references every instance.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readKos } from '../../src/dicom/index.js';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { fixedUid, makeInstances, pydicomUnavailable, restamp } from '../helpers/instances.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const CI = process.env.CI === 'true';
const noPy = pydicomUnavailable();
if (noPy && CI) throw new Error(`CI=true and ${noPy}`);
const started = noPy ? { skip: noPy } : await startOrthanc();
const skip = 'skip' in started ? started.skip : false;
if (skip) console.log(`# SKIP publish-large: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);

const N = 5000;
const ROOT = `1.2.826.0.1.3680043.10.543.88.${process.pid}`;
const uid = (kind: number, n: number) => fixedUid(`${ROOT}.${kind}`, n, 56);

let t: TestApp;
let gw: string;
let stop: () => void;

describe('publishing a 5,000-instance study', { skip, timeout: 600_000 }, () => {
  before(async () => {
    const [tpl] = makeInstances([{ modality: 'CT', study: uid(1, 0), series: uid(2, 0), sop: uid(3, 0), seriesNumber: 1, instanceNumber: 1, patientId: 'BIG-1', issuer: 'HOSP', issuerUid: '1.2.826.0.1.3680043.10.543.1' }]);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N) {
        const k = next++;
        await orthanc!.upload(restamp(tpl!, [[uid(1, 0), uid(1, 1)], [uid(2, 0), uid(2, 1)], [uid(3, 0), uid(3, k + 1)]]));
      }
    }));
    t = await createTestApp({ DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb });
    const l = await listenTestApp(t);
    gw = l.base;
    stop = l.close;
  });
  after(async () => {
    stop?.();
    await t?.close();
    await orthanc?.stop();
  });

  it('201, every instance referenced in the KOS', async (ctx) => {
    const r = await fetch(`${gw}/fhir/ImagingStudy/$publish`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'study', valueString: uid(1, 1) }] }) });
    const body = (await r.json()) as any;
    assert.equal(r.status, 201, JSON.stringify(body));
    assert.equal(body.parameter.find((p: any) => p.name === 'instances').valueInteger, N);
    const kos = (await t.tdb.db.raw('select content from manifest where study_instance_uid = ?', [uid(1, 1)])).rows[0].content as Buffer;
    const m = readKos(kos).manifest!;
    const sops = new Set(m.evidence[0]!.series[0]!.instances.map((i) => i.sopInstanceUid));
    assert.equal(sops.size, N);
    for (let k = 1; k <= N; k++) assert.ok(sops.has(uid(3, k)));
    ctx.diagnostic(`KOS ${kos.length} bytes for ${N} instances`);
  });
});
