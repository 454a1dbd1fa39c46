import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modalityOfSopClass, modalityOfSopClasses, sopClassModalityPairs } from '../../src/dicom/sop-class-modality.js';

test('Storage SOP Classes whose IOD fixes the modality (PS3.4 B.5, PS3.3 Enumerated Values)', () => {
  const cases: Array<[string, string | undefined]> = [
    ['1.2.840.10008.5.1.4.1.1.2', 'CT'], // CT Image Storage
    ['1.2.840.10008.5.1.4.1.1.2.1', 'CT'], // Enhanced CT
    ['1.2.840.10008.5.1.4.1.1.4', 'MR'],
    ['1.2.840.10008.5.1.4.1.1.6.1', 'US'],
    ['1.2.840.10008.5.1.4.1.1.1.2', 'MG'], // Digital Mammography X-Ray For Presentation
    ['1.2.840.10008.5.1.4.1.1.128', 'PT'],
    ['1.2.840.10008.5.1.4.1.1.88.59', 'KO'], // Key Object Selection Document
    ['1.2.840.10008.5.1.4.1.1.88.22', 'SR'],
    ['1.2.840.10008.5.1.4.1.1.66.4', 'SEG'],
    ['1.2.840.10008.5.1.4.1.1.7', undefined], // Secondary Capture: any modality
    ['1.2.840.10008.5.1.4.1.1.7.2', undefined],
    ['1.2.840.10008.5.1.4.1.1.2.999', undefined],
    ['1.2.3', undefined],
    [undefined as unknown as string, undefined],
  ];
  for (const [uid, mod] of cases) assert.equal(modalityOfSopClass(uid), mod, uid);
});

test('a series takes the first instance class that implies a modality', () => {
  assert.equal(modalityOfSopClasses(['1.2.840.10008.5.1.4.1.1.7', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.2']), 'MR');
  assert.equal(modalityOfSopClasses(['1.2.840.10008.5.1.4.1.1.7']), undefined);
  assert.equal(modalityOfSopClasses([]), undefined);
});

test('the back-fill pairs are the table, with full UIDs', () => {
  const pairs = sopClassModalityPairs();
  assert.ok(pairs.length > 50);
  for (const [uid, mod] of pairs) {
    assert.match(uid, /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.[0-9.]+$/);
    assert.equal(modalityOfSopClass(uid), mod);
  }
});
