/**
 * Test data for the FHIR query API: synthetic manifests stored through the real ingest service
 * (so the token rows are exactly those production writes), KOS-native or FHIR-native.
 */
import { syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import { IngestService, mappingContext, parseFhirManifest, parseKos, type IngestResult } from '../../src/ingest/service.js';
import type { Manifest } from '../../src/model/manifest.js';
import type { TestApp } from './app.js';

export interface ManifestOptions {
  seed: string;
  patientId?: string;
  /** Universal Entity ID (ISO) of the patient id issuer; '' for no issuer */
  issuer?: string;
  studyDate?: string;
  studyTime?: string;
  modality?: string;
  accession?: string;
  /** Reuse a study (a new manifest of the same study supersedes the current one) */
  studyUid?: string;
  series?: number;
}

export function makeManifest(o: ManifestOptions): Manifest {
  const m = syntheticManifest({ series: o.series ?? 2, instancesPerSeries: 2, seed: o.seed });
  if (o.patientId !== undefined || o.issuer !== undefined) {
    const id = { value: o.patientId ?? m.patient.id!.value, issuer: o.issuer === '' ? undefined : { universalEntityId: o.issuer ?? '1.2.3.4.5.6.7', universalEntityIdType: 'ISO' } };
    m.patient.id = id;
    m.patient.otherIds = [];
  }
  if (o.studyDate) {
    m.study.date = o.studyDate;
    m.document.contentDate = o.studyDate;
  }
  if (o.studyTime) {
    m.study.time = o.studyTime;
    m.document.contentTime = o.studyTime;
  }
  if (o.modality) {
    m.study.modalities = [o.modality];
    for (const e of m.evidence) for (const s of e.series) s.modality = o.modality;
  }
  if (o.accession !== undefined) {
    m.study.accession = { value: o.accession };
    m.study.requests = [];
  }
  if (o.studyUid) {
    m.study.studyInstanceUid = o.studyUid;
    m.evidence[0]!.studyInstanceUid = o.studyUid;
    for (const r of m.study.requests) r.studyInstanceUid = o.studyUid;
  }
  return m;
}

export async function ingestKos(t: Pick<TestApp, 'config' | 'tdb'>, m: Manifest): Promise<IngestResult> {
  const svc = new IngestService({ db: t.tdb.db, config: t.config });
  const parsed = parseKos(writeKos(m), t.config);
  if (parsed.kind !== 'manifest') throw new Error('not a manifest');
  return svc.submitManifest(parsed.manifest);
}

export async function ingestFhir(t: Pick<TestApp, 'config' | 'tdb'>, m: Manifest): Promise<IngestResult> {
  const svc = new IngestService({ db: t.tdb.db, config: t.config });
  const bundle = manifestToFhirBundle(m, mappingContext(t.config));
  const bytes = Buffer.from(JSON.stringify(bundle), 'utf8');
  return svc.submitManifest(parseFhirManifest(bundle, bytes, t.config));
}
