/**
 * Search syntax and planning (decisions.md D44): token forms, escaped commas, quotes, date precision
 * and prefixes, unknown/chained parameters, _count clamp, cursors; compiled SQL carries values
 * only as bindings (what the SQL returns is tested against PostgreSQL: search-sql.int.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDate, parseQueryString, parseReference, parseToken, splitOr } from '../../src/fhir/search/parse.js';
import { decodeCursor, encodeCursor, planSearch } from '../../src/fhir/search/plan.js';
import { compileCount, compileSearch } from '../../src/store/search-sql.js';

const O = { strict: false, defaultCount: 20, maxCount: 100 };
const plan = (qs: string, o = O) => planSearch('DocumentReference', parseQueryString(qs), o);

test('token forms: value, system|value, |value, system|, escapes and quotes (Q17)', () => {
  assert.deepEqual(parseToken('ap123456', 'x'), { value: 'ap123456' }); // no prefix guessing (decisions.md D45)
  assert.deepEqual(parseToken('urn:oid:1.2|MRN42', 'x'), { system: 'urn:oid:1.2', value: 'MRN42' });
  assert.deepEqual(parseToken('|MRN42', 'x'), { system: '', value: 'MRN42' });
  assert.deepEqual(parseToken('http://loinc.org|', 'x'), { system: 'http://loinc.org' });
  assert.deepEqual(parseToken('a\\|b|c', 'x'), { system: 'a|b', value: 'c' });
  assert.deepEqual(parseToken('"12345"', 'x'), { value: '12345' });
  assert.deepEqual(parseToken('sys|"12345"', 'x'), { system: 'sys', value: '12345' });
  assert.throws(() => parseToken('|', 'x'));
  assert.deepEqual(splitOr('a,b\\,c,d'), ['a', 'b\\,c', 'd']);
});

test('query string: modifiers, + as space, repetitions kept, bad percent-encoding → 400', () => {
  assert.deepEqual(parseQueryString('a:missing=true&b=x+y&b=z'), [
    { name: 'a', modifier: 'missing', value: 'true' },
    { name: 'b', value: 'x y' },
    { name: 'b', value: 'z' },
  ]);
  assert.throws(() => parseQueryString('a=%E0%A4%A'), /percent-encoding/);
});

test('dates: precision ranges and prefixes', () => {
  assert.deepEqual(parseDate('2024', 'd'), { prefix: 'eq', lo: '2024-01-01T00:00:00.000Z', hi: '2025-01-01T00:00:00.000Z' });
  assert.deepEqual(parseDate('ge2024-02', 'd'), { prefix: 'ge', lo: '2024-02-01T00:00:00.000Z', hi: '2024-03-01T00:00:00.000Z' });
  assert.deepEqual(parseDate('2024-12-31', 'd'), { prefix: 'eq', lo: '2024-12-31T00:00:00.000Z', hi: '2025-01-01T00:00:00.000Z' });
  assert.deepEqual(parseDate('lt2024-01-15T10:10:10+01:00', 'd'), { prefix: 'lt', lo: '2024-01-15T09:10:10.000Z', hi: '2024-01-15T09:10:11.000Z' });
  assert.deepEqual(parseDate('2024-01-15T10:10Z', 'd'), { prefix: 'eq', lo: '2024-01-15T10:10:00.000Z', hi: '2024-01-15T10:11:00.000Z' });
  assert.equal(parseDate('2024-01-15T10:10:10.5Z', 'd').hi, '2024-01-15T10:10:10.600Z');
  for (const bad of ['2024-13', '2024-02-30', 'ap2024', '24', '2024-01-15T25:00Z', 'yesterday']) assert.throws(() => parseDate(bad, 'd'), bad);
});

test('references: id, Type/id, absolute URL, other type → no match', () => {
  assert.equal(parseReference('p1', 'patient', 'Patient'), 'p1');
  assert.equal(parseReference('Patient/p1', 'patient', 'Patient'), 'p1');
  assert.equal(parseReference('https://x/fhir/Patient/p1/_history/2', 'patient', 'Patient'), 'p1');
  assert.equal(parseReference('Group/p1', 'patient', 'Patient'), undefined);
  assert.throws(() => parseReference('a b', 'patient', 'Patient'));
});

test('plan: AND of OR, UID forms (Q14), entered-in-error excluded by default, bodysite alias (Q16)', () => {
  const p = plan('patient.identifier=urn:oid:1.2|M1,|M2&study-instance-uid=1.2.3&bodysite=123');
  assert.deepEqual(p.conds[0], { k: 'token', codes: ['patient.identifier'], not: false, or: [{ system: 'urn:oid:1.2', values: ['M1'] }, { system: '', values: ['M2'] }] });
  assert.deepEqual(p.conds[1], { k: 'token', codes: ['study-instance-uid'], not: false, or: [{ values: ['1.2.3', 'urn:oid:1.2.3'] }] });
  assert.deepEqual(p.conds[2], { k: 'token', codes: ['anatomical-region'], not: false, or: [{ values: ['123'] }] });
  assert.deepEqual(p.conds[3], { k: 'column-in', column: 'status', values: ['entered-in-error'], not: true });
  assert.equal(plan('status=current').conds.length, 1);
  assert.deepEqual(plan('format=whatever|1.2.840.10008.5.1.4.1.1.88.59').conds[0], { k: 'column-in', column: 'format', values: ['kos'], not: false });
});

test('plan: unknown → warning (or 400 strict), chains → 400, _count clamp warning, bad modifier → 400', () => {
  const p = plan('foo=1');
  assert.equal(p.warnings[0]!.severity, 'warning');
  assert.throws(() => plan('foo=1', { ...O, strict: true }), (e: any) => e.status === 400 && e.extra.expression[0] === 'foo');
  assert.throws(() => plan('subject.name=x'), (e: any) => e.code === 'GW_SEARCH_CHAIN');
  const c = plan('_count=500');
  assert.equal(c.count, 100);
  assert.equal(c.warnings[0]!.code, 'too-costly');
  assert.throws(() => plan('status:below=x'), (e: any) => e.code === 'GW_SEARCH_MODIFIER');
  assert.throws(() => plan('patient.identifier=M1'), (e: any) => e.code === 'GW_SEARCH_IDENTIFIER_SYSTEM');
  assert.equal(plan('_count=0').summaryCount, true);
  assert.throws(() => plan(`modality=${Array.from({ length: 101 }, (_, i) => `M${i}`).join(',')}`), (e: any) => e.code === 'GW_SEARCH_TOO_COSTLY');
});

test('cursor: opaque round trip, bound to the sort keys; single-value cursors of earlier releases still read', () => {
  const c = encodeCursor({ v: ['2024-01-01 00:00:00.123456+00'], id: 'kos-docref-x' }, '-lastUpdated');
  assert.match(c, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeCursor(c), { v: ['2024-01-01 00:00:00.123456+00'], id: 'kos-docref-x', s: '-lastUpdated' });
  assert.throws(() => plan(`_sort=date&_cursor=${c}`), /does not belong/);
  assert.deepEqual(plan(`_cursor=${c}`).cursor, { v: ['2024-01-01 00:00:00.123456+00'], id: 'kos-docref-x' });
  const old = Buffer.from(JSON.stringify({ v: '2024-01-01 00:00:00+00', id: 'k', s: '-lastUpdated' })).toString('base64url');
  assert.deepEqual(plan(`_cursor=${old}`).cursor, { v: ['2024-01-01 00:00:00+00'], id: 'k' });
  const two = encodeCursor({ v: ['2024-01-02 00:00:00+00', null], id: 'k' }, '-date,lastUpdated');
  assert.deepEqual(plan(`_sort=-date,_lastUpdated&_cursor=${two}`).cursor, { v: ['2024-01-02 00:00:00+00', null], id: 'k' });
  assert.throws(() => plan(`_sort=-date&_cursor=${two}`), /does not belong/);
  assert.throws(() => plan(`_sort=-date,-_lastUpdated&_cursor=${two}`), /does not belong/);
});

test('_sort: several keys in order, - per key; unknown, repeated or empty keys → 400 naming _sort', () => {
  assert.deepEqual(plan('_sort=-date,_lastUpdated').sort, [{ column: 'date', desc: true }, { column: 'lastUpdated', desc: false }]);
  assert.deepEqual(plan('_sort=creation').sort, [{ column: 'creation', desc: false }]);
  assert.deepEqual(plan('status=current').sort, [{ column: 'lastUpdated', desc: true }]);
  for (const bad of ['title', 'date,date', 'date,-date', 'date,', '-', '']) {
    assert.throws(() => plan(`_sort=${bad}`), (e: any) => e.status === 400 && e.extra.expression[0] === '_sort', bad);
  }
});

test('compileSearch: a multi-key cursor travels as bindings (one placeholder per binding), limit + 1 last', () => {
  const p = plan('_sort=-date,creation');
  const q = compileSearch({ table: 'DocumentReference', conds: p.conds, sort: p.sort, cursor: { v: ['2024-01-02T00:00:00Z', '-infinity'], id: 'k' }, limit: 5 }, { all: true });
  assert.ok(!q.sql.includes('2024-01-02') && !q.sql.includes("'k'"));
  assert.equal(q.bindings.at(-1), 6);
  assert.equal((q.sql.match(/\?/g) ?? []).length, q.bindings.length);
});

test('identifier: uniqueId through tokens, entryUUID through entry_uuid; UID/UUID spellings (Q13/Q14), system|, |value, :missing', () => {
  const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
  const RFC = 'urn:ietf:rfc:3986';
  for (const v of [`urn:uuid:${uuid.toUpperCase()}`, uuid, `${RFC}|${uuid}`, `${RFC}|urn:uuid:${uuid}`]) {
    assert.deepEqual(plan(`identifier=${v}`).conds[0], { k: 'docref-identifier', tokens: [], uuids: [`urn:uuid:${uuid}`], not: false }, v);
  }
  assert.deepEqual(plan(`identifier=http://x|urn:uuid:${uuid}`).conds[0], { k: 'docref-identifier', tokens: [], uuids: [], not: false });
  assert.deepEqual(plan(`identifier=${RFC}|1.2.3,urn:uuid:${uuid}`).conds[0], { k: 'docref-identifier', tokens: [{ system: RFC, values: ['1.2.3', 'urn:oid:1.2.3'] }], uuids: [`urn:uuid:${uuid}`], not: false });
  assert.deepEqual(plan(`identifier=${RFC}|`).conds[0], { k: 'docref-identifier', tokens: [{ system: RFC }], uuids: [], not: false });
  assert.deepEqual(plan('identifier=|1.2.3').conds[0], { k: 'docref-identifier', tokens: [], uuids: [], not: false });
  assert.deepEqual(plan('identifier:missing=true').conds[0], { k: 'token-missing', codes: ['identifier'], missing: true });
  assert.equal((plan('identifier:not=x').conds[0] as any).not, true);
});

test('related: ImagingStudy reference → related-study; other targets match nothing', () => {
  assert.deepEqual(plan('related=ImagingStudy/study-ab,http://gw/fhir/ImagingStudy/study-cd').conds[0], { k: 'related-study', ids: ['study-ab', 'study-cd'] });
  assert.deepEqual(plan('related=ServiceRequest/x').conds[0], { k: 'false' });
  assert.deepEqual(plan('related=ImagingStudy/not-a-study').conds[0], { k: 'false' });
  assert.throws(() => plan('related=a b'), (e: any) => e.extra.expression[0] === 'related');
});

test('unsupported MHD parameters (targetCommunityIdList): warning naming it, 400 when strict', () => {
  const p = plan('targetCommunityIdList=urn:oid:1.2.3&status=current');
  assert.equal(p.warnings.length, 1);
  assert.deepEqual(p.warnings[0]!.expression, ['targetCommunityIdList']);
  assert.match(p.warnings[0]!.details!.text!, /not supported.*Target Communities/);
  assert.equal(p.conds.length, 1);
  assert.throws(() => plan('targetCommunityIdList=x', { ...O, strict: true }), (e: any) => e.status === 400 && e.code === 'GW_SEARCH_UNKNOWN_PARAM' && e.extra.expression[0] === 'targetCommunityIdList');
  const l = planSearch('List', parseQueryString('targetCommunityIdList=x'), O);
  assert.deepEqual(l.warnings[0]!.expression, ['targetCommunityIdList']);
});

test('compileSearch: values only in bindings, patient filter inside, keyset after cursor, limit+1', () => {
  const p = plan("patient.identifier=urn:oid:1.2|M1'; drop table x;--&status=current");
  const q = compileSearch({ table: 'DocumentReference', conds: p.conds, sort: p.sort, cursor: { v: ['2024-01-01T00:00:00Z'], id: 'k' }, limit: 20 }, { all: false, patientIds: ['p1'] });
  assert.ok(!q.sql.includes('drop table'));
  assert.ok(!q.sql.includes('M1'));
  assert.equal(q.bindings.at(-1), 21);
  assert.equal((q.sql.match(/\?/g) ?? []).length, q.bindings.length);
  const cnt = compileCount({ table: 'DocumentReference', conds: p.conds }, { all: true });
  assert.equal((cnt.sql.match(/\?/g) ?? []).length, cnt.bindings.length);
});

test('compileSearch: short and long value lists and an empty one all keep one placeholder per binding', () => {
  const p = plan('status=current,superseded');
  const two = compileSearch({ table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: 20 }, { all: false, patientIds: ['p1', 'p2'] });
  const many = Array.from({ length: 17 }, (_, i) => `p${i}`);
  const long = compileSearch({ table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: 20 }, { all: false, patientIds: many });
  const none = compileSearch({ table: 'DocumentReference', conds: p.conds, sort: p.sort, limit: 20 }, { all: false, patientIds: [] });
  for (const q of [two, long, none]) {
    assert.ok(!q.sql.includes('p1') && !q.sql.includes('current'), 'values only as bindings');
    assert.equal((q.sql.match(/\?/g) ?? []).length, q.bindings.length);
  }
});
