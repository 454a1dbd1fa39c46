import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { parseImportArgs } from '../../src/cli/import.js';
import { contentTypeOf as parseContentType, parseMultipart } from '../../src/ingest/multipart.js';
import { withoutInstances } from '../../src/ingest/service.js';
import { syntheticManifest } from '../../src/dicom/index.js';
import { issuerToSystem, manifestTokens } from '../../src/fhir/mapping/index.js';
import { intArray, manifestIdFor, textArray } from '../../src/store/manifests.js';
import { GatewayError } from '../../src/http/errors.js';

const config = loadConfig({ PUBLIC_BASE_URL: 'http://gateway.test' });

test('parseContentType: quoted/unquoted params, case, escapes', () => {
  assert.deepEqual(parseContentType('Multipart/Related; Type="application/dicom"; boundary=abc'), { type: 'multipart/related', params: { type: 'application/dicom', boundary: 'abc' } });
  assert.deepEqual(parseContentType('multipart/related;boundary="a;b \\"c\\"";type=application/dicom').params, { boundary: 'a;b "c"', type: 'application/dicom' });
  assert.equal(parseContentType(undefined).type, '');
});

test('parseMultipart: CRLF and LF, preamble, padding, epilogue, empty part, binary bodies', () => {
  const bin = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
  const body = Buffer.concat([Buffer.from('preamble\r\n--XyZ \r\nContent-Type: application/dicom\r\n\r\n'), bin, Buffer.from('\r\n--XyZ\nContent-Type: application/dicom\n\n\n--XyZ--\r\nepilogue')]);
  const parts = parseMultipart(body, 'XyZ');
  assert.equal(parts.length, 2);
  assert.deepEqual([...parts[0]!.body], [...bin]);
  assert.equal(parts[0]!.contentType.type, 'application/dicom');
  assert.equal(parts[1]!.body.length, 0);
});

test('parseMultipart: malformed input is a 400, never a crash', () => {
  const bad = (b: string, boundary = 'x') => assert.throws(() => parseMultipart(Buffer.from(b), boundary), (e: unknown) => e instanceof GatewayError && e.status === 400);
  bad('no boundary here');
  bad('--x\r\nContent-Type: a\r\n\r\nbody without end');
  bad('--x\r\nheaders never end');
  bad('--xgarbage\r\n\r\n--x--');
  bad('--x--', '');
  assert.deepEqual(parseMultipart(Buffer.from('--x--'), 'x'), []);
});

test('token rows: documented codes, UIDs prefixed and bare, defaults, no duplicates', () => {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed: 'tok' });
  const rows = manifestTokens(m, config.documentDefaults, ['wado-1']);
  const keys = rows.map((r) => `${r.code}|${r.system}|${r.value}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(keys.includes(`identifier|urn:ietf:rfc:3986|urn:oid:${m.document.sopInstanceUid}`));
  assert.ok(keys.includes(`identifier||${m.document.sopInstanceUid}`));
  assert.ok(keys.includes(`study-instance-uid|urn:dicom:uid|urn:oid:${m.study.studyInstanceUid}`));
  assert.ok(keys.includes(`study-instance-uid||${m.study.studyInstanceUid}`));
  assert.ok(keys.includes('endpoint||wado-1'));
  assert.ok(keys.includes('type|http://loinc.org|18748-4'));
  assert.ok(!rows.some((r) => r.code === 'security-label'));
});

test('issuerToSystem: ISO → urn:oid:, label otherwise, "" without issuer', () => {
  assert.equal(issuerToSystem({ universalEntityId: '1.2.3', universalEntityIdType: 'ISO', localNamespace: 'H' }), 'urn:oid:1.2.3');
  assert.equal(issuerToSystem({ localNamespace: 'HOSP' }), 'HOSP');
  assert.equal(issuerToSystem(undefined), '');
});

test('array literals escape quotes, backslashes and NULLs', () => {
  assert.equal(textArray(['a', 'b"c', 'd\\e', null, '', 'x,y}']), '{"a","b\\"c","d\\\\e",NULL,"","x,y}"}');
  assert.equal(intArray([1, null, undefined, 2 ** 40, -3]), '{1,NULL,NULL,NULL,-3}');
});

test('manifestIdFor is deterministic', () => {
  assert.equal(manifestIdFor('1.2.3'), manifestIdFor('1.2.3'));
  assert.notEqual(manifestIdFor('1.2.3'), manifestIdFor('1.2.4'));
  assert.match(manifestIdFor('1.2.3'), /^manifest-[0-9a-f]{32}$/);
});

test('withoutInstances: drops rejected instances, empty series and studies; undefined when nothing remains', () => {
  const m = syntheticManifest({ series: 2, instancesPerSeries: 2, seed: 'rej' });
  const s0 = m.evidence[0]!.series[0]!;
  const rej = new Set(s0.instances.map((i) => i.sopInstanceUid));
  const n = withoutInstances(m, rej, '1.2.3.4', '+0000')!;
  assert.equal(n.evidence[0]!.series.length, 1);
  assert.equal(n.document.sopInstanceUid, '1.2.3.4');
  assert.equal(m.evidence[0]!.series.length, 2, 'input untouched');
  const all = new Set(m.evidence.flatMap((e) => e.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid))));
  assert.equal(withoutInstances(m, all, '1.2.3.5', '+0000'), undefined);
});

test('import CLI arguments', () => {
  const o = parseImportArgs(['a', 'b', '--url', 'http://h:1/fhir/', '--concurrency=3', '--token', 't'], {});
  assert.deepEqual(o, { paths: ['a', 'b'], url: 'http://h:1', token: 't', concurrency: 3 });
  assert.equal(parseImportArgs(['a', '--url', 'http://h'], { MADO_TOKEN: 'env' }).token, 'env');
  for (const bad of [[], ['a'], ['a', '--url'], ['a', '--url', 'nope'], ['a', '--url', 'http://h', '--concurrency', '99'], ['a', '--url', 'http://h', '--what']]) {
    assert.throws(() => parseImportArgs(bad, {}));
  }
});
