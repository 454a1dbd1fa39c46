/**
 * Unit tests for the DICOMweb building blocks: the streaming DICOM header peek, the streaming
 * multipart filter (every chunking), Accept negotiation, metadata rewriting, QIDO parameter
 * parsing and upstream routing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { peekSopInstanceUid } from '../../src/dicom/peek.js';
import { dicomwebAcceptRanges as parseAccept, negotiate } from '../../src/dicomweb/accept.js';
import { decodeBulkToken, etagsOf, pickEncoding, rewriteDataset, rewriteRetrieveUrl, type Dataset } from '../../src/dicomweb/metadata.js';
import { notModified } from '../../src/http/conditional.js';
import { boundaryOf } from '../../src/dicomweb/multipart.js';
import { MultipartFilter } from '../helpers/multipart-filter.js';
import { parseQido } from '../../src/dicomweb/qido.js';
import { UpstreamRegistry } from '../../src/dicomweb/upstream.js';
import type { UpstreamConfig } from '../../src/config.js';
import { dicomPart, multipartBody, splitMultipart } from '../helpers/fake-upstream.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom');
const index = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as { instances: Array<{ file: string; sop: string }> };

describe('peekSopInstanceUid', () => {
  it('finds (0008,0018) in the pydicom fixtures (Explicit and Implicit VR LE, multi-frame)', () => {
    for (const i of index.instances) {
      const r = peekSopInstanceUid(fs.readFileSync(path.join(FIX, i.file)));
      assert.deepEqual(r, { kind: 'found', uid: i.sop, source: '00080018' }, i.file);
    }
  });

  it('answers need-more on every strict prefix that stops before the UID, then found', () => {
    const buf = dicomPart('1.2.3.4', 10, { implicit: true });
    const at = buf.lastIndexOf(Buffer.from('1.2.3.4\0')); // the dataset copy, not (0002,0003)
    for (let n = 0; n < at + 8; n++) assert.equal(peekSopInstanceUid(buf.subarray(0, n)).kind, 'need-more', `prefix ${n}`);
    assert.deepEqual(peekSopInstanceUid(buf.subarray(0, at + 8)), { kind: 'found', uid: '1.2.3.4', source: '00080018' });
  });

  it('skips undefined-length sequences before (0008,0018); falls back to (0002,0003) for deflate; not-found for garbage', () => {
    const base = dicomPart('1.2.840.99', 4);
    const dsStart = base.indexOf(Buffer.from([0x08, 0x00, 0x16, 0x00]), 132);
    // (0008,0006) SQ undefined length with one undefined-length item holding (0008,0100) SH
    const item = Buffer.concat([
      Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x08, 0x00, 0x00, 0x01]), Buffer.from('SH'), Buffer.from([0x02, 0x00]), Buffer.from('AB'),
      Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]),
    ]);
    const sq = Buffer.concat([Buffer.from([0x08, 0x00, 0x06, 0x00]), Buffer.from('SQ'), Buffer.from([0, 0, 0xff, 0xff, 0xff, 0xff]), item, Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0])]);
    const withSq = Buffer.concat([base.subarray(0, dsStart), sq, base.subarray(dsStart)]);
    assert.deepEqual(peekSopInstanceUid(withSq), { kind: 'found', uid: '1.2.840.99', source: '00080018' });
    const deflated = Buffer.from(base.toString('latin1').replace('1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.1.99'), 'latin1');
    assert.deepEqual(peekSopInstanceUid(deflated), { kind: 'found', uid: '1.2.840.99', source: '00020003' });
    assert.equal(peekSopInstanceUid(Buffer.alloc(300, 0x41)).kind, 'not-found');
    assert.equal(peekSopInstanceUid(Buffer.alloc(100)).kind, 'need-more');
  });
});

async function runFilter(body: Buffer, chunk: number, keep: (u: string) => boolean, boundary = 'b0', outBoundary = boundary): Promise<{ out: Buffer; filter: MultipartFilter }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunk) chunks.push(body.subarray(i, i + chunk));
  const filter = new MultipartFilter({ boundary, outBoundary, keep, writeClose: true });
  const out: Buffer[] = [];
  Readable.from(chunks).pipe(filter);
  for await (const c of filter) out.push(c as Buffer);
  return { out: Buffer.concat(out), filter };
}

describe('MultipartFilter', () => {
  const parts = ['1.1', '1.2', '1.3', '1.4'].map((u, i) => dicomPart(u, 100 + i * 777, { implicit: i === 2, fill: 0x2d })); // '-' bytes tempt the delimiter scan
  const body = multipartBody(parts, 'b0');

  it('keeps referenced parts byte-identical for every chunk size (1 … whole body)', async () => {
    const keep = (u: string) => u === '1.2' || u === '1.3';
    for (const chunk of [1, 2, 3, 5, 7, 13, 64, 131, 132, 133, 500, 4096, body.length]) {
      const { out, filter } = await runFilter(body, chunk, keep);
      const got = splitMultipart(out, 'multipart/related; boundary=b0');
      assert.equal(got.length, 2, `chunk ${chunk}`);
      assert.ok(got[0]!.body.equals(parts[1]!) && got[1]!.body.equals(parts[2]!), `chunk ${chunk}`);
      assert.equal(got[0]!.headers, 'Content-Type: application/dicom');
      assert.equal(filter.partsDropped, 2);
    }
  });

  it('all parts kept → output equals input (same boundary); none kept → empty output, started=false', async () => {
    const all = await runFilter(body, 100, () => true);
    assert.ok(all.out.equals(body));
    const none = await runFilter(body, 100, () => false);
    assert.equal(none.out.length, 0);
    assert.equal(await none.filter.started, false);
  });

  it('re-frames under another boundary; tolerates preamble, epilogue, transport padding', async () => {
    const weird = Buffer.concat([Buffer.from('preamble text\r\n'), Buffer.from(body.toString('latin1').replace(/--b0\r\n/g, '--b0  \r\n'), 'latin1'), Buffer.from('epilogue')]);
    const { out } = await runFilter(weird, 17, (u) => u !== '1.1', 'b0', 'gw-xyz');
    const got = splitMultipart(out, 'multipart/related; boundary=gw-xyz');
    assert.equal(got.length, 3);
    assert.ok(got[2]!.body.equals(parts[3]!));
  });

  it('a body without its close delimiter is an error (never a clean-looking truncated multipart)', async () => {
    await assert.rejects(runFilter(body.subarray(0, body.length - 10), 50, () => true), /close delimiter/);
    await assert.rejects(runFilter(Buffer.from('--b0\r\n' + 'x'.repeat(20_000)), 1000, () => true), /headers too large/);
  });

  it('boundaryOf parses quoted and unquoted boundaries', () => {
    assert.equal(boundaryOf('multipart/related; type="application/dicom"; boundary=abc123'), 'abc123');
    assert.equal(boundaryOf('multipart/related;boundary="a b:c";type=application/dicom'), 'a b:c');
    assert.equal(boundaryOf('application/dicom'), undefined);
  });
});

describe('Accept negotiation', () => {
  it('parses quoted/unquoted parameters, q-values, sorts by q', () => {
    const r = parseAccept('image/png;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=*, text/html;q=0');
    assert.deepEqual(r.map((x) => [x.type, x.q]), [['multipart/related', 1], ['image/png', 0.5], ['text/html', 0]]);
    assert.equal(r[0]!.params.type, 'application/dicom');
    assert.equal(r[0]!.params['transfer-syntax'], '*');
  });

  it('instances: multipart/related with type application/dicom (quoted or not), */*, missing header', () => {
    assert.equal(negotiate('instances', undefined), 'multipart/related; type="application/dicom"');
    assert.equal(negotiate('instances', 'multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50'), 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50');
    assert.equal(negotiate('instances', 'multipart/related'), 'multipart/related; type="application/dicom"');
    assert.throws(() => negotiate('instances', 'application/dicom'), { status: 406 });
    assert.throws(() => negotiate('instances', 'multipart/related; type="application/dicom"; transfer-syntax=bogus'), { status: 400 });
  });

  it('metadata/search, rendered, frames, bulkdata allow-lists', () => {
    assert.equal(negotiate('metadata', 'application/json'), 'application/dicom+json');
    assert.throws(() => negotiate('metadata', 'multipart/related; type="application/dicom+xml"'), { status: 406 });
    assert.equal(negotiate('rendered', 'image/png, image/jpeg;q=0.8'), 'image/png, image/jpeg; q=0.8');
    assert.equal(negotiate('rendered', '*/*'), 'image/jpeg');
    assert.throws(() => negotiate('rendered', 'application/pdf'), { status: 406 });
    assert.equal(negotiate('frames', 'multipart/related; type="image/jls"'), 'multipart/related; type="image/jls"');
    assert.equal(negotiate('bulkdata', 'application/octet-stream'), 'application/octet-stream');
    assert.throws(() => negotiate('frames', 'text/plain'), { status: 406 });
  });
});

