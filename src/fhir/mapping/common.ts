/** Small helpers shared by both mapping directions. */
import type { Issuer, PatientIdentifier, PersonName } from '../../model/manifest.js';
import { EXT, SYS } from './codes.js';

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

/** One PN component group "Family^Given^Middle^Prefix^Suffix" → HumanName parts (IG KOS→FHIR mapping, row 27). */
function groupToHumanName(group: string | undefined): Json | undefined {
  if (!group) return undefined;
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group.split('^');
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

/** The alphabetic group of a PN as a HumanName (narratives). */
export function pnToHumanName(pn: PersonName | undefined): Json | undefined {
  return groupToHumanName(pn?.alphabetic);
}

/**
 * PN → one HumanName per component group (PS3.5 §6.2.1.1): the alphabetic one plain, the
 * ideographic and phonetic ones marked with the ISO 21090 EN representation extension (IDE, SYL).
 */
export function pnToHumanNames(pn: PersonName | undefined): Json[] {
  const out: Json[] = [];
  const a = groupToHumanName(pn?.alphabetic);
  if (a) out.push(a);
  for (const [group, code] of [[pn?.ideographic, 'IDE'], [pn?.phonetic, 'SYL']] as const) {
    const n = groupToHumanName(group);
    if (n) out.push({ extension: [{ url: EXT.enRepresentation, valueCode: code }], ...n });
  }
  return out;
}

function representationOf(n: Json): string | undefined {
  const e = Array.isArray(n.extension) ? n.extension.find((x: Json) => x?.url === EXT.enRepresentation) : undefined;
  return typeof e?.valueCode === 'string' ? e.valueCode : undefined;
}

/** HumanName → one PN component group (alphabetic key only), or undefined when it has no parts. */
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

/**
 * Patient.name → PN with all three component groups: alphabetic from the official (else usual,
 * else first) name without a representation (or marked ABC), ideographic from the first IDE name,
 * phonetic from the first SYL name. `dropped` counts names that have no group to go to.
 */
export function humanNamesToPn(names: Json[]): { pn?: PersonName; dropped: number } {
  const plain = names.filter((n) => { const r = representationOf(n); return r === undefined || r === 'ABC'; });
  const alpha = plain.find((n) => n.use === 'official') ?? plain.find((n) => n.use === 'usual') ?? plain[0];
  const ide = names.find((n) => representationOf(n) === 'IDE');
  const syl = names.find((n) => representationOf(n) === 'SYL');
  const pn: PersonName = {};
  const a = humanNameToPn(alpha)?.alphabetic, i = humanNameToPn(ide)?.alphabetic, p = humanNameToPn(syl)?.alphabetic;
  if (a) pn.alphabetic = a;
  if (i) pn.ideographic = i;
  if (p) pn.phonetic = p;
  const used = [alpha, ide, syl].filter((n) => n !== undefined).length;
  return { pn: Object.keys(pn).length ? pn : undefined, dropped: names.length - used };
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
