import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatMediaType, isWildcard, parseAccept, parseContentType, preferredMediaType, preferredMediaTypes, qualityOf } from '../../src/http/media-type.js';
import { negotiate } from '../../src/dicomweb/accept.js';

/** What Chromium sends for an <img> (and for CSS images). */
const CHROMIUM_IMG = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

describe('media-type: Content-Type', () => {
  it('lower-cases type and parameter names, unquotes values, keeps value case', () => {
    assert.deepEqual(parseContentType('Multipart/Related; Type="application/dicom"; boundary="a b;c"'), {
      type: 'multipart/related',
      params: { type: 'application/dicom', boundary: 'a b;c' },
    });
    assert.deepEqual(parseContentType('application/fhir+json;charset=UTF-8'), { type: 'application/fhir+json', params: { charset: 'UTF-8' } });
    assert.deepEqual(parseContentType('text/plain; a="x\\"y"'), { type: 'text/plain', params: { a: 'x"y' } });
  });
  it('undefined for absent or malformed values', () => {
    for (const v of [undefined, '', 'text', '/json', 'a/b/c', 'text/ html']) assert.equal(parseContentType(v), undefined, String(v));
  });
  it('formats with quotes only where needed', () => {
    assert.equal(formatMediaType({ type: 'multipart/related', params: { type: 'application/dicom', boundary: 'x' } }), 'multipart/related; type="application/dicom"; boundary=x');
  });
});

describe('media-type: Accept', () => {
  it('orders by q (stable), keeps q=0 last, ignores garbage, reads quoted commas', () => {
    const r = parseAccept('text/html;q=0, image/png;q=0.5, garbage, multipart/related; type="application/dicom"; transfer-syntax=*, text/x;a="1,2"')!;
    assert.deepEqual(r.map((x) => [x.type, x.q]), [['multipart/related', 1], ['text/x', 1], ['image/png', 0.5], ['text/html', 0]]);
    assert.deepEqual(r[0]!.params, { type: 'application/dicom', 'transfer-syntax': '*' });
    assert.equal(r[1]!.params.a, '1,2');
  });
  it('missing or blank header is */*; over-long header is undefined', () => {
    assert.deepEqual(parseAccept(undefined), [{ type: '*/*', params: {}, q: 1 }]);
    assert.deepEqual(parseAccept('  '), [{ type: '*/*', params: {}, q: 1 }]);
    assert.equal(parseAccept('a/b,'.repeat(2000)), undefined);
  });
  it('bad q counts as 1 and is clamped', () => {
    assert.deepEqual(parseAccept('a/b;q=x, c/d;q=7, e/f;q=-1')!.map((x) => x.q), [1, 1, 0]);
  });
  it('quality: the most specific range decides; q=0 excludes; * parameter value matches any', () => {
    const r = parseAccept('*/*;q=0.1, image/*;q=0.5, image/png;q=0')!;
    assert.equal(qualityOf(r, { type: 'image/png', params: {} }), 0);
    assert.equal(qualityOf(r, { type: 'image/jpeg', params: {} }), 0.5);
    assert.equal(qualityOf(r, { type: 'text/plain', params: {} }), 0.1);
    const d = parseAccept('multipart/related; type=application/dicom; transfer-syntax=*')!;
    assert.equal(qualityOf(d, { type: 'multipart/related', params: { type: 'application/dicom', 'transfer-syntax': '1.2.840.10008.1.2.1' } }), 1);
    assert.equal(qualityOf(d, { type: 'multipart/related', params: { type: 'application/octet-stream' } }), 0);
    assert.equal(isWildcard(r[0]!), true);
  });
  it('preferred offer: wildcards fall to the first offer (the server default); 406 case is undefined', () => {
    assert.equal(preferredMediaType(CHROMIUM_IMG, ['image/jpeg', 'image/png']), 'image/jpeg');
    assert.equal(preferredMediaType('image/png, image/*;q=0.9', ['image/jpeg', 'image/png']), 'image/png');
    assert.deepEqual(preferredMediaTypes(undefined, ['application/fhir+json', 'application/fhir+xml']), ['application/fhir+json', 'application/fhir+xml']);
    assert.equal(preferredMediaType('application/pdf', ['image/jpeg']), undefined);
    assert.equal(preferredMediaType('multipart/related; type="application/dicom"', ['multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.1']), 'multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
  });
});

describe('DICOMweb rendered negotiation (PS3.18 §8.7.3)', () => {
  it("a browser's <img> Accept gets the default JPEG", () => {
    assert.equal(negotiate('rendered', CHROMIUM_IMG), 'image/jpeg');
    assert.equal(negotiate('rendered', 'image/*'), 'image/jpeg');
    assert.equal(negotiate('rendered', undefined), 'image/jpeg');
  });
  it('named types keep their q; q=0 excludes; only nothing acceptable is 406', () => {
    assert.equal(negotiate('rendered', 'image/png, */*;q=0.1'), 'image/png, image/jpeg; q=0.1');
    assert.equal(negotiate('rendered', 'image/*, image/jpeg;q=0'), 'image/png, image/gif');
    assert.throws(() => negotiate('rendered', 'image/webp, text/html'), { status: 406 });
    assert.throws(() => negotiate('rendered', 'image/jpeg;q=0'), { status: 406 });
  });
});
