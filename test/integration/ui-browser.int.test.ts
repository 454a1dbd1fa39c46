/**
 * The web page in Debian's Chromium (playwright-core, headless) against a real gateway whose
 * manifests point at instances in a real Orthanc, no sign-in (loopback deployment):
 * deep link → the patient's manifests; superseded marked; source formats; every series thumbnail
 * decoded (naturalWidth > 0) through the gateway's WADO-RS; search by name / study; validation of
 * a broken KOS lists its errors; the page at tablet width; keyboard navigation. Screenshots of
 * each page go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { auditFor } from '../helpers/audit.js';
import { launchBrowser, type Browser, type WatchedPage } from '../helpers/browser.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { brokenKos, fixture, seedUiWorld, uploadFixtures, type UiWorld } from '../helpers/ui-world.js';

const started = await startOrthanc();
const launched = 'skip' in started ? undefined : await launchBrowser();
const skip = 'skip' in started ? started.skip : launched && 'skip' in launched ? launched.skip : false;
if (skip) console.log(`# SKIP ui-browser: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);
const browser = launched && !('skip' in launched) ? (launched as Browser) : undefined;

let t: TestApp;
let base: string;
let stop: () => void;
let world: UiWorld;

async function thumbnailsLoaded(page: WatchedPage): Promise<Array<{ series: string; width: number; source: string }>> {
  // Scroll each figure into view (thumbnails are lazy), then wait until every one has settled.
  const figures = page.locator('figure.series');
  const n = await figures.count();
  for (let i = 0; i < n; i++) await figures.nth(i).scrollIntoViewIfNeeded();
  await page.waitForFunction(() => [...document.querySelectorAll('figure.series')].every((f) => f.classList.contains('loaded') || f.classList.contains('unavailable')));
  return page.$$eval('figure.series', (fs) =>
    fs.map((f) => ({ series: f.querySelector('img')!.dataset.series ?? '', width: (f.querySelector('img') as HTMLImageElement).naturalWidth, source: (f as HTMLElement).dataset.source ?? f.querySelector('.placeholder')!.textContent! })),
  );
}

describe('web page (no sign-in)', { skip }, () => {
  before(async () => {
    await uploadFixtures(orthanc!);
    t = await createTestApp({ DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb });
    const l = await listenTestApp(t);
    base = l.base;
    stop = l.close;
    world = await seedUiWorld(t, orthanc!.dicomweb, base);
  });

  after(async () => {
    await browser?.close();
    stop?.();
    await t?.close();
    await orthanc?.stop();
  });

  it('/ redirects to /ui/; the page and its files are served and audited like any request', async () => {
    const r = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/ui/');
    const html = await fetch(`${base}/ui/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await html.text(), /<script type="module" src="app.js">/);
    const audited = await auditFor(t.tdb.db, html.headers.get('x-request-id')!);
    assert.equal(audited.outcome, '0');
    assert.equal(audited.action, 'R');
    const cfg = (await (await fetch(`${base}/ui/config.json`)).json()) as { auth: unknown };
    assert.equal(cfg.auth, null, 'no sign-in without auth');
  });

  it('deep link → the patient\'s manifests: superseded marked, KOS and FHIR sources, every series thumbnail loads through the gateway', async () => {
    const page = await browser!.newPage();
    const upstreamHits: string[] = [];
    const failed: string[] = [];
    page.on('response', (r) => {
      // a series /thumbnail the archive lacks is expected (the page falls back to /rendered)
      if (r.status() >= 400 && !/\/thumbnail$/.test(new URL(r.url()).pathname)) failed.push(`${r.status()} ${new URL(r.url()).pathname}`);
    });
    page.on('request', (req) => {
      if (/^https?:/.test(req.url()) && !req.url().startsWith(base)) upstreamHits.push(req.url());
    });
    await page.goto(`${base}/ui/?patient.identifier=${encodeURIComponent(world.identifierA)}`);
    await page.waitForSelector('tbody.manifest');
    await page.waitForFunction(() => [...document.querySelectorAll('td.source')].every((c) => c.textContent !== '…'));
    assert.equal(await page.textContent('#patient-name'), 'Jane Doe');
    const rows = await page.$$eval('tbody.manifest', (bs) =>
      bs.map((b) => ({ status: (b as HTMLElement).dataset.status, study: (b as HTMLElement).dataset.study, source: b.querySelector('td.source')!.textContent, counts: b.querySelector('td.counts')!.textContent, text: b.querySelector('tr.info')!.textContent })),
    );
    assert.equal(rows.length, 2, JSON.stringify(rows));
    const cur = rows.find((r) => r.status === 'current')!;
    const sup = rows.find((r) => r.status === 'superseded')!;
    assert.ok(cur && sup, JSON.stringify(rows));
    assert.equal(cur.study, fixture.study);
    assert.equal(cur.source, 'FHIR');
    assert.equal(sup.source, 'KOS');
    const referenced = fixture.instances.filter((i) => i.referenced);
    assert.equal(cur.counts, `${new Set(referenced.map((i) => i.series)).size} / ${referenced.length}`);
    assert.match(cur.text!, /Corrected manifest/);
    assert.match(cur.text!, new RegExp(fixture.accession));
    assert.match(sup.text!, /replaced by “Corrected manifest”/);
    const thumbs = await thumbnailsLoaded(page);
    assert.equal(thumbs.length, 4, 'two series in each of the two manifests');
    for (const th of thumbs) assert.ok(th.width > 0, `thumbnail of series ${th.series} did not load (${th.source})`);
    assert.deepEqual(upstreamHits, [], 'the page talks to the gateway only');
    assert.equal(new URL(page.url()).search, `?patient.identifier=${encodeURIComponent(world.identifierA)}`, 'no other patient data in the URL');
    assert.deepEqual(failed, []);
    assert.deepEqual(page.console.errors.filter((e) => !/^Failed to load resource/.test(e)), []);
    await browser!.screenshot(page, 'ui-patient');
    // the replacement link moves focus to the current manifest's row
    await page.click('button.replaced-by');
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.status), 'current');
    await page.close();
  });

  it('search by name and by study (accession); keyboard only', async () => {
    const page = await browser!.newPage();
    await page.goto(`${base}/ui/`);
    await page.waitForSelector('#search-term');
    await page.selectOption('#search-mode', 'name');
    await page.fill('#search-term', 'Doe');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#patients[data-term="Doe"]');
    assert.match((await page.textContent('#patients'))!, /Jane Doe/);
    assert.doesNotMatch((await page.textContent('#patients'))!, /PAT-UI-B/);
    await browser!.screenshot(page, 'ui-search');
    await page.selectOption('#search-mode', 'study');
    await page.fill('#search-term', fixture.study);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#patients[data-term="${fixture.study}"]`);
    assert.match((await page.textContent('#patients'))!, /Jane Doe/);
    assert.equal(await page.locator('#patients tbody tr').count(), 1, 'by Study Instance UID: its patient');
    await page.fill('#search-term', 'ACC-UI-B');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#patients[data-term="ACC-UI-B"]');
    assert.match((await page.textContent('#patients'))!, /PAT-UI-B/);
    // Tab to the patient's button and open it with Enter
    await page.focus('#patients button.link');
    await page.keyboard.press('Enter');
    await page.waitForSelector('tbody.manifest');
    assert.equal(new URL(page.url()).hash, '#/patient');
    assert.equal(new URL(page.url()).search, '', 'no patient data in the URL');
    // Orthanc does not hold patient B's study: placeholders, not broken images
    const thumbs = await thumbnailsLoaded(page);
    assert.ok(thumbs.length > 0);
    assert.ok(await page.$$eval('figure.series.unavailable .placeholder', (ps) => ps.every((p) => /No preview \(GW_/.test(p.textContent ?? ''))));
    await page.close();
  });

  it('validation of a broken KOS lists its errors (severity, element path, message)', async () => {
    const page = await browser!.newPage();
    await page.goto(`${base}/ui/#/validate`);
    await page.setInputFiles('#manifest-file', { name: 'broken.dcm', mimeType: 'application/dicom', buffer: brokenKos(orthanc!.dicomweb) });
    await page.waitForSelector('#issues');
    assert.match((await page.textContent('#verdict'))!, /^Invalid: \d+ error/);
    const issues = await page.$$eval('#issues tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    const errors = issues.filter((i) => i[0] === 'error');
    assert.ok(errors.some((i) => i[1] === '(0010,0020)' && i[3] === 'GW_KOS_NO_PATIENT_ID'), JSON.stringify(issues));
    assert.ok(errors.some((i) => /\(0008,1155\)$/.test(i[1] ?? '') && i[3] === 'GW_KOS_BAD_UID'), JSON.stringify(issues));
    await browser!.screenshot(page, 'ui-validate');
    const n = await t.tdb.db('manifest').count<{ count: string }[]>('* as count');
    assert.equal(Number(n[0]!.count), 3, 'validation stored nothing');
    await page.close();
  });

  it('keyboard: from where the view puts focus, Tab reaches the file picker and Space opens it', async () => {
    const page = await browser!.newPage();
    // Listen before anything can open a chooser: the listener switches on the browser's file chooser
    // interception, which must be in place when Space is pressed (waiting only then can miss it).
    const chooserOpened = page.waitForEvent('filechooser');
    chooserOpened.catch(() => undefined); // awaited below; an earlier failure must not leave it unhandled
    await page.goto(`${base}/ui/#/validate`);
    await page.waitForSelector('#manifest-file');
    let reached = false;
    for (let i = 0; i < 5 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'manifest-file');
    }
    assert.ok(reached, 'the file input is in the tab order');
    await page.keyboard.press('Space');
    const chooser = await chooserOpened;
    await chooser.setFiles({ name: 'broken.dcm', mimeType: 'application/dicom', buffer: brokenKos(orthanc!.dicomweb) });
    await page.waitForSelector('#issues');
    assert.match((await page.textContent('#verdict'))!, /^Invalid/);
    await page.close();
  });

  it('at tablet width the manifest list is usable (stacked, labelled cells)', async () => {
    const page = await browser!.newPage();
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.goto(`${base}/ui/?patient.identifier=${encodeURIComponent(world.identifierA)}`);
    await page.waitForSelector('tbody.manifest');
    await thumbnailsLoaded(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px at 768px`);
    await browser!.screenshot(page, 'ui-patient-tablet');
    await page.close();
  });
});
