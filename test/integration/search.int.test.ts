/**
 * ITI-67 DocumentReference search: every parameter, modifier and date prefix against matching and
 * non-matching data (stored through the real ingest service), result shaping, errors, formats.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Fhir } from 'fhir';
import request from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ingestFhir, ingestKos, makeManifest } from '../helpers/query-data.js';
import { IngestService } from '../../src/ingest/service.js';
import type { IngestResult } from '../../src/ingest/service.js';

let t: TestApp;
const ISS1 = 'urn:oid:1.2.3.4.5.6.7';
const ISS2 = 'urn:oid:9.9.9';
let A: IngestResult, B: IngestResult, C: IngestResult, D: IngestResult, E: IngestResult, F: IngestResult;

before(async () => {
  t = await createTestApp();
  // P1 (MRN1 @ ISS1): A (KOS, superseded by E, same study), B (FHIR-native), F (entered-in-error)
  A = await ingestKos(t, makeManifest({ seed: 'A', patientId: 'MRN1', studyDate: '20240115', studyTime: '101010', modality: 'CT', accession: 'ACC-A' }));
  B = await ingestFhir(t, makeManifest({ seed: 'B', patientId: 'MRN1', studyDate: '20230601', studyTime: '080000', modality: 'MR', accession: 'ACC-B' }));
  E = await ingestKos(t, makeManifest({ seed: 'E', patientId: 'MRN1', studyDate: '20240115', studyTime: '101010', modality: 'CT', accession: 'ACC-A', studyUid: A.stored.studyInstanceUid }));
  F = await ingestKos(t, makeManifest({ seed: 'F', patientId: 'MRN1', studyDate: '20210101', studyTime: '000000', modality: 'CT', accession: 'ACC-F' }));
  await new IngestService({ db: t.tdb.db, config: t.config }).updateStatus(F.stored.kosDocRefId, 'entered-in-error');
  // P2: same MRN under another issuer; P3: no issuer
  C = await ingestKos(t, makeManifest({ seed: 'C', patientId: 'MRN1', issuer: '9.9.9', studyDate: '20240301', studyTime: '120000', modality: 'US', accession: 'ACC-C' }));
  D = await ingestKos(t, makeManifest({ seed: 'D', patientId: 'MRN3', issuer: '', studyDate: '20220202', studyTime: '020202', modality: 'CT', accession: 'ACC-D' }));
});
after(async () => t.close());

const docs = (r: IngestResult) => [r.stored.kosDocRefId, r.stored.fhirDocRefId];

async function search(q: string, expectStatus = 200): Promise<request.Response> {
  const res = await request(t.app).get(`/fhir/DocumentReference?${q}`);
  assert.equal(res.status, expectStatus, `${q} → ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
  return res;
}

function matchIds(res: request.Response): string[] {
  return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
}

async function ids(q: string): Promise<string[]> {
  return matchIds(await search(q));
}

function expectIds(actual: string[], ...rs: IngestResult[]) {
  assert.deepEqual(actual, rs.flatMap(docs).sort());
}

const P1 = `patient.identifier=${ISS1}|MRN1`;

test('patient.identifier: system|value, |value, other issuer; bare value refused (product ask 7)', async () => {
  expectIds(await ids(`${P1}&status=current`), B, E);
  expectIds(await ids(`patient.identifier=${ISS2}|MRN1`), C);
  expectIds(await ids('patient.identifier=|MRN3'), D);
  expectIds(await ids('patient.identifier=|MRN1'));
  expectIds(await ids(`patient.identifier=${ISS1}|NOPE`));
  expectIds(await ids(`patient.identifier=${ISS1}|MRN1,${ISS2}|MRN1&status=current`), B, C, E);
  const res = await search('patient.identifier=MRN1', 400);
  assert.deepEqual(res.body.issue[0].expression, ['patient.identifier']);
  // repetition = AND
  expectIds(await ids(`${P1}&patient.identifier=${ISS2}|MRN1`));
});

test('status: current, superseded, entered-in-error only on request, :not', async () => {
  expectIds(await ids(`${P1}&status=superseded`), A);
  expectIds(await ids(`${P1}&status=current,superseded`), A, B, E);
  expectIds(await ids(`${P1}&status=entered-in-error`), F);
  expectIds(await ids(P1), A, B, E);
  expectIds(await ids(`${P1}&status:not=current`), A);
  expectIds(await ids(`${P1}&status=bogus`));
});

test('patient / subject references and :identifier', async () => {
  const pid = E.stored.patientId;
  expectIds(await ids(`patient=${pid}&status=current`), B, E);
  expectIds(await ids(`patient=Patient/${pid}&status=current`), B, E);
  expectIds(await ids(`patient=http://gateway.test/fhir/Patient/${pid}&status=current`), B, E);
  expectIds(await ids(`subject=Patient/${pid}&status=current`), B, E);
  expectIds(await ids(`patient=Group/${pid}`));
  expectIds(await ids(`patient=nobody`));
  expectIds(await ids(`subject:identifier=${ISS1}|MRN1&status=current`), B, E);
  expectIds(await ids(`patient:identifier=|MRN3`), D);
  await search('subject:identifier=MRN3', 400);
});

test('format: code regardless of system (Q4), system|code, :not; both docrefs per manifest', async () => {
  const kos = (r: IngestResult) => [r.stored.kosDocRefId];
  const fhir = (r: IngestResult) => [r.stored.fhirDocRefId];
  assert.deepEqual(await ids(`${P1}&status=current&format=1.2.840.10008.5.1.4.1.1.88.59`), [...kos(B), ...kos(E)].sort());
  assert.deepEqual(await ids(`${P1}&status=current&format=http://dicom.nema.org/resources/ontology/DCMUID|1.2.840.10008.5.1.4.1.1.88.59`), [...kos(B), ...kos(E)].sort());
  assert.deepEqual(await ids(`${P1}&status=current&format=http://dicom.nema.org/resources/CodeSystem/DICOM_UIDs|1.2.840.10008.5.1.4.1.1.88.59`), [...kos(B), ...kos(E)].sort());
  assert.deepEqual(await ids(`${P1}&status=current&format=urn:ihe:rad:MADO:fhir-manifest:2026`), [...fhir(B), ...fhir(E)].sort());
  assert.deepEqual(await ids(`${P1}&status=current&format:not=urn:ihe:rad:MADO:fhir-manifest:2026`), [...kos(B), ...kos(E)].sort());
  expectIds(await ids(`${P1}&status=current&format=urn:unknown`));
});

test('identifier: masterIdentifier urn:oid:, bare UID, system|value, quoted (Q13, Q14, Q17)', async () => {
  const sop = E.stored.sopInstanceUid;
  expectIds(await ids(`identifier=urn:ietf:rfc:3986|urn:oid:${sop}`), E);
  expectIds(await ids(`identifier=urn:oid:${sop}`), E);
  expectIds(await ids(`identifier=${sop}`), E);
  expectIds(await ids(`identifier="urn:oid:${sop}"`), E);
  expectIds(await ids(`identifier=urn:ietf:rfc:3986|${sop}`), E);
  expectIds(await ids(`identifier=urn:ietf:rfc:3986|urn:oid:1.2.3.999`));
  expectIds(await ids(`identifier:missing=false&${P1}&status=current`), B, E);
  expectIds(await ids(`identifier:missing=true`));
  expectIds(await ids(`identifier:not=urn:oid:${sop}&${P1}&status=current`), B);
});

test('study-instance-uid, related:identifier, accession-number (MADO, IG example queries)', async () => {
  const st = E.stored.studyInstanceUid;
  expectIds(await ids(`study-instance-uid=urn:oid:${st}`), A, E);
  expectIds(await ids(`study-instance-uid=${st}&status=current`), E);
  expectIds(await ids(`study-instance-uid=urn:dicom:uid|urn:oid:${st}&status=current`), E);
  expectIds(await ids(`study-instance-uid=urn:dicom:uid|${st}&status=current`), E);
  expectIds(await ids(`study-instance-uid=urn:oid:${st}&status=superseded`), A);
  expectIds(await ids(`study-instance-uid=1.2.999.1`));
  expectIds(await ids(`related:identifier=urn:oid:${st}&status=current`), E);
  expectIds(await ids(`related:identifier="ACC-D"`), D);
  expectIds(await ids(`related=ImagingStudy/x`));
  assert.deepEqual(await ids(`related:identifier=urn:oid:${st}&format=urn:ihe:rad:MADO:fhir-manifest:2026&status=current`), [E.stored.fhirDocRefId]);
  expectIds(await ids(`accession-number="ACC-D"`), D);
  expectIds(await ids(`accession-number=|ACC-D`), D);
  expectIds(await ids(`accession-number=ACC-B`), B);
  expectIds(await ids(`accession-number=urn:oid:7.7|ACC-D`));
  expectIds(await ids(`accession-number=ACC-A,ACC-C&status=current`), C, E);
});

test('modality, anatomical-region / bodysite alias (Q16), event; :missing, :not', async () => {
  const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
  expectIds(await ids(`${P1}&modality=MR`), B);
  expectIds(await ids(`${P1}&modality=${DCM}|CT`), A, E);
  expectIds(await ids(`${P1}&modality=${DCM}|`), A, B, E);
  expectIds(await ids(`${P1}&modality=http://other|CT`));
  expectIds(await ids(`${P1}&modality:not=CT`), B);
  expectIds(await ids(`${P1}&modality:missing=false`), A, B, E);
  expectIds(await ids(`${P1}&modality:missing=true`));
  expectIds(await ids(`${P1}&anatomical-region=http://snomed.info/sct|69536005`), A, B, E);
  expectIds(await ids(`${P1}&bodysite=69536005`), A, B, E);
  expectIds(await ids(`${P1}&anatomical-region=51185008`));
  expectIds(await ids(`${P1}&event=MR`), B);
  expectIds(await ids(`${P1}&event=69536005&modality=MR`), B);
});

test('category, type, setting, facility, security-label (deployment defaults)', async () => {
  expectIds(await ids(`${P1}&category=http://loinc.org|18748-4`), A, B, E);
  expectIds(await ids(`${P1}&category=http://loinc.org|11111-1`));
  expectIds(await ids(`${P1}&type=18748-4`), A, B, E);
  expectIds(await ids(`${P1}&type=http://snomed.info/sct|18748-4`));
  expectIds(await ids(`${P1}&setting=http://snomed.info/sct|394914008`), A, B, E);
  expectIds(await ids(`${P1}&setting=1`));
  expectIds(await ids(`${P1}&facility=79491001`), A, B, E);
  expectIds(await ids(`${P1}&facility=2`));
  expectIds(await ids(`${P1}&security-label=N`));
  expectIds(await ids(`${P1}&security-label:missing=true`), A, B, E);
});

test('creation: every prefix with FHIR precision (study 2024-01-15T10:10:10+01:00)', async () => {
  const q = (v: string) => ids(`${P1}&status=current&creation=${encodeURIComponent(v)}`);
  expectIds(await q('2024-01-15'), E);
  expectIds(await q('eq2024-01'), E);
  expectIds(await q('eq2024'), E);
  expectIds(await q('2024-01-15T09:10:10Z'), E);
  expectIds(await q('2024-01-15T10:10:10+01:00'), E);
  expectIds(await q('2024-01-15T10:10+01:00'), E);
  expectIds(await q('2024-01-15T09:10:11Z'));
  expectIds(await q('ne2024'), B);
  expectIds(await q('lt2024-01-15'), B);
  expectIds(await q('le2024-01-15'), B, E);
  expectIds(await q('gt2024-01-15'));
  expectIds(await q('gt2024-01-14'), E);
  expectIds(await q('ge2024-01-15'), E);
  expectIds(await q('sa2023'), E);
  expectIds(await q('eb2024'), B);
  expectIds(await ids(`${P1}&status=current&creation=ge2023-01-01&creation=lt2024-01-01`), B);
  expectIds(await q('2023-06-01,2024-01-15'), B, E);
  expectIds(await ids(`${P1}&creation:missing=false&status=current`), B, E);
});

test('period: interval overlap; a start-only period is an instant', async () => {
  const q = (v: string) => ids(`${P1}&status=current&${v}`);
  expectIds(await q('period=ge2024-01-01&period=lt2024-02-01'), E);
  expectIds(await q('period=ge2023-01-01&period=lt2025-01-01'), B, E);
  expectIds(await q('period=2024-01-15'), E);
  expectIds(await q('period=ne2024-01-15'), B);
  expectIds(await q('period=gt2024-01-15'));
  expectIds(await q('period=le2023-06-01'), B);
  expectIds(await q('period=lt2023-06-01'));
  expectIds(await q('period=sa2023-12-31'), E);
  expectIds(await q('period=eb2023-06-02'), B);
});

test('date and _lastUpdated (docref creation = stored now, Q29); _id', async () => {
  const today = new Date().toISOString().slice(0, 10);
  expectIds(await ids(`${P1}&date=ge${today}`), A, B, E);
  expectIds(await ids(`${P1}&date=lt2000`));
  expectIds(await ids(`${P1}&date=${today}`), A, B, E);
  expectIds(await ids(`${P1}&_lastUpdated=gt2000-01-01T00:00:00Z`), A, B, E);
  expectIds(await ids(`${P1}&_lastUpdated=lt2000-01-01`));
  assert.deepEqual(await ids(`_id=${E.stored.kosDocRefId}`), [E.stored.kosDocRefId]);
  assert.deepEqual(await ids(`_id=${E.stored.kosDocRefId},${B.stored.fhirDocRefId}`), [B.stored.fhirDocRefId, E.stored.kosDocRefId].sort());
  expectIds(await ids(`_id=nothing`));
});

test('author.given / author.family: index-served string search on contained person authors; default folded prefix, :exact', async () => {
  // MADO docrefs name a Device and an Organization (decisions.md D30): no person name matches.
  for (const q of ['author.family=a', 'author.given=a', 'author.family=unknown', 'author.family:exact=unknown']) expectIds(await ids(`${P1}&${q}`));
  // The docref's source patient is contained too, but is not an author: its name never matches.
  const srcFamily: string = (await search(`_id=${B.stored.kosDocRefId}`)).body.entry[0].resource.contained.find((c: any) => c.resourceType === 'Patient').name[0].family;
  expectIds(await ids(`${P1}&author.family=${encodeURIComponent(srcFamily)}`));
  // Person authors written into stored docrefs (as a docref with MHD Comprehensive authors would be):
  // the generated author_terms column (migration 0005) follows every update of the resource.
  const [kosB, fhirB, kosE] = [B.stored.kosDocRefId, B.stored.fhirDocRefId, E.stored.kosDocRefId];
  const saved = (await t.tdb.db.raw('select id, resource from document_reference where id = any(?::text[])', [[kosB, fhirB, kosE]])).rows as Array<{ id: string; resource: unknown }>;
  const addAuthor = (id: string, contained: unknown, author: unknown[]) =>
    t.tdb.db.raw(`update document_reference set resource = jsonb_set(jsonb_set(resource, '{contained}', resource->'contained' || ?::jsonb), '{author}', resource->'author' || ?::jsonb) where id = ?`, [JSON.stringify([contained]), JSON.stringify(author), id]);
  try {
    await addAuthor(kosB, { resourceType: 'Practitioner', id: 'pr', name: [{ family: 'Smithson', given: ['John', 'Q'] }] }, [{ reference: '#pr', type: 'Practitioner' }]);
    await addAuthor(fhirB, { resourceType: 'Practitioner', id: 'pr2', name: [{ family: 'Ølsen-Müller', given: ['José'] }, { family: 'Olsen' }] }, [{ reference: '#pr2' }]);
    // Non-matching: a contained Practitioner no author points at.
    await addAuthor(kosE, { resourceType: 'Practitioner', id: 'bystander', name: [{ family: 'Smithers', given: ['John'] }] }, []);
    const q = (v: string) => ids(`${P1}&${v}`);
    // default: starts-with on each value, case- and accent-insensitive (FHIR 3.1.1.4.7)
    assert.deepEqual(await q('author.family=smith'), [kosB]);
    assert.deepEqual(await q('author.family=SMITHSON'), [kosB]);
    assert.deepEqual(await q('author.family=son'), []); // not a substring match
    assert.deepEqual(await q('author.family=smithsonian'), []);
    assert.deepEqual(await q('author.given=jo'), [kosB, fhirB].sort());
    assert.deepEqual(await q('author.given=jose'), [fhirB]);
    assert.deepEqual(await q(`author.given=${encodeURIComponent('JOSÉ')}`), [fhirB]);
    assert.deepEqual(await q('author.given=q'), [kosB]); // second given name
    assert.deepEqual(await q(`author.family=${encodeURIComponent('ølsen-mu')}`), [fhirB]);
    assert.deepEqual(await q(`author.family=${encodeURIComponent('ØLSEN')}`), [fhirB]);
    assert.deepEqual(await q('author.family=olsen'), [fhirB]); // second HumanName
    // :exact: whole value, case- and accent-sensitive
    assert.deepEqual(await q('author.given:exact=John'), [kosB]);
    assert.deepEqual(await q('author.given:exact=john'), []);
    assert.deepEqual(await q('author.given:exact=Jo'), []);
    assert.deepEqual(await q(`author.given:exact=${encodeURIComponent('José')}`), [fhirB]);
    assert.deepEqual(await q('author.given:exact=Jose'), []);
    assert.deepEqual(await q(`author.family:exact=${encodeURIComponent('Ølsen-Müller')}`), [fhirB]);
    // comma = OR, repetition = AND; combined with other parameters
    assert.deepEqual(await q('author.family=smith,olsen'), [kosB, fhirB].sort());
    assert.deepEqual(await q('author.family=smith&author.given=john'), [kosB]);
    assert.deepEqual(await q('author.family=smith&author.given=jose'), []);
    assert.deepEqual(await q('author.given=jo&format=urn:ihe:rad:MADO:fhir-manifest:2026'), [fhirB]);
    assert.deepEqual(await q('author.family=smithers'), []); // the bystander Practitioner
    await search(`${P1}&author.given:contains=jo`, 400);
    // the generated column holds the exact and the folded-prefix forms
    const stored = (await t.tdb.db.raw('select author_terms from document_reference where id = ?', [kosB])).rows[0].author_terms as string[];
    assert.ok(stored.includes('family=Smithson') && stored.includes('given:jo'), stored.join(' '));
  } finally {
    for (const r of saved) await t.tdb.db.raw('update document_reference set resource = ?::jsonb where id = ?', [JSON.stringify(r.resource), r.id]);
  }
  assert.deepEqual(await ids(`${P1}&author.family=smith`), []);
});

test('identifier: every identifier of every docref (uniqueId and per-docref entryUUID), all token forms (ITI-67, Q13, Q14)', async () => {
  const RFC = 'urn:ietf:rfc:3986';
  const all = (await search(`${P1}&status=current,superseded`)).body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource);
  assert.equal(all.length, 6);
  for (const r of all) {
    for (const i of [r.masterIdentifier, ...r.identifier]) {
      // the docref itself is among the matches of system|value and of value
      for (const v of [`${i.system}|${i.value}`, i.value]) assert.ok((await ids(`identifier=${encodeURIComponent(v)}&status=current,superseded`)).includes(r.id), `${r.id} by ${v}`);
    }
  }
  const entryUuid = (r: any) => r.identifier.find((i: any) => i.type?.coding?.[0]?.code === 'entryUUID').value as string;
  const kosE = all.find((r: any) => r.id === E.stored.kosDocRefId);
  const fhirB = all.find((r: any) => r.id === B.stored.fhirDocRefId);
  const kosA = all.find((r: any) => r.id === A.stored.kosDocRefId);
  const u = entryUuid(kosE);
  assert.match(u, /^urn:uuid:[0-9a-f-]{36}$/);
  assert.notEqual(u, entryUuid(all.find((r: any) => r.id === E.stored.fhirDocRefId)), 'each docref has its own entryUUID');
  const bare = u.slice('urn:uuid:'.length);
  // entryUUID: only that one docref, in every spelling
  for (const v of [`${RFC}|${u}`, u, bare, bare.toUpperCase(), `${RFC}|${bare}`, `"${u}"`]) assert.deepEqual(await ids(`identifier=${encodeURIComponent(v)}`), [E.stored.kosDocRefId], v);
  // non-matching: |value means "no system" (these identifiers have one), another system, another uuid
  for (const v of [`|${u}`, `http://other.example|${u}`, 'urn:uuid:00000000-0000-4000-8000-000000000000', `${RFC}|urn:oid:1.2.3.999`, `|urn:oid:${E.stored.sopInstanceUid}`]) {
    assert.deepEqual(await ids(`identifier=${encodeURIComponent(v)}`), [], v);
  }
  // system| : every docref with an identifier of that system
  expectIds(await ids(`${P1}&status=current&identifier=${RFC}|`), B, E);
  expectIds(await ids(`${P1}&status=current&identifier=http://other.example|`));
  // OR, AND, :not
  assert.deepEqual(await ids(`identifier=${u},${entryUuid(fhirB)}`), [E.stored.kosDocRefId, B.stored.fhirDocRefId].sort());
  assert.deepEqual(await ids(`identifier=${u}&identifier=urn:oid:${E.stored.sopInstanceUid}`), [E.stored.kosDocRefId]);
  assert.deepEqual(await ids(`identifier=${u}&identifier=urn:oid:${B.stored.sopInstanceUid}`), []);
  assert.deepEqual(await ids(`${P1}&status=current&identifier:not=${u}`), [B.stored.kosDocRefId, B.stored.fhirDocRefId, E.stored.fhirDocRefId].sort());
  // A was superseded by E after ingest: its re-rendered docref (status update) keeps its identifiers searchable
  assert.deepEqual(await ids(`identifier=${entryUuid(kosA)}&status=superseded`), [A.stored.kosDocRefId]);
  assert.deepEqual(await ids(`identifier=${entryUuid(kosA)}&status=current`), []);
});

test('related: ImagingStudy reference (relative, absolute) = the documents of that study; :identifier unchanged', async () => {
  const study = (r: IngestResult) => `study-${r.stored.binaryId.slice(4)}`;
  // the ImagingStudy behind the reference carries the identifier the docrefs' context.related names
  const is = (await request(t.app).get(`/fhir/ImagingStudy/${study(E)}`).expect(200)).body;
  const docref = (await search(`_id=${E.stored.fhirDocRefId}`)).body.entry[0].resource;
  assert.equal(docref.context.related[0].identifier.value, is.identifier[0].value);
  expectIds(await ids(`related=ImagingStudy/${study(E)}&status=current`), E);
  expectIds(await ids(`related=ImagingStudy/${study(E)}`), A, E); // every version of the study
  expectIds(await ids(`related=http://gateway.test/fhir/ImagingStudy/${study(E)}&status=superseded`), A);
  expectIds(await ids(`related=${study(E)}&status=current`), E);
  expectIds(await ids(`related=ImagingStudy/${study(B)},ImagingStudy/${study(D)}`), B, D);
  expectIds(await ids(`related=ImagingStudy/${study(F)}&status=entered-in-error`), F);
  assert.deepEqual(await ids(`related=ImagingStudy/${study(E)}&format=urn:ihe:rad:MADO:fhir-manifest:2026&status=current`), [E.stored.fhirDocRefId]);
  // non-matching: a superseded manifest's ImagingStudy (read → 404) resolves to nothing; other types and unknown ids
  await request(t.app).get(`/fhir/ImagingStudy/${study(A)}`).expect(404);
  expectIds(await ids(`related=ImagingStudy/${study(A)}`));
  expectIds(await ids(`related=ServiceRequest/${study(E)}`));
  expectIds(await ids('related=ImagingStudy/study-00000000000000000000000000000000'));
  expectIds(await ids(`related=ImagingStudy/${study(C)}&${P1}`)); // another patient's study, AND patient
  const bad = await search('related=not%20a%20reference', 400);
  assert.deepEqual(bad.body.issue[0].expression, ['related']);
});

test('targetCommunityIdList (MHD Target Communities Option, not implemented): warning, ignored; 400 under handling=strict', async () => {
  const res = await search(`${P1}&status=current&targetCommunityIdList=urn:oid:1.2.3.4`);
  expectIds(matchIds(res), B, E);
  const oo = res.body.entry.find((e: any) => e.search.mode === 'outcome').resource;
  assert.equal(oo.issue[0].severity, 'warning');
  assert.equal(oo.issue[0].code, 'not-supported');
  assert.deepEqual(oo.issue[0].expression, ['targetCommunityIdList']);
  assert.match(oo.issue[0].details.text, /not supported/);
  const strict = await request(t.app).get(`/fhir/DocumentReference?${P1}&targetCommunityIdList=urn:oid:1.2.3.4`).set('Prefer', 'handling=strict').expect(400);
  assert.equal(strict.body.issue[0].details.coding[0].code, 'GW_SEARCH_UNKNOWN_PARAM');
  assert.deepEqual(strict.body.issue[0].expression, ['targetCommunityIdList']);
  const list = await request(t.app).get('/fhir/List?targetCommunityIdList=urn:oid:1.2.3.4').expect(200);
  assert.ok(list.body.entry.some((e: any) => e.search.mode === 'outcome' && e.resource.issue[0].expression[0] === 'targetCommunityIdList'));
  // the CapabilityStatement says so, and does not list it as a search parameter
  const cs = (await request(t.app).get('/fhir/metadata').expect(200)).body;
  const dr = cs.rest[0].resource.find((r: any) => r.type === 'DocumentReference');
  assert.ok(!dr.searchParam.some((p: any) => p.name === 'targetCommunityIdList'));
  assert.match(dr.documentation, /not supported.*targetCommunityIdList/);
});

test('unknown parameters: warning outcome entry; Prefer handling=strict → 400; chains → 400', async () => {
  const res = await search(`${P1}&status=current&foo=bar`);
  const oo = res.body.entry.find((e: any) => e.search.mode === 'outcome');
  assert.equal(oo.resource.resourceType, 'OperationOutcome');
  assert.equal(oo.resource.issue[0].severity, 'warning');
  assert.deepEqual(oo.resource.issue[0].expression, ['foo']);
  assert.equal(matchIds(res).length, 4);
  const strict = await request(t.app).get(`/fhir/DocumentReference?${P1}&foo=bar`).set('Prefer', 'handling=strict').expect(400);
  assert.equal(strict.body.issue[0].details.coding[0].code, 'GW_SEARCH_UNKNOWN_PARAM');
  assert.deepEqual(strict.body.issue[0].expression, ['foo']);
  const chain = await search(`patient.name=x`, 400);
  assert.equal(chain.body.issue[0].details.coding[0].code, 'GW_SEARCH_CHAIN');
  await search(`_has:List:item:code=x`, 400);
});

test('invalid values → 400 naming the parameter', async () => {
  for (const [q, param] of [
    ['creation=2024-13-01', 'creation'],
    ['date=xx2024', 'date'],
    ['period=yesterday', 'period'],
    ['_count=abc', '_count'],
    ['_total=maybe', '_total'],
    ['status:text=current', 'status:text'],
    ['modality:missing=maybe', 'modality:missing'],
    ['_sort=title', '_sort'],
    ['_cursor=!!!', '_cursor'],
    ['patient=a/b/c?', 'patient'],
  ] as const) {
    const res = await search(q, 400);
    assert.deepEqual(res.body.issue[0].expression, [param], q);
  }
});

test('_count clamp with warning, _total, _summary=count, _count=0', async () => {
  const res = await search(`${P1}&_count=100000`);
  const oo = res.body.entry.find((e: any) => e.search.mode === 'outcome');
  assert.equal(oo.resource.issue[0].code, 'too-costly');
  assert.deepEqual(oo.resource.issue[0].expression, ['_count']);
  assert.equal((await search(`${P1}&_total=accurate`)).body.total, 6);
  assert.equal(typeof (await search(`${P1}&_total=estimate`)).body.total, 'number');
  assert.equal((await search(`${P1}`)).body.total, undefined);
  const c = await search(`${P1}&_summary=count`);
  assert.equal(c.body.total, 6);
  assert.equal(c.body.entry, undefined);
  assert.equal((await search(`${P1}&_count=0`)).body.total, 6);
});

test('paging: _count=1 walks every match once via next links (absolute, on publicBaseUrl)', async () => {
  let res = await search(`${P1}&_count=1`);
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    seen.push(...matchIds(res));
    const next = res.body.link.find((l: any) => l.relation === 'next');
    if (!next) break;
    assert.ok(next.url.startsWith('http://gateway.test/fhir/DocumentReference?'), next.url);
    res = await request(t.app).get(next.url.slice('http://gateway.test'.length)).expect(200);
  }
  assert.deepEqual(seen.sort(), [A, B, E].flatMap(docs).sort());
  assert.equal(new Set(seen).size, seen.length);
});

test('_sort date / -date / _lastUpdated / creation with id tiebreak', async () => {
  const order = async (s: string) => matchIds(await search(`${P1}&status=current&_sort=${s}`)) && (await search(`${P1}&status=current&_sort=${s}`)).body.entry.map((e: any) => e.resource.id);
  const byCreation = await order('creation');
  assert.deepEqual(byCreation.slice(0, 2).sort(), docs(B).sort());
  const byCreationDesc = await order('-creation');
  assert.deepEqual(byCreationDesc.slice(0, 2).sort(), docs(E).sort());
  const d = await order('date');
  assert.equal(d.length, 4);
  const lu = await order('-_lastUpdated');
  assert.equal(lu.length, 4);
  // Paging with a sort keeps the sort (cursor bound to the sort key)
  const p1 = await search(`${P1}&status=current&_sort=creation&_count=3`);
  const next = p1.body.link.find((l: any) => l.relation === 'next').url;
  assert.match(next, /_sort=creation/);
  const p2 = await request(t.app).get(next.slice('http://gateway.test'.length)).expect(200);
  assert.deepEqual([...matchIds(p1), ...matchIds(p2)].sort(), [B, E].flatMap(docs).sort());
});

test('_elements subsets and tags SUBSETTED; _include=DocumentReference:subject', async () => {
  const res = await search(`${P1}&status=current&_elements=status,subject`);
  const r = res.body.entry[0].resource;
  assert.deepEqual(Object.keys(r).sort(), ['id', 'meta', 'resourceType', 'status', 'subject']);
  assert.ok(r.meta.tag.some((x: any) => x.code === 'SUBSETTED'));
  const inc = await search(`${P1}&status=current&_include=DocumentReference:subject`);
  const included = inc.body.entry.filter((e: any) => e.search.mode === 'include');
  assert.equal(included.length, 1);
  assert.equal(included[0].resource.resourceType, 'Patient');
  assert.equal(included[0].resource.id, E.stored.patientId);
  const bad = await search(`${P1}&_include=DocumentReference:author`);
  assert.ok(bad.body.entry.some((e: any) => e.search.mode === 'outcome'));
});

test('POST _search (form) = GET; wrong content type → 415', async () => {
  const res = await request(t.app).post('/fhir/DocumentReference/_search').type('form').send(`patient.identifier=${encodeURIComponent(`${ISS1}|MRN1`)}&status=current`).expect(200);
  expectIds(matchIds(res), B, E);
  await request(t.app).post('/fhir/DocumentReference/_search').set('Content-Type', 'application/fhir+json').send('{}').expect(415);
});

test('XML: _format=xml and Accept application/fhir+xml parse back to the same Bundle', async () => {
  const json = await search(`${P1}&status=current`);
  for (const r of [await request(t.app).get(`/fhir/DocumentReference?${P1}&status=current&_format=xml`), await request(t.app).get(`/fhir/DocumentReference?${P1}&status=current`).set('Accept', 'application/fhir+xml')]) {
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type']!, /application\/fhir\+xml/);
    const back = new Fhir().xmlToObj(r.text) as any;
    assert.equal(back.resourceType, 'Bundle');
    assert.deepEqual(back.entry.map((e: any) => e.resource.id).sort(), matchIds(json));
    assert.equal(back.entry[0].resource.resourceType, 'DocumentReference');
  }
});

test('read: ETag / Last-Modified / If-None-Match 304; unknown 404; audit annotation', async () => {
  const id = E.stored.kosDocRefId;
  const r = await request(t.app).get(`/fhir/DocumentReference/${id}`).expect(200);
  assert.equal(r.body.id, id);
  assert.match(r.headers.etag!, /^W\/"\d+"$/);
  assert.ok(r.headers['last-modified']);
  assert.equal(r.headers.etag, `W/"${r.body.meta.versionId}"`);
  await request(t.app).get(`/fhir/DocumentReference/${id}`).set('If-None-Match', r.headers.etag!).expect(304);
  await request(t.app).get(`/fhir/DocumentReference/nope`).expect(404);
});

test('attachment.url is absolute and resolves (ITI-67 §2:3.67.4.2.2.1.1)', async () => {
  const res = await search(`_id=${E.stored.kosDocRefId},${E.stored.fhirDocRefId}`);
  for (const e of res.body.entry) {
    const url: string = e.resource.content[0].attachment.url;
    assert.ok(url.startsWith('http://gateway.test/fhir/'), url);
    await request(t.app).get(url.slice('http://gateway.test'.length)).expect(200);
  }
});

test('search entries (stored JSON spliced unparsed) equal the read of each DocumentReference, across statuses; XML and _elements agree too', async () => {
  const res = await search(`${P1}&status=current,superseded,entered-in-error`);
  assert.equal(res.headers['content-type'], 'application/fhir+json; charset=utf-8');
  const body = JSON.parse(res.text); // the wire text itself must be valid JSON
  const entries = body.entry.filter((e: any) => e.search.mode === 'match');
  expectIds(entries.map((e: any) => e.resource.id).sort(), A, B, E, F);
  for (const e of entries) {
    assert.equal(Object.keys(e.resource)[0], 'resourceType');
    const read = await request(t.app).get(`/fhir/DocumentReference/${e.resource.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(e.resource, read.body, e.resource.id);
    assert.equal(e.resource.meta.versionId, read.headers.etag.replace(/^W\/"(.*)"$/, '$1'));
  }
  // the object path (XML) carries the same resources
  const xml = await request(t.app).get(`/fhir/DocumentReference?${P1}&status=current,superseded,entered-in-error`).set('Accept', 'application/fhir+xml');
  const fromXml = new Fhir().xmlToObj(xml.text) as any;
  const byId = new Map(entries.map((e: any) => [e.resource.id, e.resource]));
  for (const e of fromXml.entry.filter((x: any) => x.search?.mode === 'match')) assert.deepEqual(e.resource.meta, (byId.get(e.resource.id) as any).meta);
  // client text cannot inject a splice: a parameter value shaped like the placeholder stays text
  const odd = await search(`${P1}&status=current&x-unknown=%00gw-raw:abc:0`);
  assert.ok(JSON.parse(odd.text).entry.some((e: any) => e.search.mode === 'outcome'));
});
