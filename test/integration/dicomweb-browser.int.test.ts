/**
 * Rendered and thumbnail resources in a real browser: a page on another origin shows them with
 * `<img>`, so Chromium sends its own image Accept header (`image/avif,…,image/*,*∕*;q=0.8`) and
 * applies its cross-origin read blocking. Instances live in a real Orthanc, whose DICOMweb plugin
 * has no thumbnail resource (404): the gateway answers thumbnails with a rendered instance.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { IngestService } from '../../src/ingest/service.js';
import { launchBrowser, type Browser } from '../helpers/browser.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom');
interface FixtureInstance { file: string; series: string; seriesNumber: number; modality: string; sop: string; sopClass: string; number: number; frames: number; referenced: boolean }
const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as { study: string; patientId: string; issuer: string; instances: FixtureInstance[] };
const referenced = fx.instances.filter((i) => i.referenced);

const started = await startOrthanc();
const browserStarted = 'skip' in started ? started : await launchBrowser();
const skip = 'skip' in started ? started.skip : 'skip' in browserStarted ? browserStarted.skip : false;
if (skip) console.log(`# SKIP dicomweb-browser: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);
const browser = 'skip' in browserStarted ? undefined : (browserStarted as Browser);

let t: TestApp;
let gwServer: http.Server;
let pageServer: http.Server;
let gw: string;
let pageBase: string;
const seenAccept: string[] = [];

function manifest() {
  const m = syntheticManifest({ series: 1, instancesPerSeries: 1, seed: 'dicomweb-browser' });
  m.patient = { ...m.patient, id: { value: fx.patientId, issuer: { localNamespace: fx.issuer } } };
  m.study = { ...m.study, studyInstanceUid: fx.study };
  const series = [...new Set(referenced.map((i) => i.series))];
  m.evidence = [{
    studyInstanceUid: fx.study,
    series: series.map((se) => {
      const inst = referenced.filter((i) => i.series === se);
      return {
        uid: se,
        modality: inst[0]!.modality,
        retrieveUrl: `${orthanc!.dicomweb}/studies/${fx.study}/series/${se}`,
        numberOfInstances: inst.length,
        instances: inst.map((i) => ({ sopClassUid: i.sopClass, sopInstanceUid: i.sop, number: i.number, numberOfFrames: i.frames > 1 ? i.frames : undefined })),
      };
    }),
  }];
  return m;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('rendered and thumbnail in Chromium <img>', { skip }, () => {
  before(async () => {
    for (const i of fx.instances) await orthanc!.upload(fs.readFileSync(path.join(FIX, i.file)));
    t = await createTestApp({ DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb });
    const r = await new IngestService({ db: t.tdb.db, config: t.config }).submitKos(writeKos(manifest()));
    assert.equal(r.kind, 'manifest');
    gwServer = http.createServer((req, res) => {
      if (/\/(rendered|thumbnail)$/.test(req.url ?? '')) seenAccept.push(String(req.headers.accept));
      t.app(req, res);
    });
    gw = (await listen(gwServer)) + '/dicomweb';
    // the page comes from another origin, as a viewer's page would
    pageServer = http.createServer((req, res) => {
      const srcs = JSON.parse(decodeURIComponent(new URL(req.url!, 'http://x').searchParams.get('imgs') ?? '[]')) as string[];
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><body>${srcs.map((s, i) => `<img id="i${i}" src="${s}" style="width:120px;image-rendering:pixelated;margin:4px">`).join('')}</body>`);
    });
    pageBase = await listen(pageServer);
  });

  after(async () => {
    await browser?.close();
    pageServer?.close();
    gwServer?.closeAllConnections();
    await new Promise((r) => gwServer?.close(r));
    await t?.close();
    await orthanc?.stop();
  });

  it('instance, series, study and frame rendered/thumbnail all display (JPEG for the browser\'s wildcard Accept)', async () => {
    const i = referenced[0]!;
    const mf = referenced.find((x) => x.frames > 1)!;
    const paths = [
      `/studies/${fx.study}/series/${i.series}/instances/${i.sop}`,
      `/studies/${fx.study}/series/${mf.series}/instances/${mf.sop}/frames/2`,
      `/studies/${fx.study}/series/${i.series}`,
    ];
    const srcs = paths.flatMap((p) => ['rendered', 'thumbnail'].map((w) => `${gw}${p}/${w}`));
    const page = await browser!.newPage();
    const responses = new Map<string, { status: number; type: string }>();
    page.on('response', (r) => responses.set(r.url(), { status: r.status(), type: r.headers()['content-type'] ?? '' }));
    await page.goto(`${pageBase}/?imgs=${encodeURIComponent(JSON.stringify(srcs))}`, { waitUntil: 'load' });
    const widths = await page.evaluate(() => [...document.images].map((im) => im.naturalWidth));
    await browser!.screenshot(page, 'rendered-thumbnail-img');
    for (const [k, src] of srcs.entries()) {
      assert.deepEqual(responses.get(src), { status: 200, type: 'image/jpeg' }, src);
      assert.ok(widths[k]! > 0, `${src} displayed`);
    }
    assert.ok(seenAccept.length >= srcs.length);
    assert.ok(seenAccept.every((a) => a.includes('image/*') && a.includes('*/*')), seenAccept.join(' | '));
    assert.deepEqual(page.console.errors, []);
    await page.close();
  });

  it('Orthanc has no thumbnail resource; the gateway\'s thumbnail is the rendered middle instance', async () => {
    const i = referenced[0]!;
    const direct = await fetch(`${orthanc!.dicomweb}/studies/${fx.study}/series/${i.series}/instances/${i.sop}/thumbnail`, { headers: { accept: 'image/jpeg' } });
    assert.equal(direct.status, 404);
    const inSeries = referenced.filter((x) => x.series === i.series).sort((a, b) => a.number - b.number);
    const middle = inSeries[Math.floor((inSeries.length - 1) / 2)]!;
    const viaThumb = await fetch(`${gw}/studies/${fx.study}/series/${i.series}/thumbnail`, { headers: { accept: 'image/jpeg' } });
    const rendered = await fetch(`${orthanc!.dicomweb}/studies/${fx.study}/series/${i.series}/instances/${middle.sop}/rendered`, { headers: { accept: 'image/jpeg' } });
    assert.equal(viaThumb.status, 200);
    assert.ok(Buffer.from(await viaThumb.arrayBuffer()).equals(Buffer.from(await rendered.arrayBuffer())));
    // nothing acceptable is still 406, before any upstream request
    assert.equal((await fetch(`${gw}/studies/${fx.study}/series/${i.series}/thumbnail`, { headers: { accept: 'application/pdf' } })).status, 406);
  });
});
