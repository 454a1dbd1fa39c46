/**
 * mTLS when the gateway terminates TLS (server.ts: https + requestCert; certificate subject →
 * roles via auth.mtls.roles), HSTS, remote JWKS (fetched once, cached), rate limits per identity
 * (429 + Retry-After), and the per-request time limit (503 with a reason).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { closeApp } from '../../src/app.js';
import { handlerTimeoutMiddleware } from '../../src/auth/request-limits.js';
import { hashPassword } from '../../src/cli/hash-password.js';
import { loadConfig } from '../../src/config.js';
import { errorHandler } from '../../src/http/errors.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { auditFor } from '../helpers/audit.js';
import { AUDIENCE, createAuthTestApp, ISSUER, makeKeys, mint } from '../helpers/auth.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { issueCert, makeCa, selfSignedCert, tryPki } from '../helpers/pki.js';

/** A CA, a server certificate for 127.0.0.1, and client certificates (two from the CA, one self-signed). */
function makePki(dir: string) {
  makeCa(dir, 'Test CA');
  issueCert(dir, 'server', '/CN=localhost', 'IP:127.0.0.1,DNS:localhost');
  issueCert(dir, 'bridge', '/O=Hospital/CN=pacs-bridge');
  issueCert(dir, 'stranger', '/CN=unmapped-client');
  selfSignedCert(dir, 'rogue', '/CN=pacs-bridge');
}

describe('mTLS (gateway terminates TLS)', () => {
  let dir: string;
  let tdb: TestDb;
  let srv: RunningServer;
  let available = true;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-mtls-'));
    available = tryPki(() => makePki(dir));
    if (!available) return;
    tdb = await createTestDb();
    const cfgFile = path.join(dir, 'gateway.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ auth: { mtls: { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key'), roles: { 'pacs-bridge': ['technologist'] } } } }));
    const config = loadConfig({ GATEWAY_CONFIG: cfgFile, DATABASE_URL: tdb.url, PORT: '0', PUBLIC_BASE_URL: 'https://gateway.test', LOG_LEVEL: 'silent' });
    srv = await startServer(config, createLogger('silent'));
  });
  after(async () => {
    await srv?.close();
    if (tdb) await tdb.drop();
  });

  const get = (p: string, client?: string) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const u = new URL(srv.url + p);
      const req = https.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          ca: fs.readFileSync(path.join(dir, 'ca.pem')),
          ...(client ? { cert: fs.readFileSync(path.join(dir, `${client}.pem`)), key: fs.readFileSync(path.join(dir, `${client}.key`)) } : {}),
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  test('a CA-signed client certificate mapped to a role is authenticated; HSTS is sent', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    assert.match(srv.url, /^https:/);
    const res = await get('/fhir/DocumentReference?patient=nobody', 'bridge');
    assert.equal(res.status, 200, res.body);
    assert.match(res.headers['strict-transport-security'] ?? '', /max-age=\d+/);
    const ev = await auditFor(srv.db, res.headers['x-request-id'] as string);
    assert.equal(ev.agent_who, 'O=Hospital,CN=pacs-bridge');
    assert.equal((await get('/fhir/AuditEvent', 'bridge')).status, 403, 'technologist role only');
  });

  test('no certificate → 401; self-signed certificate with the same CN → 401; CA-signed but unmapped → 403', async (tc) => {
    if (!available) return tc.skip('openssl not available');
    assert.equal((await get('/fhir/DocumentReference?patient=x')).status, 401);
    assert.equal((await get('/fhir/DocumentReference?patient=x', 'rogue')).status, 401);
    assert.equal((await get('/fhir/DocumentReference?patient=x', 'stranger')).status, 403);
    assert.equal((await get('/healthz')).status, 200, 'probes need no certificate');
  });
});

describe('remote JWKS', () => {
  let jwks: http.Server;
  let hits = 0;
  test('keys are fetched from jwksUrl once and cached; unknown kid → 401', async () => {
    const keys = await makeKeys('remote-1');
    jwks = http.createServer((_q, s) => {
      hits++;
      s.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [keys.publicJwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const t = await createAuthTestApp({ auth: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: url, algorithms: ['RS256'] } } });
    try {
      for (let i = 0; i < 3; i++) {
        const tok = await mint({ sub: `a${i}`, roles: ['administrator'], scope: 'user/AuditEvent.rs' }, { keys });
        assert.equal((await request(t.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${tok}`)).status, 200);
      }
      assert.equal(hits, 1, 'JWKS fetched once');
      const other = await makeKeys('remote-2');
      assert.equal((await request(t.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await mint({ sub: 'x' }, { keys: other })}`)).status, 401);
    } finally {
      await closeApp(t.app);
      await t.close();
      jwks.close();
    }
  });
});

describe('JWKS endpoint down', () => {
  test('503 with a reason and Retry-After, not 401', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const t = await createAuthTestApp({ auth: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: `http://127.0.0.1:${port}/jwks.json`, algorithms: ['RS256'] } } });
    try {
      const keys = await makeKeys('down-1');
      const res = await request(t.app).get('/fhir/AuditEvent').set('Authorization', `Bearer ${await mint({ sub: 'a', roles: ['administrator'] }, { keys })}`);
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.issue[0].details.coding[0].code, 'GW_AUTH_UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '5');
    } finally {
      await closeApp(t.app);
      await t.close();
    }
  });
});

describe('rate limit per identity', () => {
  test('429 with Retry-After once a caller exhausts its bucket; others unaffected; audited', async () => {
    const t = await createAuthTestApp({
      rateLimit: { requestsPerMinute: 3 },
      auth: { basic: [{ username: 'a', passwordHash: hashPassword('pa'), roles: ['radiologist'] }, { username: 'b', passwordHash: hashPassword('pb'), roles: ['radiologist'] }] },
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(t.app).get('/fhir/DocumentReference?patient=x').auth('a', 'pa')).status, 200);
      const limited = await request(t.app).get('/fhir/DocumentReference?patient=x').auth('a', 'pa');
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal(limited.body.issue[0].code, 'throttled');
      assert.equal((await request(t.app).get('/fhir/DocumentReference?patient=x').auth('b', 'pb')).status, 200);
      const ev = await auditFor(t.tdb.db, limited.headers['x-request-id']!);
      assert.equal(ev.outcome, '4');
      assert.equal(ev.agent_who, 'a');
    } finally {
      await closeApp(t.app);
      await t.close();
    }
  });
});

describe('per-request time limit', () => {
  test('a handler that does not answer in time gets 503 with a reason; fast ones are untouched', async () => {
    const app = express();
    app.use((req, _res, next) => {
      req.log = createLogger('silent');
      next();
    });
    app.use(handlerTimeoutMiddleware(150));
    app.get('/fhir/slow', () => {
      /* never answers */
    });
    app.get('/fhir/fast', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler());
    const slow = await request(app).get('/fhir/slow');
    assert.equal(slow.status, 503);
    assert.equal(slow.body.issue[0].details.coding[0].code, 'GW_TIMEOUT');
    assert.match(slow.body.issue[0].details.text, /150 ms/);
    assert.equal((await request(app).get('/fhir/fast')).status, 200);
  });
});
