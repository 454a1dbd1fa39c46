/**
 * ATNA export: RFC 5424 records with a DICOM audit message, over TCP and TLS (RFC 5425 octet
 * counting) and UDP (RFC 5426), against local listeners on port 0; bounded retry queue while the
 * collector is down; end to end from the app's config (audit.syslog).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { closeApp } from '../../src/app.js';
import { createSyslogExporter, formatSyslog } from '../../src/audit/syslog.js';
import { createLogger } from '../../src/log.js';
import type { AuditEvent } from '@medplum/fhirtypes';
import { createAuthTestApp } from '../helpers/auth.js';
import type { TestApp } from '../helpers/app.js';

const log = createLogger('silent');

const event = (n: number): AuditEvent => ({
  resourceType: 'AuditEvent',
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110104', display: 'DICOM Instances Transferred' },
  subtype: [{ system: 'urn:ihe:event-type-code', code: 'RAD-107', display: 'WADO-RS Retrieve' }],
  action: 'R',
  recorded: new Date().toISOString(),
  outcome: '0',
  agent: [{ requestor: true, who: { identifier: { value: `user-${n}` } }, network: { address: '127.0.0.1', type: '2' }, type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110152' }] } }],
  source: { observer: { display: 'mado-gateway' } },
  entity: [{ what: { reference: 'Patient/p1' }, type: { code: '1' }, role: { code: '1' } }, { what: { identifier: { value: '1.2.3', type: { coding: [{ code: '110180', display: 'Study Instance UID' }] } } }, type: { code: '2' }, role: { code: '3' }, detail: [{ type: 'SOPInstanceUID', valueString: '1.2.3.4' }] }],
});

/** Parse RFC 5425 octet-counted frames from a TCP/TLS byte stream. */
function frames(onMessage: (m: string) => void) {
  let buf = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const sp = buf.indexOf(0x20);
      if (sp < 0) return;
      const len = Number(buf.subarray(0, sp).toString());
      if (buf.length < sp + 1 + len) return;
      onMessage(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
      buf = buf.subarray(sp + 1 + len);
    }
  };
}

async function tcpListener(port = 0): Promise<{ server: net.Server; port: number; messages: string[] }> {
  const messages: string[] = [];
  const server = net.createServer((s) => s.on('data', frames((m) => messages.push(m))));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, messages };
}

