/**
 * Migrations 0005 and 0007 back-fill the search columns of rows written before them (entry_uuid,
 * author_terms, source_terms, body_text, resource_meta are generated columns: the ALTER TABLE
 * computes them for existing rows), and the searches that read them answer for those rows.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Knex } from 'knex';
import { migrations } from '../../migrations/index.js';
import { loadConfig } from '../../src/config.js';
import { planSearch } from '../../src/fhir/search/plan.js';
import { parseQueryString } from '../../src/fhir/search/parse.js';
import type { IngestResult } from '../../src/ingest/service.js';
import { insertSubmissionSet, runInTransaction } from '../../src/store/manifests.js';
import { migrateLatest } from '../../src/store/migrate.js';
import { runSearch, type SearchTable } from '../../src/store/search-sql.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { ingestFhir, ingestKos, makeManifest } from '../helpers/query-data.js';

const M0005 = '20261123_0005_search_terms';
const M0007 = '20261124_0007_docref_body_text';
let tdb: TestDb;
let K: IngestResult, F: IngestResult;

/** Every migration but these: rows are then written by today's ingest code on a schema without them. */
async function migrateAllBut(db: Knex, skip: string[]): Promise<void> {
  const names = Object.keys(migrations).filter((n) => !skip.includes(n)).sort();
  await db.migrate.latest({
    migrationSource: { getMigrations: async () => names, getMigrationName: (n: string) => n, getMigration: async (n: string) => migrations[n]! },
  });
}

async function search(type: SearchTable, qs: string): Promise<string[]> {
  const p = planSearch(type, parseQueryString(qs), { strict: true, defaultCount: 50, maxCount: 50 });
  const { rows } = await runSearch(tdb.db, { table: type, conds: p.conds, sort: p.sort, limit: p.count }, { all: true });
  return rows.map((r) => r.id).sort();
}

before(async () => {
  tdb = await createTestDb({ migrate: false });
  await migrateAllBut(tdb.db, [M0005, M0007]);
  const cols = (await tdb.db.raw(`SELECT column_name FROM information_schema.columns WHERE table_name = 'document_reference' AND column_name IN ('entry_uuid', 'author_terms', 'body_text', 'resource_meta')`)).rows;
  assert.deepEqual(cols, [], 'the schema is from before 0005 and 0007');
  // Rows written before 0005 (the ingest code never writes these columns).
  const t = { tdb, config: loadConfig({ PUBLIC_BASE_URL: 'http://gateway.test', DATABASE_URL: tdb.url, LOG_LEVEL: 'silent' }) };
  K = await ingestKos(t, makeManifest({ seed: 'mig-k', patientId: 'MIG1' }));
  F = await ingestFhir(t, makeManifest({ seed: 'mig-f', patientId: 'MIG1' }));
  await tdb.db.raw(
    `UPDATE document_reference SET resource = jsonb_set(jsonb_set(resource, '{contained}', resource->'contained' || ?::jsonb), '{author}', resource->'author' || ?::jsonb) WHERE id = ?`,
    [JSON.stringify([{ resourceType: 'Practitioner', id: 'pr', name: [{ family: 'Dupré', given: ['Hélène'] }] }]), JSON.stringify([{ reference: '#pr' }]), F.stored.fhirDocRefId],
  );
  await runInTransaction(tdb.db, (tx) =>
    insertSubmissionSet(tx, {
      id: 'ss-mig',
      resource: { resourceType: 'List', id: 'ss-mig', status: 'current', mode: 'working', contained: [{ resourceType: 'Practitioner', id: 'a', name: [{ family: 'Zoë', given: ['Ana'] }] }], source: { reference: '#a' } },
      status: 'current',
      tokens: [],
    } as never),
  );
  const r = await migrateLatest(tdb.db);
  assert.deepEqual(r.applied, [M0005, M0007]);
});
after(async () => tdb.drop());

test('0005 back-fills entry_uuid from every existing docref (each its own entryUUID)', async () => {
  const rows = (await tdb.db.raw('SELECT id, entry_uuid, resource FROM document_reference ORDER BY id')).rows as Array<{ id: string; entry_uuid: string | null; resource: any }>;
  assert.equal(rows.length, 4);
  for (const r of rows) {
    const want = r.resource.identifier.find((i: any) => i.type?.coding?.[0]?.code === 'entryUUID').value;
    assert.match(want, /^urn:uuid:/);
    assert.equal(r.entry_uuid, want, r.id);
  }
  assert.equal(new Set(rows.map((r) => r.entry_uuid)).size, 4);
  const kosUuid = rows.find((r) => r.id === K.stored.kosDocRefId)!.entry_uuid!;
  assert.deepEqual(await search('DocumentReference', `identifier=${kosUuid}`), [K.stored.kosDocRefId]);
  assert.deepEqual(await search('DocumentReference', `identifier=${kosUuid.slice('urn:uuid:'.length)}`), [K.stored.kosDocRefId]);
  assert.deepEqual(await search('DocumentReference', 'identifier=urn:uuid:00000000-0000-4000-8000-000000000000'), []);
});

test('0005 back-fills author_terms and source_terms; the searches find pre-existing rows', async () => {
  assert.deepEqual(await search('DocumentReference', 'author.family=dupre'), [F.stored.fhirDocRefId]);
  assert.deepEqual(await search('DocumentReference', `author.given:exact=${encodeURIComponent('Hélène')}`), [F.stored.fhirDocRefId]);
  assert.deepEqual(await search('DocumentReference', 'author.given:exact=Helene'), []);
  assert.deepEqual(await search('DocumentReference', 'author.family=zoe'), []);
  assert.deepEqual(await search('List', 'source.family=zoe'), ['ss-mig']);
  assert.deepEqual(await search('List', 'source.family=dupre'), []);
  const empty = (await tdb.db.raw(`SELECT count(*)::int AS n FROM document_reference WHERE cardinality(author_terms) = 0`)).rows[0].n;
  assert.equal(empty, 3);
});

test('0007 back-fills body_text and resource_meta; search entries of pre-existing rows equal their stored resource', async () => {
  const rows = (await tdb.db.raw('SELECT id, resource, body_text, resource_meta FROM document_reference ORDER BY id')).rows as Array<{ id: string; resource: any; body_text: string; resource_meta: unknown }>;
  assert.equal(rows.length, 4);
  for (const r of rows) {
    const { resourceType, meta, ...rest } = r.resource;
    assert.equal(resourceType, 'DocumentReference');
    assert.deepEqual(JSON.parse(r.body_text), rest, r.id);
    assert.deepEqual(r.resource_meta, meta ?? null, r.id);
  }
  // The author added to F before 0007 is in its body text.
  assert.match(rows.find((r) => r.id === F.stored.fhirDocRefId)!.body_text, /Dupré/);
  const p = planSearch('DocumentReference', parseQueryString(`_id=${rows.map((r) => r.id).join(',')}`), { strict: true, defaultCount: 50, maxCount: 50 });
  const found = await runSearch(tdb.db, { table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: p.count }, { all: true });
  assert.equal(found.rows.length, 4);
  for (const row of found.rows) assert.equal(row.body_text, rows.find((r) => r.id === row.id)!.body_text);
});
