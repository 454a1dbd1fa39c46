/**
 * Deterministic FHIR resource ids and urn:uuid fullUrls derived from the manifest identity
 * (contract "Manifest identity"): the same manifest always yields the same ids, so conversions are
 * byte-identical and re-submission is idempotent. Ids are ≤ 64 chars of [A-Za-z0-9-.] (FHIR id).
 */
import { hash as cryptoHash } from 'node:crypto';
import type { Patient, PatientIdentifier } from './manifest.js';

/** Fixed namespace for our UUID v5 values (random, generated once; never change it). */
const NAMESPACE = Buffer.from('6f1c2b8e4d7a4e0f9b3c5a1d2e8f7c60', 'hex');

function hash(s: string): string {
  return cryptoHash('sha256', s).slice(0, 32);
}

/** RFC 4122 version-5-style UUID (SHA-1 of namespace + name). */
export function uuidV5(name: string): string {
  const h = Buffer.from(cryptoHash('sha1', Buffer.concat([NAMESPACE, Buffer.from(name, 'utf8')])), 'hex');
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** `urn:uuid:` fullUrl for a resource in a manifest Bundle (deterministic). */
export function fullUrlFor(resourceType: string, id: string): string {
  return `urn:uuid:${uuidV5(`${resourceType}/${id}`)}`;
}

/** A DICOM UID under the 2.25 root derived from a name (PS3.5 B.2), deterministic. */
export function derivedUid(name: string): string {
  const hex = uuidV5(name).replace(/-/g, '');
  return `2.25.${BigInt(`0x${hex}`).toString(10)}`;
}

/**
 * Series Instance UID of a KOS the gateway writes for a manifest that names none (a FHIR
 * manifest has no KOS series): the same whichever path writes it (FHIR → KOS or the writer's
 * default), so converting twice gives the same object.
 */
export function kosSeriesUid(sopInstanceUid: string): string {
  return derivedUid(`kos-series:${sopInstanceUid}`);
}

export interface ManifestResourceIds {
  binary: string;
  bundle: string;
  kosDocRef: string;
  fhirDocRef: string;
  imagingStudy: string;
  /** Per-manifest Patient id; the mapping itself uses patientId() so one patient keeps one id across manifests. */
  patient: string;
  composition: string;
  device: string;
  organization: string;
  /** Requested procedure i (ServiceRequest) */
  serviceRequest: (i: number) => string;
  webViewerEndpoint: string;
}

export function manifestResourceIds(sopInstanceUid: string): ManifestResourceIds {
  const h = hash(`manifest:${sopInstanceUid}`);
  return {
    binary: `kos-${h}`,
    bundle: `mado-${h}`,
    kosDocRef: `kos-docref-${h}`,
    fhirDocRef: `fhir-docref-${h}`,
    imagingStudy: `study-${h}`,
    patient: `patient-${h}`,
    composition: `composition-${h}`,
    device: `device-${h}`,
    organization: `organization-${h}`,
    serviceRequest: (i: number) => `request-${h}-${i}`,
    webViewerEndpoint: `viewer-${h}`,
  };
}

/**
 * Id of the ImagingStudy of one referenced study: the manifest's own (`study-<h>`) for its primary
 * study, `study-<h>-<k>` (k from the Study Instance UID) for any other study its evidence names.
 * The `<h>` part stays the manifest's, so the id leads back to the manifest (ImagingStudy read).
 */
export function imagingStudyId(manifestSopUid: string, studyUid: string, primary: boolean): string {
  const base = manifestResourceIds(manifestSopUid).imagingStudy;
  return primary ? base : `${base}-${hash(`study:${studyUid}`).slice(0, 16)}`;
}

/** Id of the web viewer Endpoint (Display URI) of one referenced study, like imagingStudyId. */
export function viewerEndpointId(manifestSopUid: string, studyUid: string, primary: boolean): string {
  const base = manifestResourceIds(manifestSopUid).webViewerEndpoint;
  return primary ? base : `${base}-${hash(`study:${studyUid}`).slice(0, 16)}`;
}

/** One MadoWadoEndpoint per distinct (Retrieve URL, Retrieve Location UID) pair (IG KOS→FHIR mapping, row 20). */
export function endpointId(retrieveUrl?: string, retrieveLocationUid?: string): string {
  return `wado-${hash(`endpoint:${retrieveUrl ?? ''}|${retrieveLocationUid ?? ''}`)}`;
}

/** One DIMSE Endpoint per distinct Retrieve AE Title (0008,0054). */
export function dimseEndpointId(aeTitle: string): string {
  return `dimse-${hash(`dimse:${aeTitle}`)}`;
}

function idKey(p: PatientIdentifier): string {
  const i = p.issuer ?? {};
  return `${p.value}|${i.localNamespace ?? ''}|${i.universalEntityId ?? ''}|${i.universalEntityIdType ?? ''}`;
}

/** Patient id from the primary identifier + issuer; without one, from the demographics. */
export function patientId(p: Patient): string {
  const key = p.id ? `id:${idKey(p.id)}` : p.otherIds.length ? `id:${idKey(p.otherIds[0]!)}` : `demo:${p.name?.alphabetic ?? ''}|${p.birthDate ?? ''}|${p.sex ?? ''}`;
  return `patient-${hash(key)}`;
}
