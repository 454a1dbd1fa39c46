/**
 * Migration 0008: the QIDO-RS study attributes that used to be read out of manifest.model are
 * imaging_study columns, written by the ingest and back-filled from the model for older rows.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BACKFILL } from '../../migrations/20261124_0008_qido_study_fields.js';
import { loadConfig } from '../../src/config.js';
import type { IngestResult } from '../../src/ingest/service.js';
import { searchIndex, type StudyRow } from '../../src/store/imaging-index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { ingestKos, makeManifest } from '../helpers/query-data.js';

let tdb: TestDb;
let R: IngestResult;
const EXPECTED = { patientIdIssuer: 'HOSP-NS', accessionIssuer: 'ACC-NS', referringPhysician: 'Doe^John', studyId: 'S-42', timezoneOffset: '+0200' };

before(async () => {
  tdb = await createTestDb();
  const t = { tdb, config: loadConfig({ PUBLIC_BASE_URL: 'http://gateway.test', DATABASE_URL: tdb.url, LOG_LEVEL: 'silent' }) };
  const m = makeManifest({ seed: 'qido-fields', patientId: 'QF1' });
  m.patient.id = { value: 'QF1', issuer: { localNamespace: 'HOSP-NS' } };
  m.study.accession = { value: 'ACC1', issuer: { localNamespace: 'ACC-NS' } };
  m.study.referringPhysicianName = { alphabetic: 'Doe^John' };
  m.study.studyId = 'S-42';
  m.document.timezoneOffset = '+0200';
  R = await ingestKos(t, m);
  await ingestKos(t, makeManifest({ seed: 'qido-fields-other', patientId: 'QF2' })); // none of the five set
});
after(async () => tdb?.drop());

async function studyRow(criteria = {}): Promise<StudyRow | undefined> {
  const rows = (await searchIndex(tdb.db, { all: true }, { level: 'study', criteria: { studyUids: [R.stored.studyInstanceUid], ...criteria }, limit: 10, offset: 0 })) as StudyRow[];
  return rows[0];
}

const pick = (r: StudyRow | undefined) => r && { patientIdIssuer: r.patientIdIssuer, accessionIssuer: r.accessionIssuer, referringPhysician: r.referringPhysician, studyId: r.studyId, timezoneOffset: r.timezoneOffset };

test('the ingest writes the five QIDO study attributes; matching keys use them', async () => {
  assert.deepEqual(pick(await studyRow()), EXPECTED);
  assert.ok(await studyRow({ studyId: 'S-42' }));
  assert.equal(await studyRow({ studyId: 'S-43' }), undefined);
  assert.ok(await studyRow({ patientIdIssuer: 'HOSP-NS' }));
  assert.equal(await studyRow({ patientIdIssuer: 'OTHER' }), undefined);
  assert.ok(await studyRow({ accessionIssuer: 'ACC-NS' }));
  assert.equal(await studyRow({ accessionIssuer: 'OTHER' }), undefined);
});

test('rows written before 0008 are back-filled from the model', async () => {
  await tdb.db.raw(`UPDATE imaging_study SET patient_id_issuer_local = NULL, accession_issuer_local = NULL, referring_physician = NULL, study_id = NULL, timezone_offset = NULL`);
  const cols = `SELECT patient_id_issuer_local, accession_issuer_local, referring_physician, study_id, timezone_offset FROM imaging_study WHERE manifest_id = ?`;
  assert.deepEqual((await tdb.db.raw(cols, [R.stored.id])).rows[0], { patient_id_issuer_local: null, accession_issuer_local: null, referring_physician: null, study_id: null, timezone_offset: null });
  assert.equal(pick(await studyRow())!.studyId, null);
  await tdb.db.raw(BACKFILL);
  assert.deepEqual((await tdb.db.raw(cols, [R.stored.id])).rows[0], { patient_id_issuer_local: 'HOSP-NS', accession_issuer_local: 'ACC-NS', referring_physician: 'Doe^John', study_id: 'S-42', timezone_offset: '+0200' });
  assert.deepEqual(pick(await studyRow()), EXPECTED);
  const other = (await tdb.db.raw(`SELECT study_id, referring_physician, timezone_offset FROM imaging_study WHERE manifest_id <> ?`, [R.stored.id])).rows;
  assert.equal(other.length, 1);
  assert.equal(other[0].study_id, null, 'absent in the model: stays NULL');
});
