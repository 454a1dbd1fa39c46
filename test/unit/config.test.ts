import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, isLoopback, loadConfig } from '../../src/config.js';

test('defaults follow the contract', () => {
  const c = loadConfig({});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.equal(c.publicBaseUrl, 'http://127.0.0.1:8080');
  assert.equal(c.dataDir, path.resolve('.data'));
  assert.equal(c.limits.maxBodyBytes, 64 * 1024 * 1024);
  assert.equal(c.limits.maxReferences, 100_000);
  assert.equal(c.auth.enabled, false);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.limits), 'config is frozen');
});

test('non-loopback HOST without authentication is refused, naming HOST', () => {
  assert.throws(() => loadConfig({ HOST: '0.0.0.0' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HOST' && /authentication/.test(e.message));
  assert.equal(isLoopback('127.0.0.2'), true);
  assert.equal(isLoopback('::1'), true);
  assert.equal(isLoopback('10.0.0.1'), false);
});

test('wrong values name the variable', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PUBLIC_BASE_URL: 'not a url' }, 'PUBLIC_BASE_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ DICOMWEB_UPSTREAM_URL: 'ftp://x' }, 'DICOMWEB_UPSTREAM_URL'],
    [{ LOG_LEVEL: 'chatty' }, 'LOG_LEVEL'],
    [{ MAX_BODY_BYTES: '-1' }, 'MAX_BODY_BYTES'],
    [{ GATEWAY_CONFIG: '/nonexistent/file.yaml' }, 'GATEWAY_CONFIG'],
  ];
  for (const [env, variable] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === variable, JSON.stringify(env));
  }
});

test('GATEWAY_CONFIG YAML adds upstreams, auth and defaults; auth allows non-loopback', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'gw.yaml');
  fs.writeFileSync(
    file,
    `upstreams:
  - name: pacs1
    url: http://127.0.0.1:8042/dicom-web/
    retrieveLocationUids: [1.2.3.4]
    auth: { type: basic, username: svc, password: secret }
auth:
  jwt: { issuer: https://idp.example, audience: mado, jwksUrl: https://idp.example/jwks }
documentDefaults:
  category: { system: http://hl7.eu/fhir/eu-health-data-api/CodeSystem/eehrxf-document-priority-category-cs, code: Medical-Imaging }
cors: { origins: [https://viewer.example] }
`,
  );
  const c = loadConfig({ GATEWAY_CONFIG: file, HOST: '0.0.0.0', DICOMWEB_UPSTREAM_URL: 'http://127.0.0.1:9999/dicom-web' });
  assert.equal(c.upstreams.length, 2);
  assert.equal(c.upstreams[0]!.url, 'http://127.0.0.1:8042/dicom-web');
  assert.deepEqual(c.upstreams[0]!.retrieveLocationUids, ['1.2.3.4']);
  assert.equal(c.upstreams[1]!.name, 'default');
  assert.equal(c.auth.enabled, true);
  assert.equal(c.documentDefaults.category.code, 'Medical-Imaging');
  assert.deepEqual(c.cors.origins, ['https://viewer.example']);
  fs.writeFileSync(file, 'auth:\n  jwt: { issuer: x, audience: y, keys: [], algorithms: [none] }\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file }), (e: unknown) => e instanceof ConfigError && e.variable === 'auth.jwt.algorithms');
  fs.writeFileSync(file, '{ not: [valid');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file }), (e: unknown) => e instanceof ConfigError && e.variable === 'GATEWAY_CONFIG');
});

test('TRUST_PROXY: off by default, true/false or a list of proxy addresses/names', () => {
  assert.equal(loadConfig({}).trustProxy, false);
  assert.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  assert.deepEqual(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.5' }).trustProxy, ['loopback', '10.0.0.5']);
});

function configFile(text: string, name = 'gw.yaml'): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-')), name);
  fs.writeFileSync(file, text);
  return file;
}

test('an unknown key in GATEWAY_CONFIG refuses to start, naming it and the nearest known key', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['upstreams:\n  - url: http://127.0.0.1:8042/dicom-web\n    retrieveUrlPrefix: [http://pacs/dicom-web]\n', 'upstreams[0].retrieveUrlPrefix', 'retrieveUrlPrefixes'],
    ['upstream:\n  - url: http://127.0.0.1:8042\n', 'upstream', 'upstreams'],
    ['auth:\n  jwt: { issuer: x, audience: y, jwksUrl: https://idp/jwks, roleclaim: r }\n', 'auth.jwt.roleclaim', 'roleClaim'],
    ['upstreams:\n  - url: http://h/dw\n    auth: { type: basic, username: u, pasword: p }\n', 'upstreams[0].auth.pasword', 'password'],
    ['limits: { somethingElse: 1 }\n', 'limits.somethingElse', undefined],
  ];
  for (const [text, variable, suggestion] of cases) {
    const file = configFile(text);
    assert.throws(
      () => loadConfig({ GATEWAY_CONFIG: file }),
      (e: unknown) => e instanceof ConfigError && e.variable === variable && (suggestion ? e.message.includes(`did you mean "${suggestion}"`) : !e.message.includes('did you mean')),
      variable,
    );
  }
});

