/**
 * Group commit: submissions that arrive together share one transaction, each in its own
 * savepoint. A member that fails (conflicting bytes, a database error after it already superseded
 * its study's current manifest) rolls back only its own rows and gets its own answer; the others
 * land; one current manifest per study; supersede order is arrival order. When the group's COMMIT
 * itself fails, every member is run again alone, so only the faulty one fails.
 * Database faults are injected with real PostgreSQL triggers on one SOP Instance UID.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { groupCommitStats, IngestService, parseKos, type IngestResult } from '../../src/ingest/service.js';
import { incompleteManifests } from '../../src/store/manifests.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { conflicting, kos, nextVersion, type Kos } from './ingest-fixtures.js';

let t: TestApp;
let service: IngestService;
before(async () => {
  // One group at a time: the first submission of a burst runs alone, all the others queue and form
  // the next group, so which submissions share a transaction does not depend on timing.
  t = await createTestApp({ INGEST_GROUPS_IN_FLIGHT: '1' });
  service = new IngestService({ db: t.tdb.db, config: t.config });
});
after(async () => {
  await t.close();
});

/** Submit all at once (no await in between): the first starts a group, the rest queue and share the next. */
function submitAll(list: Kos[]): Promise<Array<PromiseSettledResult<IngestResult>>> {
  return Promise.allSettled(list.map((k) => {
    const p = parseKos(k.bytes, t.config);
    if (p.kind !== 'manifest') throw new Error('fixture is not a manifest');
    return service.submitManifest(p.manifest);
  }));
}

async function currentOf(study: string): Promise<string[]> {
  const r = await t.tdb.db.raw("select sop_instance_uid from manifest where study_instance_uid = ? and status = 'current'", [study]);
  return r.rows.map((x: { sop_instance_uid: string }) => x.sop_instance_uid);
}

async function stored(sop: string): Promise<boolean> {
  return (await t.tdb.db.raw('select 1 from manifest where sop_instance_uid = ?', [sop])).rows.length === 1;
}

/** A trigger that fails the INSERT of one manifest (immediately, or at COMMIT when deferred). */
async function failInsertOf(sop: string, deferred: boolean): Promise<void> {
  await t.tdb.db.raw(`create or replace function test_fail_manifest() returns trigger language plpgsql as $$
    begin if new.sop_instance_uid = '${sop}' then raise exception 'injected fault'; end if; return null; end $$`);
  await t.tdb.db.raw('drop trigger if exists test_fail_manifest on manifest');
  await t.tdb.db.raw(`create constraint trigger test_fail_manifest after insert on manifest ${deferred ? 'deferrable initially deferred' : ''} for each row execute function test_fail_manifest()`);
}

