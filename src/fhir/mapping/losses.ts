/**
 * What a KOS → MADO FHIR conversion cannot carry (docs/conversion-fidelity.md lists both
 * directions): one warning per kind of value present in the manifest and absent from the Bundle,
 * so a KOS → FHIR → KOS round trip never loses data silently.
 */
import type { Manifest, ValidationIssue } from '../../model/manifest.js';

const CODE = 'GW_CONVERT_DROPPED';

function drop(out: ValidationIssue[], path: string, what: string): void {
  out.push({ severity: 'warning', code: CODE, path, message: `${what} has no place in the MADO FHIR Bundle and is not carried over` });
}

/** Warnings for the KOS values manifestToFhirBundle drops. */
export function kosToFhirLosses(m: Manifest): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const d = m.document;
  if (d.seriesInstanceUid !== undefined) drop(out, '(0020,000E)', 'the KOS Series Instance UID (a KOS written back gets a new one)');
  if (d.specificCharacterSet !== undefined && !/^(ISO_IR 192|ISO_IR 6|)$/.test(d.specificCharacterSet)) {
    drop(out, '(0008,0005)', `Specific Character Set "${d.specificCharacterSet.slice(0, 64)}" (text is carried as Unicode; a KOS written back picks its character set from the text)`);
  }
  if (m.study.studyId !== undefined) drop(out, '(0020,0010)', 'Study ID');
  if (m.study.referringPhysicianName !== undefined) drop(out, '(0008,0090)', "Referring Physician's Name");
  const types = [m.patient.id, ...m.patient.otherIds].some((p) => p?.typeOfPatientId !== undefined && p.typeOfPatientId !== 'TEXT');
  if (types) drop(out, '(0010,1002)', 'Type of Patient ID other than TEXT');
  let frames = 0;
  for (const e of m.evidence) for (const s of e.series) for (const i of s.instances) if (i.referencedFrameNumbers?.length) frames++;
  if (frames) drop(out, '(0040,A375)', `Referenced Frame Number of ${frames} reference(s) (ImagingStudy.series.instance has no frame list; the whole instance is referenced)`);
  return out;
}
