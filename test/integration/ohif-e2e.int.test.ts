/**
 * OHIF end to end: the OHIF viewer's published build (@ohif/app from the npm registry, served
 * from another origin) in Debian's Chromium, its DICOMweb data source pointed at the gateway,
 * instances in a real Orthanc, XDS-I.b manifests made by pydicom (no Image Library, so no modality
 * but the referenced SOP Classes; Retrieve AE Title + Location UID only) ingested.
 * The study list must show every study with patient name, date, modalities and instance count;
 * opening a study must load series metadata and frames through the gateway; no data-source
 * error in the page or the console. Once with authentication off, once signed in with a bearer
 * token from a real OpenID provider (CORS preflights with Authorization). Screenshots of each
 * page are kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IngestService } from '../../src/ingest/service.js';
import { launchBrowser, type Browser, type WatchedPage } from '../helpers/browser.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createAuthTestApp } from '../helpers/auth.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';
import { ohifAppConfig, ohifDist, serveOhif, type StaticServer } from '../helpers/ohif.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom-viewer');
interface ViewerStudy { study: string; series: string; modality: string; patientName: string; patientId: string; studyDate: string; accession: string; description: string; kos: string; instances: Array<{ file: string; sop: string; sopClass: string; number: number }> }
const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as { studies: ViewerStudy[] };

async function prerequisites(): Promise<{ orthanc: Orthanc; browser: Browser; dist: string } | { skip: string }> {
  const orthanc = await startOrthanc();
  if ('skip' in orthanc) return orthanc;
  const dist = await ohifDist();
  const browser = typeof dist === 'string' ? await launchBrowser({ viewport: { width: 1400, height: 900 }, loopbackOnly: true }) : dist;
  if (typeof dist !== 'string' || 'skip' in browser) {
    await orthanc.stop();
    return typeof dist !== 'string' ? dist : (browser as { skip: string });
  }
  return { orthanc, browser, dist };
}
const pre = await prerequisites();
const skip = 'skip' in pre ? pre.skip : false;
if (skip) console.log(`# SKIP ohif-e2e: ${skip}`);
const env = 'skip' in pre ? undefined : pre;

interface Seen { method: string; path: string; status: number; origin?: string; auth: boolean }

/** The gateway on a loopback port, every request it answered recorded. */
async function listenRecorded(t: TestApp): Promise<{ base: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url!; // express rewrites req.url while routing
    res.on('finish', () => seen.push({ method: req.method!, path: url, status: res.statusCode, origin: req.headers.origin, auth: !!req.headers.authorization }));
    t.app(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Requests the viewer tried beyond loopback (the browser resolves no other host, so they fail). */
function outsideLoopback(b: Browser): string[] {
  const outside: string[] = [];
  b.context.on('request', (r) => {
    const u = new URL(r.url());
    if (/^https?:$/.test(u.protocol) && u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') outside.push(u.origin);
  });
  return outside;
}

const DATA_SOURCE_ERROR = /data source|connection error|not available|failed to fetch|dicomweb|qido|wado/i;
/** What OHIF shows when its data source fails (study list) or a study cannot be loaded (viewer). */
const SHOWN_ERROR = /Data Source Connection Error|not available|Something went wrong/;

function assertNoDataSourceError(page: WatchedPage, text: string, where: string): void {
  assert.doesNotMatch(text, new RegExp(SHOWN_ERROR.source, 'i'), `${where}: page text`);
  const errors = page.console.errors.filter((e) => DATA_SOURCE_ERROR.test(e));
  assert.deepEqual(errors, [], `${where}: console errors from the data source`);
}

/** The study list: a row per study with name, date, modalities and instance count. */
async function checkStudyList(page: WatchedPage, browser: Browser, ohif: string, shot: string): Promise<void> {
  await page.goto(`${ohif}/`, { waitUntil: 'domcontentloaded' });
  // every study listed, or the viewer's error page: whichever comes first
  const names = fx.studies.map((s) => s.patientName.replace('^', ', '));
  await page
    .waitForFunction(([n, e]) => n.every((x) => document.body.innerText.includes(x)) || new RegExp(e, 'i').test(document.body.innerText), [names, SHOWN_ERROR.source] as const, { timeout: 120_000 })
    .catch(() => undefined);
  const text = await page.locator('body').innerText();
  await browser.screenshot(page, shot);
  assertNoDataSourceError(page, text, 'study list');
  for (const s of fx.studies) {
    const row = page.locator('tr, [role=row], [data-cy^=study-list-results] > *', { hasText: s.accession }).first();
    const rowText = (await row.innerText()).replace(/\s+/g, ' ');
    const [family, given] = s.patientName.split('^');
    assert.match(rowText, new RegExp(`${family}.*${given}`), `patient name in ${rowText}`);
    const d = s.studyDate;
    const date = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00`);
    const mon = date.toLocaleDateString('en-US', { month: 'short' });
    const shown = [`${d.slice(6, 8)}-${mon}-${d.slice(0, 4)}`, date.toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric' }), `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`];
    assert.ok(shown.some((x) => rowText.includes(x)), `study date (${shown.join(' | ')}) in ${rowText}`);
    assert.match(rowText, new RegExp(`\\b${s.modality}\\b`), `modality in ${rowText}`);
    assert.match(rowText, new RegExp(`\\b${s.instances.length}\\b`), `instance count in ${rowText}`);
  }
}

/** Open a study: series metadata and at least one frame through the gateway, an image on screen. */
async function checkViewer(page: WatchedPage, browser: Browser, ohif: string, s: ViewerStudy, seen: Seen[], shot: string, token?: string): Promise<void> {
  const before = seen.length;
  await page.goto(`${ohif}/viewer?StudyInstanceUIDs=${s.study}${token ? `&token=${token}` : ''}`, { waitUntil: 'domcontentloaded' });
  const frames = () => seen.slice(before).filter((r) => r.method === 'GET' && /\/frames\/\d/.test(r.path) && r.status === 200);
  const deadline = Date.now() + 120_000;
  while (frames().length === 0 && Date.now() < deadline && !SHOWN_ERROR.test(await page.locator('body').innerText())) await page.waitForTimeout(250);
  await page.waitForTimeout(1500); // let the viewport paint before the screenshot
  const skipTour = page.getByText('Skip all', { exact: true });
  if (await skipTour.isVisible()) await skipTour.click(); // the first-visit tour would cover the image
  await browser.screenshot(page, shot);
  const mine = seen.slice(before);
  assert.ok(mine.some((r) => r.path.includes(`/studies/${s.study}/series/${s.series}/metadata`) && r.status === 200), `series metadata through the gateway: ${JSON.stringify(mine.map((r) => `${r.status} ${r.path}`))}`);
  assert.ok(frames().length > 0, 'at least one frame request reached the gateway');
  // Orthanc has no thumbnail resource: the gateway answers with a rendered instance
  assert.ok(mine.some((r) => /\/thumbnail(\?|$)/.test(r.path) && r.status === 200), `thumbnail through the gateway: ${JSON.stringify(mine.map((r) => `${r.status} ${r.path}`))}`);
  assert.deepEqual(mine.filter((r) => r.status >= 400), [], 'no gateway request failed');
  assertNoDataSourceError(page, await page.locator('body').innerText(), 'viewer');
}

describe('OHIF viewer end to end through the gateway', { skip }, () => {
  let t: TestApp;
  let gw: Awaited<ReturnType<typeof listenRecorded>>;
  let ohif: StaticServer;
  let blocked: string[];

  before(async () => {
    for (const s of fx.studies) for (const i of s.instances) await env!.orthanc.upload(fs.readFileSync(path.join(FIX, i.file)));
    blocked = outsideLoopback(env!.browser);
  });

  after(async () => {
    await env?.browser.close();
    await env?.orthanc.stop();
  });

  describe('authentication off', () => {
    before(async () => {
      t = await createTestApp({ DICOMWEB_UPSTREAM_URL: env!.orthanc.dicomweb });
      const svc = new IngestService({ db: t.tdb.db, config: t.config });
      for (const s of fx.studies) assert.equal((await svc.submitKos(fs.readFileSync(path.join(FIX, s.kos)))).kind, 'manifest');
      gw = await listenRecorded(t);
      ohif = await serveOhif(env!.dist, ohifAppConfig({ dicomweb: `${gw.base}/dicomweb` }));
    });

    after(async () => {
      await ohif?.close();
      await gw?.close();
      await t?.close();
    });

    it('the study list shows every study with patient name, date, modalities and instance count', async () => {
      const page = await env!.browser.newPage();
      await checkStudyList(page, env!.browser, ohif.url, 'ohif-study-list');
      assert.ok(gw.seen.some((r) => r.path.startsWith('/dicomweb/studies?') && r.status === 200 && r.origin === ohif.url), 'QIDO-RS from the viewer origin');
      await page.close();
    });

    it('opening a study loads series metadata and frames through the gateway', async () => {
      const page = await env!.browser.newPage();
      await checkViewer(page, env!.browser, ohif.url, fx.studies[0]!, gw.seen, 'ohif-viewer-ct');
      await page.close();
      assert.deepEqual([...new Set(blocked)], [], 'no request left loopback');
    });
  });

  describe('bearer token: signed in through OpenID Connect (authorization code + PKCE)', () => {
    let idp: TestIdp;

    before(async () => {
      idp = await startOidcProvider({ users: [{ sub: 'dr-ohif', claims: { roles: ['radiologist'] } }] });
      t = await createAuthTestApp({ auth: { jwt: idp.jwtConfig() } }, { DICOMWEB_UPSTREAM_URL: env!.orthanc.dicomweb });
      const svc = new IngestService({ db: t.tdb.db, config: t.config });
      for (const s of fx.studies) assert.equal((await svc.submitKos(fs.readFileSync(path.join(FIX, s.kos)))).kind, 'manifest');
      gw = await listenRecorded(t);
      const oidc = { authority: idp.issuer, client_id: 'ohif', redirect_uri: '/callback', response_type: 'code', scope: 'openid user/*.rs RAD-107', post_logout_redirect_uri: '/', loadUserInfo: false, automaticSilentRenew: false, revokeAccessTokenOnSignout: false };
      ohif = await serveOhif(env!.dist, ohifAppConfig({ dicomweb: `${gw.base}/dicomweb`, oidc }));
      idp.registerClient({ client_id: 'ohif', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [`${ohif.url}/callback`], post_logout_redirect_uris: [`${ohif.url}/`] });
    });

    after(async () => {
      await ohif?.close();
      await gw?.close();
      await t?.close();
      await idp?.close();
    });

    it('without a token the gateway refuses the viewer\'s requests (401, with CORS headers)', async () => {
      const r = await fetch(`${gw.base}/dicomweb/studies`, { headers: { origin: ohif.url, accept: 'application/dicom+json' } });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('access-control-allow-origin'), '*');
    });

    it('signs in at the provider, then the study list and the viewer work with the bearer token', async () => {
      const page = await env!.browser.newPage();
      const from = gw.seen.length;
      await page.goto(`${ohif.url}/`, { waitUntil: 'domcontentloaded' });
      await page.waitForURL((u) => u.href.startsWith(idp.issuer), { timeout: 120_000 });
      await page.locator('input[name=login]').fill('dr-ohif');
      await page.locator('input[name=password]').fill('any');
      await page.locator('button[type=submit]').click();
      await page.waitForURL((u) => u.href.startsWith(ohif.url), { timeout: 120_000 });
      await checkStudyList(page, env!.browser, ohif.url, 'ohif-study-list-bearer');
      await checkViewer(page, env!.browser, ohif.url, fx.studies[1]!, gw.seen, 'ohif-viewer-mr-bearer');
      await page.close();
      const dicomweb = gw.seen.slice(from).filter((r) => r.method === 'GET' && r.path.startsWith('/dicomweb/'));
      assert.ok(dicomweb.length > 0);
      assert.deepEqual(dicomweb.filter((r) => !r.auth || r.status >= 400), [], 'every DICOMweb request carried the token and succeeded');
      assert.ok(gw.seen.some((r) => r.method === 'OPTIONS' && r.status === 204 && r.origin === ohif.url), `CORS preflight (Authorization is not a safelisted header) answered ${JSON.stringify(gw.seen.filter((r) => r.method !== 'GET'))}`);
    });
  });
});