describe('metadata rewriting', () => {
  const up = 'http://pacs.internal:8042/dicom-web';
  it('BulkDataURI: Orthanc form kept readable, other forms as opaque tokens, foreign hosts dropped; RetrieveURL → gateway', () => {
    const ds: Dataset = {
      '00080018': { vr: 'UI', Value: ['1.3'] },
      '0020000D': { vr: 'UI', Value: ['1.1'] },
      '0020000E': { vr: 'UI', Value: ['1.2'] },
      '00081190': { vr: 'UR', Value: [`${up}/studies/1.1/series/1.2`] },
      '7FE00010': { vr: 'OB', BulkDataURI: `${up}/studies/1.1/series/1.2/instances/1.3/bulk/7fe00010` },
      '00420011': { vr: 'OB', BulkDataURI: `bulk/00420011` },
      '00091001': { vr: 'OB', BulkDataURI: `http://evil.example/studies/1.1/series/1.2/instances/1.3/bulk/7fe00010` },
      '00091002': { vr: 'OB', BulkDataURI: `${up}/studies/1.1/series/1.2/instances/9.9/bulk/7fe00010` },
      '00400275': { vr: 'SQ', Value: [{ '00091003': { vr: 'OB', BulkDataURI: `${up}/studies/1.1/series/1.2/instances/1.3/bulkdata/x?offset=1&length=2` } }] },
    };
    rewriteDataset(ds, 'https://gw', up, `${up}/studies/1.1/series/1.2/instances/1.3/metadata`);
    assert.equal(ds['7FE00010']!.BulkDataURI, 'https://gw/dicomweb/studies/1.1/series/1.2/instances/1.3/bulk/7fe00010');
    assert.equal(ds['00420011']!.BulkDataURI, 'https://gw/dicomweb/studies/1.1/series/1.2/instances/1.3/bulk/00420011', 'relative URI resolved');
    assert.equal(ds['00091001'], undefined, 'another host: the attribute is dropped, not left without a value');
    assert.equal(ds['00091002'], undefined, 'another instance');
    const tok = ((ds['00400275']!.Value![0] as Dataset)['00091003']!.BulkDataURI!).split('/bulk/')[1]!;
    assert.equal(decodeBulkToken(tok), '/bulkdata/x?offset=1&length=2');
    assert.deepEqual(ds['00081190']!.Value, ['https://gw/dicomweb/studies/1.1/series/1.2']);
    assert.equal(rewriteRetrieveUrl('http://x/wado?requestType=WADO', 'https://gw'), undefined);
  });

  it('forged bulk tokens are refused', () => {
    for (const rest of ['/../x', '/a/../../b', '/%2e%2e/x', 'x', '/a\\b', '/a b']) assert.equal(decodeBulkToken('~' + Buffer.from(rest).toString('base64url')), undefined, rest);
    assert.equal(decodeBulkToken('~!!'), undefined);
  });

  it('Accept-Encoding and If-None-Match', () => {
    assert.equal(pickEncoding('gzip, deflate, br'), 'br');
    assert.equal(pickEncoding('gzip;q=1, br;q=0'), 'gzip');
    assert.equal(pickEncoding('identity'), undefined);
    assert.equal(pickEncoding('*'), 'br');
    assert.ok(notModified('W/"m-abc-gz"', ...etagsOf('"m-abc"')));
    assert.ok(notModified('"x", "m-abc"', ...etagsOf('"m-abc"')));
    assert.ok(!notModified('"m-abd"', ...etagsOf('"m-abc"')));
  });
});

