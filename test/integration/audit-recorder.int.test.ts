/**
 * The audit recorder's write path against a real PostgreSQL: batches written whole; a row the
 * database refuses never blocks nor loses the others (and is itself stored, cleaned); an outage
 * keeps everything queued until the database answers again; a retried batch is never stored
 * twice; close() writes what is still queued (shutdown). AuditEvent search reads what was written.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { buildAuditEvent, type AuditInput } from '../../src/audit/balp.js';
import { createAuditRecorder } from '../../src/audit/recorder.js';
import { validateR4 } from '../../src/fhir/validate.js';
import { createLogger } from '../../src/log.js';
import { countAuditEvents, insertAuditEvents, searchAuditEvents } from '../../src/store/audit-store.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

const log = createLogger('silent');
let tdb: TestDb;

before(async () => {
  tdb = await createTestDb();
});
after(async () => {
  await tdb.drop();
});

function input(subject: string, patient = 'p1'): AuditInput {
  return {
    id: randomUUID(),
    recorded: new Date(),
    requestId: randomUUID(),
    method: 'GET',
    path: '/fhir/DocumentReference',
    status: 200,
    aborted: false,
    principal: { kind: 'user', subject, issuer: 'https://idp.test', roles: ['radiologist'], scopes: ['user/*.rs'], breakGlass: false, authMethod: 'bearer' },
    action: { kind: 'search', resourceType: 'DocumentReference', interaction: 's', subtype: 'ITI-67' },
    info: { subtype: 'ITI-67', action: 'E', patientIds: [patient], entities: ['DocumentReference/d1'], count: 1 },
    breakGlass: false,
    clientIp: '127.0.0.1',
    rawQuery: `patient=${patient}`,
    serverUrl: 'http://gateway.test',
  };
}

const countFor = async (agent: string) => Number(((await tdb.db('audit_event').where({ agent_who: agent }).count({ n: '*' })) as Array<{ n: string }>)[0]!.n);

describe('audit recorder write path', () => {
  test('a batch is written whole; the stored resource is valid R4 and found by the AuditEvent search', async () => {
    const rec = createAuditRecorder({ db: tdb.db, log, serverUrl: 'http://gateway.test', classify: () => ({ kind: 'read' }), batchSize: 500, flushDelayMs: 60_000 });
    for (let i = 0; i < 20; i++) rec.enqueue(buildAuditEvent(input('batch-user', `pb${i % 4}`)));
    await rec.flush();
    assert.equal(await countFor('batch-user'), 20);
    const found = await searchAuditEvents(tdb.db, { dates: [], patients: ['Patient/pb1'], agents: ['batch-user'], entities: [], types: [], subtypes: ['ITI-67'], outcomes: ['0'], actions: ['E'], count: 50, withTotal: true });
    assert.equal(found.total, 5);
    for (const r of found.resources) assert.deepEqual(validateR4(r), [], 'valid R4 AuditEvent');
    await rec.close();
  });

  test('one row the database refuses (U+0000 in a text column) neither blocks nor loses the others; it is stored cleaned', async () => {
    const rec = createAuditRecorder({ db: tdb.db, log, serverUrl: 'http://gateway.test', classify: () => ({ kind: 'read' }), batchSize: 500, flushDelayMs: 60_000 });
    const bad = buildAuditEvent(input('bad\u0000user'));
    const good = Array.from({ length: 9 }, () => buildAuditEvent(input('neighbour')));
    for (const r of [...good.slice(0, 4), bad, ...good.slice(4)]) rec.enqueue(r);
    await rec.flush();
    assert.equal(await countFor('neighbour'), 9, 'every other event of the batch is stored');
    const stored = (await tdb.db('audit_event').where({ id: bad.id }).first()) as { agent_who: string; resource: { agent: Array<{ who?: { identifier?: { value?: string } } }> } } | undefined;
    assert.ok(stored, 'the refused event itself is stored');
    assert.equal(stored.agent_who, 'bad\uFFFDuser');
    assert.ok(stored.resource.agent.some((a) => a.who?.identifier?.value === 'bad\uFFFDuser'));
    assert.deepEqual({ ...rec.stats(), written: undefined }, { queued: 0, written: undefined, dropped: 0, failures: 0, cleaned: 1, rejected: 0 });
    await rec.close();
  });

  test('database unavailable: events stay queued (nothing lost) and are written once it answers again', async () => {
    const rec = createAuditRecorder({ db: tdb.db, log, serverUrl: 'http://gateway.test', classify: () => ({ kind: 'read' }), batchSize: 500, flushDelayMs: 60_000 });
    await tdb.db.raw('ALTER TABLE audit_event RENAME TO audit_event_away');
    try {
      for (let i = 0; i < 7; i++) rec.enqueue(buildAuditEvent(input('outage-user')));
      await rec.flush();
      assert.equal(rec.stats().queued, 7);
      assert.ok(rec.stats().failures >= 1);
    } finally {
      await tdb.db.raw('ALTER TABLE audit_event_away RENAME TO audit_event');
    }
    await rec.flush();
    assert.equal(rec.stats().queued, 0);
    assert.equal(await countFor('outage-user'), 7);
    await rec.close();
  });

  test('a batch written again (commit not acknowledged, retried) is stored once', async () => {
    const rows = Array.from({ length: 3 }, () => buildAuditEvent(input('retry-user')));
    await insertAuditEvents(tdb.db, rows);
    await insertAuditEvents(tdb.db, rows);
    assert.equal(await countFor('retry-user'), 3);
  });

  test('an event queued twice is stored once and not counted as refused', async () => {
    const rec = createAuditRecorder({ db: tdb.db, log, serverUrl: 'http://gateway.test', classify: () => ({ kind: 'read' }), flushDelayMs: 60_000 });
    const row = buildAuditEvent(input('twice-user'));
    const others = Array.from({ length: 4 }, () => buildAuditEvent(input('twice-user')));
    for (const r of [others[0]!, row, others[1]!, row, others[2]!, others[3]!]) rec.enqueue(r);
    await rec.close();
    assert.equal(await countFor('twice-user'), 5);
    assert.equal(rec.stats().rejected, 0);
  });

  test('close() writes every queued event before returning (orderly shutdown)', async () => {
    const rec = createAuditRecorder({ db: tdb.db, log, serverUrl: 'http://gateway.test', classify: () => ({ kind: 'read' }), batchSize: 100, flushDelayMs: 60_000 });
    const total = await countAuditEvents(tdb.db);
    for (let i = 0; i < 250; i++) rec.enqueue(buildAuditEvent(input('shutdown-user')));
    await rec.close();
    assert.equal(await countFor('shutdown-user'), 250);
    assert.equal(await countAuditEvents(tdb.db), total + 250);
  });
});
