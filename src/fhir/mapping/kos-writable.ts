import type { Code, Issuer, Manifest, ValidationIssue } from '../../model/manifest.js';
import { isOid } from './common.js';

/**
 * Drops the values a KOS cannot encode before writeKos, with a warning each:
 * - a Retrieve Location UID that is not a UID (decisions.md D19: the FHIR extension is a string and the IG
 *   examples use "ACME", but (0040,E011) is VR UI);
 * - a coded concept with text only (FHIR CodeableConcept.text, e.g. the IG example's procedureCode
 *   "Head CT"): a DICOM code sequence item needs Code Value + Coding Scheme Designator (PS3.3 8.8).
 * The model itself keeps them (a location label may still key an upstream; text is still indexable).
 */
export function toKosWritable(m: Manifest): { manifest: Manifest; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  let out = m;
  m.evidence.forEach((e, ei) =>
    e.series.forEach((s, si) => {
      if (s.retrieveLocationUid !== undefined && !(isOid(s.retrieveLocationUid) && s.retrieveLocationUid.length <= 64)) {
        if (out === m) out = structuredClone(m);
        delete out.evidence[ei]!.series[si]!.retrieveLocationUid;
        issues.push({ severity: 'warning', code: 'GW_FHIR_BAD_RETRIEVE_LOCATION', path: `ImagingStudy.series.where(uid='${s.uid}').endpoint`, message: `Retrieve Location UID "${s.retrieveLocationUid}" is not a DICOM UID and is left out of the KOS (decisions.md D19)` });
      }
    }),
  );
  const copy = () => (out === m ? (out = structuredClone(m)) : out);
  const uncoded = (c: { value: string; scheme: string }) => !c.value || !c.scheme;
  const dropCodes = (list: () => { value: string; scheme: string; meaning?: string }[], set: (x: any[]) => void, path: string) => {
    const bad = list().filter(uncoded);
    if (!bad.length) return;
    copy();
    set(list().filter((c) => !uncoded(c)));
    for (const c of bad) issues.push({ severity: 'warning', code: 'GW_FHIR_TEXT_ONLY_CODE', path, message: `concept "${c.meaning ?? ''}" has no code/system and is left out of the KOS` });
  };
  dropCodes(() => out.study.procedureCodes, (x) => (out.study.procedureCodes = x), 'ImagingStudy.procedureCode');
  dropCodes(() => out.study.anatomicalRegions, (x) => (out.study.anatomicalRegions = x), 'ImagingStudy.extension');
  out.study.requests.forEach((_, ri) => dropCodes(() => out.study.requests[ri]!.requestedProcedureCodes, (x) => (out.study.requests[ri]!.requestedProcedureCodes = x), 'ServiceRequest.code'));
  out.evidence.forEach((e, ei) =>
    e.series.forEach((s, si) => {
      for (const k of ['bodySite', 'laterality'] as const) {
        const c = s[k];
        if (c && uncoded(c)) {
          delete copy().evidence[ei]!.series[si]![k];
          issues.push({ severity: 'warning', code: 'GW_FHIR_TEXT_ONLY_CODE', path: `ImagingStudy.series.where(uid='${s.uid}').${k}`, message: `${k} has no code/system and is left out of the KOS` });
        }
      }
      s.instances.forEach((i, ii) => {
        if (i.koDocumentTitle && uncoded(i.koDocumentTitle)) {
          delete copy().evidence[ei]!.series[si]!.instances[ii]!.koDocumentTitle;
          issues.push({ severity: 'warning', code: 'GW_FHIR_TEXT_ONLY_CODE', path: `ImagingStudy.series.where(uid='${s.uid}').instance.where(uid='${i.sopInstanceUid}').extension`, message: 'Key Object document title has no code/system and is left out of the KOS' });
        }
      });
    }),
  );
  const fitted = fitToVrLimits(out, issues);
  return { manifest: fitted, issues };
}

/**
 * Cut at a character boundary so the value fits in `max` bytes of UTF-8 (the writer's ISO_IR 192):
 * PS3.5 counts characters, validators such as dciodvfy count bytes; this satisfies both.
 */
function cut(s: string, max: number): string {
  let out = '';
  let n = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (n + b > max) break;
    out += ch;
    n += b;
  }
  return out.trimEnd();
}

type Rule = [path: string, vr: string, max: number, get: (m: Manifest) => Array<{ o: Record<string, any>; k: string }>];

