/** Small helpers shared by both mapping directions. */
import type { Issuer, PatientIdentifier, PersonName } from '../../model/manifest.js';
import { SYS } from './codes.js';

export type Json = Record<string, any>;

export function isUri(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\S+$/i.test(s);
}

export function isOid(s: string): boolean {
  return /^[0-2](\.(0|[1-9]\d*))+$/.test(s);
}

export function stripOid(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return v.startsWith('urn:oid:') ? v.slice(8) : v;
}

/** Issuer → Identifier.system (IG KOS→FHIR mapping, row 28: `urn:oid:`+UEID when ISO, else a URI label). */
export function issuerSystem(iss: Issuer | undefined): string | undefined {
  if (!iss) return undefined;
  const u = iss.universalEntityId;
  if (u) {
    const t = (iss.universalEntityIdType ?? '').toUpperCase();
    if (t === 'ISO' || (!t && isOid(u))) return `urn:oid:${u}`;
    if (t === 'UUID') return `urn:uuid:${u.toLowerCase()}`;
    if (isUri(u)) return u;
    return undefined;
  }
  if (iss.localNamespace && isUri(iss.localNamespace)) return iss.localNamespace;
  return undefined;
}

/** Identifier parts for an issuer-qualified DICOM id: system, plus assigner.display = the label when it is not the system. */
export function identifierFor(value: string, iss: Issuer | undefined): Json {
  const out: Json = {};
  const system = issuerSystem(iss);
  if (system) out.system = system;
  out.value = value;
  const label = iss?.localNamespace;
  if (label && label !== system) out.assigner = { display: label };
  return out;
}

export function issuerFromIdentifier(id: Json): Issuer | undefined {
  const sys: string | undefined = typeof id.system === 'string' ? id.system : undefined;
  const label: string | undefined = typeof id.assigner?.display === 'string' ? id.assigner.display : undefined;
  const iss: Issuer = {};
  if (sys?.startsWith('urn:oid:')) {
    iss.universalEntityId = sys.slice(8);
    iss.universalEntityIdType = 'ISO';
  } else if (sys?.startsWith('urn:uuid:')) {
    iss.universalEntityId = sys.slice(9);
    iss.universalEntityIdType = 'UUID';
  } else if (sys) {
    if (label) {
      iss.universalEntityId = sys;
      iss.universalEntityIdType = 'URI';
    } else iss.localNamespace = sys;
  }
  if (label) iss.localNamespace = label;
  return Object.keys(iss).length ? iss : undefined;
}

export function patientIdentifier(p: PatientIdentifier): Json {
  return identifierFor(p.value, p.issuer);
}

/** PN "Family^Given^Middle^Prefix^Suffix" → HumanName (IG KOS→FHIR mapping, row 27). */
export function pnToHumanName(pn: PersonName | undefined): Json | undefined {
  const a = pn?.alphabetic;
  if (!a) return undefined;
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = a.split('^');
  const n: Json = {};
  const text = [prefix, given, middle, family, suffix].filter(Boolean).join(' ');
  if (text) n.text = text;
  if (family) n.family = family;
  const g = [given, middle].filter(Boolean);
  if (g.length) n.given = g;
  if (prefix) n.prefix = [prefix];
  if (suffix) n.suffix = [suffix];
  return Object.keys(n).length ? n : undefined;
}

export function humanNameToPn(n: Json | undefined): PersonName | undefined {
  if (!n) return undefined;
  const given: string[] = Array.isArray(n.given) ? n.given : [];
  let parts: string[];
  if (n.family || given.length || n.prefix || n.suffix) {
    parts = [n.family ?? '', given[0] ?? '', given.slice(1).join(' '), (n.prefix ?? []).join(' '), (n.suffix ?? []).join(' ')];
  } else if (typeof n.text === 'string' && n.text) {
    // Only free text: "Given Family" → DOE^John-like split on the last space.
    const t = n.text.trim();
    const i = t.lastIndexOf(' ');
    parts = i > 0 ? [t.slice(i + 1), t.slice(0, i)] : [t];
  } else return undefined;
  while (parts.length && !parts[parts.length - 1]) parts.pop();
  return parts.length ? { alphabetic: parts.join('^') } : undefined;
}

export const GENDER: Record<string, string> = { M: 'male', F: 'female', O: 'other' };
export const SEX: Record<string, string> = { male: 'M', female: 'F', other: 'O' };

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const ACCESSION_TYPE = {
  coding: [
    { system: SYS.dcm, code: '121022', display: 'Accession Number' },
    { system: SYS.v20203, code: 'ACSN', display: 'Accession ID' },
  ],
};
export const STUDY_UID_TYPE = { coding: [{ system: SYS.dcm, code: '110180', display: 'Study Instance UID' }] };

export function studyUidIdentifier(uid: string): Json {
  return { type: STUDY_UID_TYPE, system: SYS.dicomUid, value: `urn:oid:${uid}` };
}
