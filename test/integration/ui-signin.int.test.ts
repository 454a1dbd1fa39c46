/**
 * The web page with JWT authentication on: sign-in through a real OpenID provider run by the test
 * (oidc-provider on loopback, authorization code + PKCE, discovery), Debian Chromium driving the
 * page, manifests pointing at instances in a real Orthanc.
 *  - a radiologist's deep link → sign-in → the patient's list, thumbnails through the gateway;
 *  - the page's requests are ordinary API requests: each is in the audit trail with the user;
 *  - an administrator's audit page shows those requests; other roles are refused (GW_FORBIDDEN);
 *  - a referring physician sees only the patients of their care relationship;
 *  - an expired token → "sign in again", never a blank page.
 * Screenshots of each page go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { listenTestApp, type TestApp } from '../helpers/app.js';
import { auditEvents } from '../helpers/audit.js';
import { createAuthTestApp } from '../helpers/auth.js';
import { launchBrowser, type Browser } from '../helpers/browser.js';
import { startOidcProvider, type TestIdp } from '../helpers/oidc.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { fixture, seedUiWorld, uploadFixtures, type UiWorld } from '../helpers/ui-world.js';

const started = await startOrthanc();
const launched = 'skip' in started ? undefined : await launchBrowser();
const skip = 'skip' in started ? started.skip : launched && 'skip' in launched ? launched.skip : false;
if (skip) console.log(`# SKIP ui-signin: ${skip}`);
const orthanc = 'skip' in started ? undefined : (started as Orthanc);
const browser = launched && !('skip' in launched) ? (launched as Browser) : undefined;
const VIEWER = 'http://viewer.test/viewer?StudyInstanceUIDs={study}';

let t: TestApp;
let idp: TestIdp;
let base: string;
let stop: () => void;
let world: UiWorld;

/** Open `path`, sign in as `sub` on the provider's login form, and wait to be back on the page. */
async function signInAs(page: Page, path: string, sub: string): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.waitForSelector('#sign-in');
  await browser!.screenshot(page, 'ui-signin');
  await page.click('#sign-in');
  await page.waitForURL((u) => u.origin === idp.issuer);
  await page.fill('input[name="login"]', sub);
  await page.fill('input[name="password"]', 'any');
  await browser!.screenshot(page, 'ui-signin-provider');
  await Promise.all([page.waitForURL((u) => u.origin === base && !u.searchParams.has('code')), page.click('button[type="submit"]')]);
  await page.waitForSelector('#user-name');
  assert.equal(await page.textContent('#user-name'), sub);
}

async function signOutEverywhere(): Promise<void> {
  // A new user: forget the provider's session cookie (the page itself keeps nothing).
  await browser!.context.clearCookies();
}