test('one failing member (conflict, database error after its supersede) never fails the others of its group', async () => {
  const a = kos('gc-a'), b = kos('gc-b'), c = kos('gc-c');
  assert.deepEqual((await submitAll([a, b, c])).map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled']);
  const b2 = nextVersion(b, 'b2'); // fails in the database after superseding b
  await failInsertOf(b2.model.document.sopInstanceUid, false);
  const a2 = nextVersion(a, 'a2'), a3 = nextVersion(a, 'a3');
  const fresh = Array.from({ length: 6 }, (_, i) => kos(`gc-fresh-${i}`));
  const before = { ...groupCommitStats(t.tdb.db)! };
  const list = [fresh[0]!, fresh[1]!, a2, conflicting(c), fresh[2]!, b2, a3, fresh[3]!, c, fresh[4]!, fresh[5]!];
  const r = await submitAll(list);
  const after = groupCommitStats(t.tdb.db)!;
  assert.ok(after.members - before.members > after.groups - before.groups, 'some submissions shared a transaction');
  assert.equal(after.groupFailures, before.groupFailures, 'the savepoints kept every group alive');
  assert.equal(after.retriedAlone, before.retriedAlone, 'nobody needed a second run');

  const failed = r.map((x, i) => (x.status === 'rejected' ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(failed, [3, 5], 'only the conflicting and the faulty submission fail');
  assert.equal((r[3] as PromiseRejectedResult).reason.status, 409);
  assert.equal((r[8] as PromiseFulfilledResult<IngestResult>).value.outcome, 'duplicate');
  for (const k of [...fresh, a2, a3]) assert.ok(await stored(k.model.document.sopInstanceUid));
  assert.equal(await stored(b2.model.document.sopInstanceUid), false, 'nothing of the faulty submission is stored');
  assert.deepEqual(await currentOf(b.model.study.studyInstanceUid), [b.model.document.sopInstanceUid], 'its supersede was rolled back with it');
  assert.deepEqual(await currentOf(a.model.study.studyInstanceUid), [a3.model.document.sopInstanceUid], 'arrival order: the later version is current');
  const a2row = (await t.tdb.db.raw('select status, replaces from manifest where sop_instance_uid = ?', [a2.model.document.sopInstanceUid])).rows[0];
  assert.equal(a2row.status, 'superseded');
  for (const k of [...fresh, c]) assert.deepEqual(await currentOf(k.model.study.studyInstanceUid), [k.model.document.sopInstanceUid]);
  assert.deepEqual(await incompleteManifests(t.tdb.db), []);
});

test('a group whose COMMIT fails: every member runs again alone, only the faulty one fails', async () => {
  const list = Array.from({ length: 8 }, (_, i) => kos(`gc-commit-${i}`));
  await failInsertOf(list[5]!.model.document.sopInstanceUid, true);
  const before = { ...groupCommitStats(t.tdb.db)! };
  const r = await submitAll(list);
  const after = groupCommitStats(t.tdb.db)!;
  assert.ok(after.groupFailures > before.groupFailures, 'a group failed at COMMIT');
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  for (const [i, k] of list.entries()) assert.equal(await stored(k.model.document.sopInstanceUid), i !== 5);
  for (const [i, k] of list.entries()) assert.deepEqual(await currentOf(k.model.study.studyInstanceUid), i === 5 ? [] : [k.model.document.sopInstanceUid]);
  assert.deepEqual(await incompleteManifests(t.tdb.db), []);
  await t.tdb.db.raw('drop trigger test_fail_manifest on manifest');
});

test('a group of one (no savepoint): its failure is its own answer, rolled back whole, never run twice', async () => {
  const d = kos('gc-one');
  assert.equal((await submitAll([d]))[0]!.status, 'fulfilled');
  const d2 = nextVersion(d, 'one-2'); // fails in the database after superseding d
  await failInsertOf(d2.model.document.sopInstanceUid, false);
  const before = { ...groupCommitStats(t.tdb.db)! };
  const [faulty] = await submitAll([d2]);
  const [clash] = await submitAll([conflicting(d)]);
  const after = groupCommitStats(t.tdb.db)!;
  assert.equal(after.groups - before.groups, 2, 'each ran as a group of one');
  assert.equal(after.groupFailures, before.groupFailures, 'a member failure is not a group failure');
  assert.equal(after.retriedAlone, before.retriedAlone, 'nobody needed a second run');
  assert.equal(faulty!.status, 'rejected');
  assert.equal((clash as PromiseRejectedResult).reason.status, 409);
  assert.equal(await stored(d2.model.document.sopInstanceUid), false, 'nothing of the faulty submission is stored');
  assert.deepEqual(await currentOf(d.model.study.studyInstanceUid), [d.model.document.sopInstanceUid], 'its supersede was rolled back with it');
  assert.deepEqual(await incompleteManifests(t.tdb.db), []);
  await t.tdb.db.raw('drop trigger test_fail_manifest on manifest');
  assert.equal((await submitAll([d2]))[0]!.status, 'fulfilled', 'the same submission lands once the fault is gone');
  assert.deepEqual(await currentOf(d.model.study.studyInstanceUid), [d2.model.document.sopInstanceUid]);
});