describe('QIDO parameter parsing', () => {
  it('keywords and tags, lists, ranges, universal matching, limit capping', () => {
    const p = parseQido('PatientName=Doe*&0020000D=1.2,1.3&StudyDate=20200101-&ModalitiesInStudy=CT%5CMR&PatientID=*&limit=5000&includefield=00081030,all', 'study');
    assert.equal(p.criteria.patientName, 'Doe*');
    assert.deepEqual(p.criteria.studyUids, ['1.2', '1.3']);
    assert.deepEqual(p.criteria.studyDate, { from: '20200101', to: undefined });
    assert.deepEqual(p.criteria.modalitiesInStudy, ['CT', 'MR']);
    assert.equal(p.criteria.patientId, undefined);
    assert.equal(p.limit, 1000);
    assert.equal(p.capped, true);
    assert.ok(p.includeAll && p.include.has('00081030'));
    assert.equal(parseQido('limit=10', 'study').capped, false);
  });
  it('rejects unsupported keys and bad values', () => {
    for (const q of ['Foo=1', 'StudyDate=2020', 'SeriesInstanceUID=1.2.03', 'limit=1.5', 'offset=-1', 'Modality=c t', 'PatientName=' + 'x'.repeat(400)]) {
      assert.throws(() => parseQido(q, 'study'), { status: 400 }, q);
    }
  });
});

