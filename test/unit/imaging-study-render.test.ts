/**
 * The ImagingStudy read/search renders only the selected study of a manifest (manifestImagingStudies,
 * references `Type/id`), not the whole MADO Bundle. It must give exactly the Bundle's ImagingStudy
 * with its urn:uuid references rewritten to `Type/id`, key order included (the same JSON bytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import { imagingStudyOf } from '../../src/fhir/resources/imaging-study.js';
import type { Manifest } from '../../src/model/manifest.js';
import { CTX, manifest101, manifestRich } from '../fixtures/fhir/sample-manifests.js';
import { randomManifest } from '../fixtures/fhir/random-manifest.js';

type J = Record<string, any>;

/** The Bundle's ImagingStudies with Bundle-internal references rewritten to Type/id. */
function fromBundle(m: Manifest): J[] {
  const b = manifestToFhirBundle(m, CTX) as J;
  const map = new Map<string, string>(b.entry.map((e: J) => [e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`]));
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'reference' && typeof x === 'string' && map.has(x) ? map.get(x) : rewrite(x)]));
    return v;
  };
  return b.entry.map((e: J) => e.resource).filter((r: J) => r.resourceType === 'ImagingStudy').map(rewrite);
}

function multiStudy(seed: number): Manifest {
  // a second evidence item naming another study (one ImagingStudy each)
  const m = randomManifest(seed);
  const other = { ...m.evidence[0]!, studyInstanceUid: `${m.study.studyInstanceUid}.9` };
  return { ...m, evidence: [...m.evidence, other] };
}

test('ImagingStudy by id, by Study Instance UID and by default: the Bundle\'s, byte for byte', () => {
  const manifests = [manifest101(), manifestRich(), ...Array.from({ length: 60 }, (_, i) => randomManifest(i + 1)), ...Array.from({ length: 20 }, (_, i) => multiStudy(100 + i))];
  let studies = 0;
  for (const m of manifests) {
    const expected = fromBundle(m);
    assert.equal(JSON.stringify(imagingStudyOf(m, CTX, 'current')), JSON.stringify(expected[0]));
    for (const e of expected) {
      studies++;
      assert.equal(JSON.stringify(imagingStudyOf(m, CTX, 'current', undefined, { id: e.id })), JSON.stringify(e));
      const uid = (e.identifier[0].value as string).slice('urn:oid:'.length);
      assert.equal(JSON.stringify(imagingStudyOf(m, CTX, 'current', undefined, { studyUid: uid })), JSON.stringify(e));
    }
    // an unknown id is none; an unknown study falls back to the manifest's own
    assert.equal(imagingStudyOf(m, CTX, 'current', undefined, { id: 'study-none' }), undefined);
    assert.equal(JSON.stringify(imagingStudyOf(m, CTX, 'current', undefined, { studyUid: '1.2.3.999' })), JSON.stringify(expected[0]));
    assert.equal(imagingStudyOf(m, CTX, 'entered-in-error')?.status, 'entered-in-error');
  }
  assert.ok(studies > manifests.length, 'some manifests reference several studies');
});