test('a wrong value in the file is named by its key path, a wrong environment value by its variable', () => {
  const file = configFile('port: eighty\nupstreams:\n  - url: http://h/dw\n    maxConnections: 0\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file }), (e: unknown) => e instanceof ConfigError && (e.variable === 'port' || e.variable === 'upstreams[0].maxConnections'));
  const file2 = configFile('upstreams:\n  - url: ftp://h/dw\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file2 }), (e: unknown) => e instanceof ConfigError && e.variable === 'upstreams[0].url');
  const file3 = configFile('limits: { maxBodyBytes: 1 }\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file3 }), (e: unknown) => e instanceof ConfigError && e.variable === 'limits.maxBodyBytes');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: file3, MAX_BODY_BYTES: 'x' }), (e: unknown) => e instanceof ConfigError && e.variable === 'MAX_BODY_BYTES');
  assert.equal(loadConfig({ GATEWAY_CONFIG: file3, MAX_BODY_BYTES: '2048' }).limits.maxBodyBytes, 2048, 'the environment wins over the file');
});

test('the keys announced for the next round are accepted with their defaults', () => {
  const file = configFile(`publicEndpoints: upstream
upstreams:
  - url: http://h/dw
    patientIdIssuer: urn:oid:1.2.3
    retrieveAeTitles: [PACS1]
publish:
  recipients: [{ url: https://recipient.example/fhir }]
  watch: { intervalSec: 5, stableAfterSec: 10 }
auth:
  jwt: { issuer: x, audience: y, jwksUrl: https://idp/jwks, patientIdentifierClaim: pid }
  introspection: { url: https://idp/introspect, clientId: gw, clientSecret: s }
  confidentiality: { R: [radiologist, referring] }
audit: { storeQuery: hash }
ui: { viewerUrl: "https://viewer.example/?StudyInstanceUIDs={study}" }
`);
  const c = loadConfig({ GATEWAY_CONFIG: file });
  assert.equal(c.publicEndpoints, 'upstream');
  assert.deepEqual(c.upstreams[0]!.retrieveAeTitles, ['PACS1']);
  assert.deepEqual(c.upstreams[0]!.patientIdIssuer, { localNamespace: 'urn:oid:1.2.3' });
  assert.equal(c.publish.recipients[0]!.auth.type, 'none');
  assert.equal(c.publish.watch?.intervalSec, 5);
  assert.equal(c.publish.watch?.upstream, 'upstream-0');
  assert.equal(c.publish.recipients[0]!.url, 'https://recipient.example/fhir');
  assert.equal(c.auth.jwt?.patientIdentifierClaim, 'pid');
  assert.equal(c.auth.introspection?.cacheSec, 60);
  assert.equal(c.audit.storeQuery, 'hash');
  assert.deepEqual(c.auth.confidentiality, { R: ['radiologist', 'referring'], V: ['radiologist'] });
  assert.equal(c.ui.viewerUrl, 'https://viewer.example/?StudyInstanceUIDs={study}');
  const d = loadConfig({});
  assert.equal(d.publicEndpoints, 'gateway');
  assert.equal(d.audit.storeQuery, 'full');
});

test('`mado-gateway serve` with a misspelt key exits 2 with one line naming the key and the suggestion', () => {
  const file = configFile('upstreams:\n  - url: http://127.0.0.1:8042/dicom-web\n    retrieveUrlPrefix: [http://pacs/dicom-web]\n');
  const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'serve'], { env: { ...process.env, GATEWAY_CONFIG: file }, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /upstreams\[0\]\.retrieveUrlPrefix: unknown key .*did you mean "retrieveUrlPrefixes"\?/);
});

test('publish keys: patientIdIssuer as qualifiers (type ISO by default), recipients with retries, watch needs a known upstream', () => {
  const file = configFile(`upstreams:
  - name: pacs
    url: http://h/dw
    patientIdIssuer: { localNamespace: HOSP, universalEntityId: 1.2.3.4 }
publish:
  institutionName: "Hospital^^^^^^^^^1.2.3"
  recipients: [{ name: r1, url: "https://recipient.example", retries: 5, backoffMs: 200 }]
  watch: { upstream: pacs, intervalSec: 2, stableAfterSec: 3 }
`);
  const c = loadConfig({ GATEWAY_CONFIG: file });
  assert.deepEqual(c.upstreams[0]!.patientIdIssuer, { localNamespace: 'HOSP', universalEntityId: '1.2.3.4', universalEntityIdType: 'ISO' });
  assert.deepEqual({ ...c.publish.recipients[0]!, auth: undefined }, { name: 'r1', url: 'https://recipient.example/fhir', auth: undefined, timeoutMs: 30_000, retries: 5, backoffMs: 200 });
  assert.deepEqual(c.publish.watch, { upstream: 'pacs', intervalSec: 2, stableAfterSec: 3, lookbackDays: 1 });
  const bad = configFile('upstreams: [{ name: pacs, url: http://h/dw }]\npublish: { watch: { upstream: nope } }\n');
  assert.throws(() => loadConfig({ GATEWAY_CONFIG: bad }), /publish\.watch\.upstream: "nope" is not a configured upstream/);
});
