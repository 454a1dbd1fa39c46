/**
 * The world the web page tests run against: a real Orthanc holding the fixture instances
 * (test/fixtures/dicom), and in the gateway's database
 *  - patient A (the fixture patient): a KOS manifest of the fixture study, then a FHIR manifest
 *    of the same study that supersedes it (so the list shows current + superseded, KOS + FHIR);
 *  - patient B: one KOS manifest of a study Orthanc does not hold.
 * Manifests go in through the real ingest service. The page is built with the production build
 * script (scripts/build-ui.mjs) into dist/ui, where the gateway serves it from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { derivedUid } from '../../src/model/ids.js';
import type { Manifest } from '../../src/model/manifest.js';
import { buildUi } from '../../scripts/build-ui.mjs';
import type { TestApp } from './app.js';
import type { Orthanc } from './orthanc.js';
import { ingestFhir, ingestKos, makeManifest } from './query-data.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/dicom');

export interface FixtureIndex {
  study: string;
  patientId: string;
  issuer: string;
  patientName: string;
  studyDate: string;
  accession: string;
  instances: Array<{ file: string; series: string; seriesNumber: number; modality: string; sop: string; sopClass: string; number: number; frames: number; referenced: boolean }>;
}

export const fixture = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as FixtureIndex;

export async function uploadFixtures(orthanc: Orthanc): Promise<void> {
  for (const i of fixture.instances) await orthanc.upload(fs.readFileSync(path.join(FIX, i.file)));
}

/** The fixture study as a MADO manifest whose series live in `dicomweb` (Orthanc). */
export function fixtureManifest(dicomweb: string, seed: string, description: string): Manifest {
  const fx = fixture;
  const referenced = fx.instances.filter((i) => i.referenced);
  const series = [...new Set(referenced.map((i) => i.series))];
  const m = syntheticManifest({ series: 2, instancesPerSeries: 1, seed });
  // An ISO issuer, so the deep link carries a system (urn:oid:…|value)
  m.patient = { id: { value: fx.patientId, issuer: { universalEntityId: '1.2.826.0.1.3680043.10.1.99', universalEntityIdType: 'ISO' } }, otherIds: [], name: { alphabetic: fx.patientName }, birthDate: '19700101', sex: 'F' };
  m.study = { ...m.study, studyInstanceUid: fx.study, date: fx.studyDate, time: '101500', description: 'Web page test study', accession: { value: fx.accession }, requests: [], modalities: ['OT', 'CT'], numberOfSeries: series.length };
  m.document.description = description;
  m.evidence = [
    {
      studyInstanceUid: fx.study,
      series: series.map((se) => {
        const inst = referenced.filter((i) => i.series === se);
        return {
          uid: se,
          modality: inst[0]!.modality,
          number: inst[0]!.seriesNumber,
          retrieveUrl: `${dicomweb}/studies/${fx.study}/series/${se}`,
          retrieveLocationUid: '1.2.826.0.1.3680043.10.1.1',
          numberOfInstances: inst.length,
          instances: inst.map((i) => ({ sopClassUid: i.sopClass, sopInstanceUid: i.sop, number: i.number, numberOfFrames: i.frames > 1 ? i.frames : undefined })),
        };
      }),
    },
  ];
  return m;
}

export interface UiWorld {
  first: Manifest;
  second: Manifest;
  other: Manifest;
  /** FHIR Patient.identifier of patient A / B as system|value (read back from the API) */
  identifierA: string;
  identifierB: string;
}

/** Store the manifests and build the page. */
export async function seedUiWorld(t: TestApp, dicomweb: string, base: string, authHeader?: string): Promise<UiWorld> {
  await buildUi();
  const first = fixtureManifest(dicomweb, 'ui-first', 'First read');
  const second = fixtureManifest(dicomweb, 'ui-second', 'Corrected manifest');
  second.document.sopInstanceUid = derivedUid('ui-test:second-manifest');
  await ingestKos(t, first);
  await ingestFhir(t, second);
  const other = makeManifest({ seed: 'ui-other', patientId: 'PAT-UI-B', issuer: '1.2.3.4.5.6.7', accession: 'ACC-UI-B' });
  await ingestKos(t, other);
  // The identifiers as the FHIR API renders them (system from the issuer), for deep links.
  const r = await fetch(`${base}/fhir/Patient?_count=50`, { headers: authHeader ? { authorization: authHeader } : {} });
  const b = (await r.json()) as { entry?: Array<{ resource: { identifier?: Array<{ system?: string; value: string }> } }> };
  const idOf = (value: string) => {
    const id = b.entry?.flatMap((e) => e.resource.identifier ?? []).find((i) => i.value === value);
    if (!id) throw new Error(`no patient identifier ${value} (HTTP ${r.status})`);
    return `${id.system ?? ''}|${id.value}`;
  };
  return { first, second, other, identifierA: idOf(fixture.patientId), identifierB: idOf('PAT-UI-B') };
}

/** A KOS that parses but breaks the rules: Patient ID blanked, one Referenced SOP Instance UID malformed. */
export function brokenKos(dicomweb: string): Buffer {
  const m = fixtureManifest(dicomweb, 'ui-broken', 'Broken');
  const bytes = Buffer.from(writeKos(m));
  const blank = (s: string, by: string) => {
    const i = bytes.indexOf(Buffer.from(s, 'latin1'));
    if (i < 0) throw new Error(`"${s}" not found in the KOS`);
    bytes.write(by.padEnd(s.length, by.slice(-1)).slice(0, s.length), i, 'latin1');
  };
  blank(fixture.patientId, ' ');
  const sop = m.evidence[0]!.series[0]!.instances[0]!.sopInstanceUid;
  blank(sop, '1.02.x');
  return bytes;
}
