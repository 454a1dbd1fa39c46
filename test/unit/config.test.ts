import assert from 'node:assert/strict';
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