describe('upstream routing', () => {
  const cfg = (name: string, url: string, extra: Partial<UpstreamConfig> = {}): UpstreamConfig => ({ name, url, auth: { type: 'none' }, retrieveLocationUids: [], retrieveUrlPrefixes: [], aeTitles: [], maxConnections: 2, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, ...extra });
  const reg = new UpstreamRegistry([
    cfg('a', 'http://a.internal/dicom-web', { retrieveUrlPrefixes: ['https://public-a.example/wado'] }),
    cfg('b', 'http://b.internal/dicomweb', { retrieveLocationUids: ['1.2.3.99'] }),
    cfg('c', 'http://c.internal/dicomweb', { retrieveAeTitles: ['ARCHIVE_C'] }),
    cfg('default', 'http://d.internal/dicom-web'),
  ]);
  it('Retrieve URL prefix (at a path boundary) → Retrieve Location UID → default', () => {
    assert.equal(reg.route({ retrieveUrl: 'http://a.internal/dicom-web/studies/1/series/2' })!.name, 'a');
    assert.equal(reg.route({ retrieveUrl: 'https://public-a.example/wado/studies/1' })!.name, 'a');
    assert.equal(reg.route({ retrieveUrl: 'https://public-a.example/wado-evil/studies/1' })!.name, 'default');
    assert.equal(reg.route({ retrieveUrl: 'http://a.internal/dicom-web.evil.com/x' })!.name, 'default');
    assert.equal(reg.route({ retrieveUrl: 'http://unknown/x', retrieveLocationUid: '1.2.3.99' })!.name, 'b');
    assert.equal(reg.route({})!.name, 'default');
    // XDS-I.b: only a Retrieve AE Title (0008,0054); URL and location UID win when present
    assert.equal(reg.route({ retrieveAeTitle: 'ARCHIVE_C' })!.name, 'c');
    assert.equal(reg.route({ retrieveAeTitle: 'ARCHIVE_C ' })!.name, 'c');
    assert.equal(reg.route({ retrieveAeTitle: 'archive_c' })!.name, 'default');
    assert.equal(reg.route({ retrieveAeTitle: 'ARCHIVE_C', retrieveLocationUid: '1.2.3.99' })!.name, 'b');
    assert.equal(new UpstreamRegistry([cfg('x', 'http://x')]).route({ retrieveUrl: 'http://y/z' }), undefined);
  });
  it('credentials: basic and bearer are ours; none sends nothing', async () => {
    const r = new UpstreamRegistry([cfg('basic', 'http://h', { auth: { type: 'basic', username: 'u', password: 'p' } }), cfg('bearer', 'http://h2', { auth: { type: 'bearer', token: 't' } }), cfg('none', 'http://h3')]);
    assert.equal(await r.byName('basic')!.authorization(), 'Basic ' + Buffer.from('u:p').toString('base64'));
    assert.equal(await r.byName('bearer')!.authorization(), 'Bearer t');
    assert.equal(await r.byName('none')!.authorization(), undefined);
    await r.close();
  });
});