describe('web page with sign-in (OpenID provider, JWT)', { skip }, () => {
  before(async () => {
    await uploadFixtures(orthanc!);
    idp = await startOidcProvider({
      users: [
        { sub: 'dr-rad', claims: { roles: ['radiologist'] } },
        { sub: 'admin-1', claims: { roles: ['administrator'] } },
      ],
    });
    t = await createAuthTestApp({ auth: { jwt: idp.jwtConfig({ clockToleranceSec: 0 }) }, ui: { clientId: 'mado-ui', viewerUrl: VIEWER } }, { DICOMWEB_UPSTREAM_URL: orthanc!.dicomweb });
    const l = await listenTestApp(t);
    base = l.base;
    stop = l.close;
    idp.registerClient({ client_id: 'mado-ui', token_endpoint_auth_method: 'none', redirect_uris: [`${base}/ui/`], grant_types: ['authorization_code'], response_types: ['code'] });
    const seedToken = await idp.token({ sub: 'seeder', scope: 'user/*.rs', claims: { roles: ['radiologist'] } });
    world = await seedUiWorld(t, orthanc!.dicomweb, base, `Bearer ${seedToken}`);
    // The referring physician's care relationship: patient B only.
    idp.setUser({ sub: 'dr-ref', claims: { roles: ['referring'], care_patients: [world.identifierB] } });
  });

  after(async () => {
    await browser?.close();
    stop?.();
    await t?.close();
    await idp?.close();
    await orthanc?.stop();
  });

  it('page config names the issuer and client; nothing else is needed to sign in', async () => {
    const cfg = (await (await fetch(`${base}/ui/config.json`)).json()) as { auth: { issuer: string; clientId: string; resource?: string }; viewerUrl: string };
    assert.equal(cfg.auth.issuer, idp.issuer);
    assert.equal(cfg.auth.clientId, 'mado-ui');
    assert.equal(cfg.auth.resource, idp.audience);
    assert.equal(cfg.viewerUrl, VIEWER);
  });

  it('radiologist: deep link → sign in at the provider → the patient\'s list with thumbnails and the viewer link', async () => {
    const page = await browser!.newPage();
    await signInAs(page, `/ui/?patient.identifier=${encodeURIComponent(world.identifierA)}`, 'dr-rad');
    await page.waitForSelector('tbody.manifest');
    assert.equal(new URL(page.url()).search, `?patient.identifier=${encodeURIComponent(world.identifierA)}`, 'back on the deep link, no code/state left in the URL');
    assert.deepEqual(await page.$$eval('tbody.manifest', (bs) => bs.map((b) => (b as HTMLElement).dataset.status).sort()), ['current', 'superseded']);
    const figures = page.locator('figure.series');
    for (let i = 0; i < (await figures.count()); i++) await figures.nth(i).scrollIntoViewIfNeeded();
    await page.waitForFunction(() => [...document.querySelectorAll('figure.series')].every((f) => f.classList.contains('loaded')));
    const widths = await page.$$eval('figure.series img', (is) => is.map((i) => (i as HTMLImageElement).naturalWidth));
    assert.ok(widths.length === 4 && widths.every((w) => w > 0), JSON.stringify(widths));
    const viewer = await page.getAttribute('tbody.manifest[data-status="current"] a.button', 'href');
    assert.equal(viewer, VIEWER.replace('{study}', fixture.study));
    await browser!.screenshot(page, 'ui-patient-signed-in');
    await page.close();
  });

  it('the page\'s requests are in the audit trail with the signed-in user', async () => {
    const deadline = Date.now() + 5_000;
    let mine: Awaited<ReturnType<typeof auditEvents>> = [];
    while (Date.now() < deadline) {
      mine = (await auditEvents(t.tdb.db)).filter((r) => r.agent_who === 'dr-rad');
      if (mine.some((r) => r.subtype_code === 'RAD-107')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const kinds = new Set(mine.map((r) => r.subtype_code));
    for (const k of ['search-type', 'ITI-67', 'ITI-68', 'RAD-107']) assert.ok(kinds.has(k), `no ${k} by dr-rad: ${[...kinds].join(', ')}`);
    assert.ok(mine.every((r) => r.outcome === '0' || r.subtype_code === 'RAD-107'), 'all succeeded (a series /thumbnail the archive lacks may not)');
  });

  it('administrator: the audit page lists the radiologist\'s requests, filterable by user', async () => {
    await signOutEverywhere();
    const page = await browser!.newPage();
    await signInAs(page, '/ui/#/audit', 'admin-1');
    await page.waitForSelector('#audit-events');
    const who = await page.$$eval('#audit-events td.who', (tds) => tds.map((td) => td.textContent));
    assert.ok(who.includes('dr-rad'), JSON.stringify(who.slice(0, 20)));
    await page.fill('#f-user', 'dr-rad');
    await page.selectOption('#f-tx', 'RAD-107');
    await page.click('.filters button[type="submit"]');
    await page.waitForSelector('#audit-events[data-query*="agent=dr-rad"][data-query*="subtype=RAD-107"]');
    assert.ok((await page.$$eval('#audit-events td.who', (tds) => tds.map((td) => td.textContent))).every((w) => w === 'dr-rad'));
    const what = await page.$$eval('#audit-events td.what', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.ok(what.length > 0 && what.every((w) => w.startsWith('RAD-107')), JSON.stringify(what));
    await page.fill('#f-user', '');
    await page.selectOption('#f-tx', '');
    await page.click('.filters button[type="submit"]');
    await page.waitForSelector('#audit-events[data-query="_count=100"]');
    await browser!.screenshot(page, 'ui-audit');
    await page.close();
  });

  it('referring physician: only their patients; the audit page is refused with the gateway\'s code', async () => {
    await signOutEverywhere();
    const page = await browser!.newPage();
    await signInAs(page, `/ui/?patient.identifier=${encodeURIComponent(world.identifierA)}`, 'dr-ref');
    await page.waitForSelector('#no-results');
    await page.goto(`${base}/ui/?patient.identifier=${encodeURIComponent(world.identifierB)}`);
    // a reload forgets the token (memory only); the provider's session signs in again
    await page.click('#sign-in');
    await page.waitForSelector('tbody.manifest');
    assert.equal(await page.locator('tbody.manifest').count(), 1);
    await page.click('nav a[data-nav="search"]');
    await page.selectOption('#search-mode', 'name');
    await page.fill('#search-term', 'Doe');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#no-results[data-term="Doe"]');
    await page.click('nav a[data-nav="audit"]');
    await page.waitForSelector('#audit-results .error');
    assert.match((await page.textContent('#audit-results .error'))!, /GW_FORBIDDEN, HTTP 403/);
    await browser!.screenshot(page, 'ui-audit-refused');
    await page.close();
  });

  it('an expired token: the page says so and offers to sign in again (never blank)', async () => {
    await signOutEverywhere();
    const page = await browser!.newPage();
    await signInAs(page, '/ui/', 'dr-rad');
    // From now on the page's API calls carry a token that has expired (real, signed by the provider).
    const expired = await idp.token({ sub: 'dr-rad', scope: 'user/*.rs', claims: { roles: ['radiologist'] }, expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 2_100));
    await page.route(`${base}/fhir/**`, (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${expired}` } }));
    await page.selectOption('#search-mode', 'name');
    await page.fill('#search-term', 'Doe');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#banner button');
    assert.match((await page.textContent('#banner'))!, /session has ended/i);
    assert.match((await page.textContent('#search-results'))!, /GW_UNAUTHORIZED, HTTP 401/);
    await browser!.screenshot(page, 'ui-session-expired');
    await page.close();
  });
});