async function until(cond: () => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('RFC 5424 record with a DICOM audit message (PS3.15 A.5)', () => {
  const s = formatSyslog(event(1), 'mado-gateway', 'gw-host');
  assert.match(s, /^<85>1 \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z gw-host mado-gateway \d+ IHE\+RFC-3881 - <\?xml version="1.0" encoding="UTF-8"\?><AuditMessage>/);
  assert.match(s, /<EventIdentification EventActionCode="R" EventDateTime="[^"]+" EventOutcomeIndicator="0"><EventID csd-code="110104" codeSystemName="DCM"/);
  assert.match(s, /<EventTypeCode csd-code="RAD-107"/);
  assert.match(s, /<ActiveParticipant UserID="user-1" UserIsRequestor="true" NetworkAccessPointID="127.0.0.1" NetworkAccessPointTypeCode="2">/);
  assert.match(s, /<ParticipantObjectIdentification ParticipantObjectID="Patient\/p1" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">/);
  assert.match(s, /<ParticipantObjectIDTypeCode csd-code="110180" codeSystemName="DCM" originalText="Study Instance UID"\/>/);
  assert.match(s, /<\/AuditMessage>$/);
  // XML escaping
  const e = event(2);
  e.agent[0]!.who = { identifier: { value: 'a"<b>&' } };
  assert.match(formatSyslog(e, 'x'), /UserID="a&quot;&lt;b&gt;&amp;"/);
});

describe('transports', () => {
  test('TCP with octet counting', async () => {
    const l = await tcpListener();
    const ex = createSyslogExporter({ host: '127.0.0.1', port: l.port, protocol: 'tcp', appName: 'mado-gateway', maxQueue: 100 }, log);
    for (let i = 0; i < 5; i++) ex.send(event(i));
    assert.equal(await ex.drain(), true);
    await until(() => l.messages.length === 5);
    assert.deepEqual(l.messages.map((m) => /UserID="(user-\d)"/.exec(m)![1]), ['user-0', 'user-1', 'user-2', 'user-3', 'user-4']);
    await ex.close();
    l.server.close();
  });

  test('UDP, one record per datagram', async () => {
    const sock = dgram.createSocket('udp4');
    const got: string[] = [];
    sock.on('message', (m) => got.push(m.toString('utf8')));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const ex = createSyslogExporter({ host: '127.0.0.1', port: sock.address().port, protocol: 'udp', appName: 'gw', maxQueue: 100 }, log);
    for (let i = 0; i < 3; i++) ex.send(event(i));
    await until(() => got.length === 3);
    // a record too large for one datagram is dropped (counted), and does not block the queue
    const huge = event(9);
    huge.entity![1]!.detail = Array.from({ length: 3000 }, (_, k) => ({ type: 'SOPInstanceUID', valueString: `1.2.3.4.5.6.7.8.9.${k}` }));
    ex.send(huge);
    ex.send(event(4));
    await until(() => got.length === 4);
    assert.equal(ex.stats().dropped, 1);
    assert.match(got[3]!, /UserID="user-4"/);
    assert.ok(got.every((m) => m.startsWith('<85>1 ') && m.includes(' gw ')));
    await ex.close();
    sock.close();
  });

  test('TLS (RFC 5425) against a local listener with a test CA', async (tc) => {
    let dir: string;
    try {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mado-syslog-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    } catch {
      if (process.env.CI === 'true') throw new Error('openssl is required under CI');
      return tc.skip('openssl not available to make a test certificate');
    }
    const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
    const messages: string[] = [];
    const server = tls.createServer({ cert, key: fs.readFileSync(path.join(dir, 'key.pem')) }, (s) => s.on('data', frames((m) => messages.push(m))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const ex = createSyslogExporter({ host: '127.0.0.1', port, protocol: 'tls', appName: 'gw', maxQueue: 100 }, log, { tlsOptions: { ca: cert } });
    ex.send(event(7));
    await until(() => messages.length === 1);
    assert.match(messages[0]!, /UserID="user-7"/);
    await ex.close();
    server.close();
    // an untrusted collector gets nothing
    const messages2: string[] = [];
    const server2 = tls.createServer({ cert, key: fs.readFileSync(path.join(dir, 'key.pem')) }, (s) => s.on('data', () => messages2.push('x')));
    await new Promise<void>((r) => server2.listen(0, '127.0.0.1', r));
    const ex2 = createSyslogExporter({ host: '127.0.0.1', port: (server2.address() as net.AddressInfo).port, protocol: 'tls', appName: 'gw', maxQueue: 100 }, log);
    ex2.send(event(8));
    assert.equal(await ex2.drain(500), false, 'not delivered to an unverified server');
    assert.equal(messages2.length, 0);
    await ex2.close();
    server2.close();
  });

  test('bounded retry queue: records wait for the collector; oldest dropped when full', async () => {
    // a port with nothing listening yet
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const ex = createSyslogExporter({ host: '127.0.0.1', port, protocol: 'tcp', appName: 'gw', maxQueue: 3 }, log);
    for (let i = 0; i < 5; i++) ex.send(event(i));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual({ queued: ex.stats().queued, dropped: ex.stats().dropped, sent: ex.stats().sent }, { queued: 3, dropped: 2, sent: 0 });
    const l = await tcpListener(port);
    assert.equal(await ex.drain(10_000), true);
    await until(() => l.messages.length === 3);
    assert.deepEqual(l.messages.map((m) => /UserID="(user-\d)"/.exec(m)![1]), ['user-2', 'user-3', 'user-4']);
    await ex.close();
    l.server.close();
  });
});

describe('end to end from config', () => {
  let t: TestApp;
  let l: Awaited<ReturnType<typeof tcpListener>>;
  before(async () => {
    l = await tcpListener();
    t = await createAuthTestApp({ audit: { syslog: { host: '127.0.0.1', port: l.port, protocol: 'tcp', appName: 'mado-gateway' } } });
  });
  after(async () => {
    await closeApp(t.app);
    await t.close();
    l.server.close();
  });
  test('each audited request is exported once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await request(t.app).get('/fhir/metadata')).headers['x-request-id']!);
    await request(t.app).get('/healthz'); // not audited, not exported
    await until(() => l.messages.length >= 4);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(l.messages.length, 4);
    for (const id of ids) assert.equal(l.messages.filter((m) => m.includes(id)).length, 1);
  });
});
