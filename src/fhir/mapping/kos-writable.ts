import type { Manifest, ValidationIssue } from '../../model/manifest.js';
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
  return { manifest: out, issues };
}
