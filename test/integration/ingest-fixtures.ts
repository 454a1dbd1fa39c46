/**
 * Fixtures for the ingest tests and bench: synthetic KOS manifests (src/dicom codec), IOCM
 * rejection notes, FHIR manifests, STOW-RS multipart bodies and ITI-65 transaction Bundles.
 */
import { newUid, syntheticManifest, writeKos } from '../../src/dicom/index.js';
import { manifestToFhirBundle } from '../../src/fhir/mapping/index.js';
import type { Manifest } from '../../src/model/manifest.js';
import { loadConfig } from '../../src/config.js';

export interface Kos {
  model: Manifest;
  bytes: Buffer;
}

/** A synthetic MADO KOS. `study` forces the Study Instance UID (a new manifest for a known study). */
export function kos(seed: string | number, o: { series?: number; perSeries?: number; study?: string; sop?: string; description?: string } = {}): Kos {
  const m = syntheticManifest({ series: o.series ?? 2, instancesPerSeries: o.perSeries ?? 3, seed });
  if (o.study) {
    m.study.studyInstanceUid = o.study;
    for (const e of m.evidence) e.studyInstanceUid = o.study;
    for (const r of m.study.requests) r.studyInstanceUid = o.study;
  }
  if (o.sop) m.document.sopInstanceUid = o.sop;
  if (o.description) m.document.description = o.description;
  return { model: m, bytes: Buffer.from(writeKos(m)) };
}

/** A new version of a manifest: same study and references, new SOP Instance UID. */
export function nextVersion(k: Kos, description = 'second version'): Kos {
  const m = structuredClone(k.model);
  m.document.sopInstanceUid = newUid();
  m.document.description = description;
  return { model: m, bytes: Buffer.from(writeKos(m)) };
}

/** Same SOP Instance UID, different content (a conflicting re-submission). */
export function conflicting(k: Kos): Kos {
  const m = structuredClone(k.model);
  m.document.description = `${m.document.description ?? ''} (changed)`;
  return { model: m, bytes: Buffer.from(writeKos(m)) };
}

/**
 * An IOCM rejection note (title 113001 "Rejected for Quality Reasons", DCM) referencing the given
 * instances of a manifest: written as a KOS, then the document title code patched in place (the
 * codec's writer only writes manifest titles). Same byte length, so the dataset stays valid.
 */
export function rejectionNote(from: Manifest, keep: (sop: string, i: number) => boolean): Kos {
  const m = structuredClone(from);
  m.document.sopInstanceUid = newUid();
  let i = 0;
  for (const e of m.evidence) for (const s of e.series) s.instances = s.instances.filter((x) => keep(x.sopInstanceUid, i++));
  for (const e of m.evidence) e.series = e.series.filter((s) => s.instances.length);
  m.evidence = m.evidence.filter((e) => e.series.length);
  m.document.description = undefined;
  const bytes = Buffer.from(writeKos(m));
  const s = bytes.toString('latin1');
  const at = s.indexOf('MADOTEMP001 ');
  const sch = s.indexOf('99IHE ', at);
  if (at < 0 || sch < 0) throw new Error('cannot find the title to patch');
  bytes.write('113001      ', at, 'latin1');
  bytes.write('DCM   ', sch, 'latin1');
  return { model: m, bytes };
}

export const CONFIG = loadConfig({ PUBLIC_BASE_URL: 'http://gateway.test', DATABASE_URL: 'postgres://x@127.0.0.1/x' });

export function fhirManifest(seed: string | number, o: { series?: number; perSeries?: number; study?: string } = {}): { model: Manifest; bundle: Record<string, any>; json: string } {
  const { model } = kos(seed, o);
  const bundle = manifestToFhirBundle(model, { publicBaseUrl: 'http://source.example', defaults: CONFIG.documentDefaults }) as unknown as Record<string, any>;
  return { model, bundle, json: JSON.stringify(bundle) };
}

export function multipart(parts: Array<{ body: Buffer; type?: string }>, boundary = `b-${Math.random().toString(16).slice(2)}`): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type ?? 'application/dicom'}\r\n\r\n`, 'latin1'), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary="${boundary}"` };
}

/** A minimal ITI-65 transaction: SubmissionSet + DocumentReference + Binary (KOS) per document. */
export function provideBundle(docs: Array<{ kos?: Kos; fhir?: Record<string, any>; replaces?: string; asBinaryJson?: boolean }>, o: { patch?: string; patchStatus?: string; ssUid?: string } = {}): Record<string, any> {
  const entries: Record<string, any>[] = [];
  const ss = { fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000001', resource: {
    resourceType: 'List', status: 'current', mode: 'working', date: '2026-11-23T10:00:00Z',
    code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code: 'submissionset' }] },
    identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: `urn:oid:${o.ssUid ?? newUid()}` }],
    extension: [{ url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId', valueIdentifier: { value: 'urn:oid:1.2.3.4' } }],
    entry: [] as unknown[],
  }, request: { method: 'POST', url: 'List' } };
  entries.push(ss);
  docs.forEach((d, i) => {
    const docUrl = `urn:uuid:00000000-0000-4000-8000-1000000000${String(i).padStart(2, '0')}`;
    const binUrl = `urn:uuid:00000000-0000-4000-8000-2000000000${String(i).padStart(2, '0')}`;
    const sop = d.kos ? d.kos.model.document.sopInstanceUid : undefined;
    const dr: Record<string, any> = {
      resourceType: 'DocumentReference', status: 'current',
      content: [{ attachment: { contentType: d.kos ? 'application/dicom' : 'application/fhir+json', url: binUrl } }],
    };
    if (sop) dr.masterIdentifier = { system: 'urn:ietf:rfc:3986', value: `urn:oid:${sop}` };
    if (d.replaces) dr.relatesTo = [{ code: 'replaces', target: { reference: `DocumentReference/${d.replaces}` } }];
    ss.resource.entry.push({ item: { reference: docUrl } });
    entries.push({ fullUrl: docUrl, resource: dr, request: { method: 'POST', url: 'DocumentReference' } });
    if (d.kos) entries.push({ fullUrl: binUrl, resource: { resourceType: 'Binary', contentType: 'application/dicom', data: d.kos.bytes.toString('base64') }, request: { method: 'POST', url: 'Binary' } });
    else if (d.asBinaryJson) entries.push({ fullUrl: binUrl, resource: { resourceType: 'Binary', contentType: 'application/fhir+json', data: Buffer.from(JSON.stringify(d.fhir)).toString('base64') }, request: { method: 'POST', url: 'Binary' } });
    else entries.push({ fullUrl: binUrl, resource: d.fhir, request: { method: 'POST', url: 'Bundle' } });
  });
  if (o.patch) {
    entries.push({
      resource: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'DocumentReference.status' }, { name: 'value', valueCode: o.patchStatus ?? 'superseded' }] }] },
      request: { method: 'PATCH', url: `DocumentReference/${o.patch}` },
    });
  }
  return { resourceType: 'Bundle', meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.ProvideBundle'] }, type: 'transaction', entry: entries };
}