const codes = (m: Manifest): Code[] => [
  m.document.title,
  ...m.study.procedureCodes,
  ...m.study.anatomicalRegions,
  ...m.study.requests.flatMap((r) => r.requestedProcedureCodes),
  ...m.evidence.flatMap((e) => e.series.flatMap((s) => [s.bodySite, s.laterality, ...s.instances.map((i) => i.koDocumentTitle)])),
].filter((c): c is Code => !!c);
const issuers = (m: Manifest): Issuer[] => [m.patient.id?.issuer, ...m.patient.otherIds.map((p) => p.issuer), m.study.accession?.issuer, ...m.study.requests.flatMap((r) => [r.accession?.issuer, r.placerIssuer, r.fillerIssuer])].filter((x): x is Issuer => !!x);
const at = (o: Record<string, any> | undefined, k: string) => (o ? [{ o, k }] : []);

/** Model fields with a DICOM VR length limit (PS3.5 Table 6.2-1) in the KOS the writer makes. */
const RULES: Rule[] = [
  ['Patient.identifier.value', 'LO', 64, (m) => [...at(m.patient.id, 'value'), ...m.patient.otherIds.flatMap((p) => at(p, 'value'))]],
  ['issuer (Local Namespace Entity ID)', 'LO', 64, (m) => issuers(m).flatMap((i) => at(i, 'localNamespace'))],
  ['ImagingStudy.description', 'LO', 64, (m) => at(m.study, 'description')],
  ['Study ID', 'SH', 16, (m) => at(m.study, 'studyId')],
  ['Accession Number', 'SH', 16, (m) => [...at(m.study.accession, 'value'), ...m.study.requests.flatMap((r) => at(r.accession, 'value'))]],
  ['ServiceRequest placer/filler identifier', 'LO', 64, (m) => m.study.requests.flatMap((r) => [...at(r, 'placerOrderNumber'), ...at(r, 'fillerOrderNumber')])],
  ['Requested Procedure ID', 'SH', 16, (m) => m.study.requests.flatMap((r) => at(r, 'requestedProcedureId'))],
  ['Requested Procedure Description', 'LO', 64, (m) => m.study.requests.flatMap((r) => at(r, 'requestedProcedureDescription'))],
  ['Device.manufacturer', 'LO', 64, (m) => at(m.document, 'manufacturer')],
  ['Organization.name (Institution Name)', 'LO', 64, (m) => at(m.document, 'institutionName')],
  ['code meaning', 'LO', 64, (m) => codes(m).flatMap((c) => at(c, 'meaning'))],
  ['code system (Coding Scheme Designator)', 'SH', 16, (m) => codes(m).flatMap((c) => [...at(c, 'scheme'), ...at(c, 'schemeVersion')])],
  ['Retrieve AE Title', 'AE', 16, (m) => m.evidence.flatMap((e) => e.series.flatMap((s) => at(s, 'retrieveAeTitle')))],
];

const tooLong = (v: unknown, max: number) => typeof v === 'string' && Buffer.byteLength(v, 'utf8') > max;
const names = (m: Manifest) => [m.patient.name, m.study.referringPhysicianName].filter((n): n is NonNullable<typeof n> => !!n);

/** Values longer than their VR allows are cut at the limit (at a character boundary), each with a warning. */
function fitToVrLimits(m: Manifest, issues: ValidationIssue[]): Manifest {
  const over = RULES.some(([, , max, get]) => get(m).some(({ o, k }) => tooLong(o[k], max))) || names(m).some((n) => [n.alphabetic, n.ideographic, n.phonetic].some((v) => tooLong(v, 64)));
  if (!over) return m;
  const out = structuredClone(m);
  for (const [path, vr, max, get] of RULES) {
    for (const { o, k } of get(out)) {
      const v = o[k];
      if (!tooLong(v, max)) continue;
      o[k] = cut(v, max);
      issues.push({ severity: 'warning', code: 'GW_FHIR_VALUE_CUT', path, message: `${path} "${String(v).slice(0, 24)}…" is longer than ${vr} allows (${max}) and is cut at a character boundary within ${max} bytes in the KOS` });
    }
  }
  for (const n of names(out)) {
    for (const k of ['alphabetic', 'ideographic', 'phonetic'] as const) {
      if (!tooLong(n[k], 64)) continue;
      n[k] = cut(n[k]!, 64);
      issues.push({ severity: 'warning', code: 'GW_FHIR_VALUE_CUT', path: 'HumanName', message: 'a person name component group is longer than PN allows (64) and is cut at a character boundary within 64 bytes in the KOS' });
    }
  }
  return out;
}
