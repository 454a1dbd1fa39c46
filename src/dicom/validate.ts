/**
 * Model-level checks of a manifest (also applied to FHIR-derived models before writing a KOS).
 * Paths are KOS tag paths; they line up with the model arrays (evidence[i] = (0040,A375)[i], …).
 */
import type { Manifest, Series, ValidationIssue } from '../model/manifest.js';
import { classifyTitle, KOS_SOP_CLASS_UID } from './codes.js';
import { Issues } from './issues.js';
import { isValidUid } from './uid.js';

const DA = /^\d{8}$/;
const TM = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/;
const TZ = /^[+-]\d{4}$/;

/**
 * What the KOS reader already knows about the model it has just built (internal to src/dicom):
 * `firstRef[r]` is 1 when the r-th referenced instance (evidence order) is the first with its SOP
 * Instance UID, `docInRefs` whether the manifest's own SOP Instance UID is among them. Lets the
 * check below skip a Set of every referenced UID; the issues are the same.
 */
export interface ModelFacts { firstRef: Uint8Array; docInRefs: boolean }

export function validateManifestModel(m: Manifest, facts?: ModelFacts): ValidationIssue[] {
  const iss = new Issues();
  validateDocument(iss, m.document);
  validatePatient(iss, m.patient);
  validateStudy(iss, m.study);
  const refs = validateEvidence(iss, m, facts);
  const d = m.document;
  const selfRef = facts ? facts.docInRefs && isValidUid(d.sopInstanceUid) : refs.seen.has(d.sopInstanceUid);
  if (m.evidence.some((e) => e.studyInstanceUid === d.sopInstanceUid) || selfRef) {
    iss.error('GW_KOS_SELF_REFERENCE', '(0040,A375)', 'the manifest references itself (SUPPL §6.X.2.2)');
  }
  return iss.list;
}

/** A UID check: missing (when required) or malformed (PS3.5 §9.1) is an error. */
function checkUid(iss: Issues, v: string | undefined, path: string, what: string, required = true): void {
  if (v === undefined || v === '') { if (required) iss.error('GW_KOS_MISSING_UID', path, `${what} is missing`); return; }
  if (!isValidUid(v)) iss.error('GW_KOS_BAD_UID', path, `${what} is not a valid UID (PS3.5 §9.1: digits and dots, no leading zeros, ≤ 64 chars)`);
}

/** SOP Common, document title (CID 7010) and the R+ equipment attributes (SUPPL Table 6.X.2.7-1). */
function validateDocument(iss: Issues, d: Manifest['document']): void {
  if (d.sopClassUid !== KOS_SOP_CLASS_UID) iss.error('GW_KOS_NOT_KOS', '(0008,0016)', 'SOP Class is not Key Object Selection Document');
  checkUid(iss, d.sopInstanceUid, '(0008,0018)', 'SOP Instance UID');
  checkUid(iss, d.seriesInstanceUid, '(0020,000E)', 'Series Instance UID', false);
  const t = classifyTitle(d.title);
  if (t.kind !== 'manifest') {
    const what = t.kind === 'rejection-note' ? 'an IOCM rejection note (CID 7011)' : t.kind === 'key-image-note' ? 'a Key Image Note (CID 7010)' : 'not a manifest title';
    iss.error('GW_KOS_TITLE_NOT_MANIFEST', '(0040,A043)', `document title (${d.title.value || 'none'}, ${d.title.scheme || 'none'}) is ${what}; a MADO manifest needs "Manifest with Description" (SUPPL §6.X.2.9)`);
  } else if (!t.mado) {
    iss.warn('GW_KOS_TITLE_NOT_MADO', '(0040,A043)', 'document title is the XDS-I.b "Manifest" (113030), not MADO "Manifest with Description"');
  }
  if (d.contentDate !== undefined && !DA.test(d.contentDate)) iss.warn('GW_KOS_BAD_DA', '(0008,0023)', 'Content Date is not YYYYMMDD');
  if (d.contentTime !== undefined && !TM.test(d.contentTime)) iss.warn('GW_KOS_BAD_TM', '(0008,0033)', 'Content Time is not HHMMSS.FFFFFF');
  if (d.timezoneOffset === undefined) iss.warn('GW_KOS_NO_TIMEZONE', '(0008,0201)', 'Timezone Offset From UTC missing (R+, SUPPL Table 6.X.2.10-1)');
  else if (!TZ.test(d.timezoneOffset)) iss.warn('GW_KOS_BAD_TIMEZONE', '(0008,0201)', 'Timezone Offset From UTC is not ±HHMM');
  if (!d.manufacturer) iss.warn('GW_KOS_NO_MANUFACTURER', '(0008,0070)', 'Manufacturer missing (R+, SUPPL Table 6.X.2.7-1)');
  if (!d.institutionName) iss.warn('GW_KOS_NO_INSTITUTION', '(0008,0080)', 'Institution Name missing (R+, SUPPL Table 6.X.2.7-1)');
}

/** Patient (SUPPL §6.X.2.5): Patient ID R+, qualified by an issuer; Other Patient IDs include it. */
function validatePatient(iss: Issues, p: Manifest['patient']): void {
  if (!p.id?.value) iss.error('GW_KOS_NO_PATIENT_ID', '(0010,0020)', 'Patient ID missing (R+, SUPPL Table 6.X.2.5.1-1)');
  else {
    if (!p.id.issuer?.universalEntityId) iss.warn('GW_KOS_NO_PATIENT_ISSUER', '(0010,0024)', 'Patient ID has no Issuer of Patient ID Qualifiers (Universal Entity ID) (R+, SUPPL §6.X.2.5.1.1.3)');
    if (!p.otherIds.some((o) => o.value === p.id!.value)) iss.warn('GW_KOS_OTHER_IDS_MISSING_PRIMARY', '(0010,1002)', 'Other Patient IDs Sequence shall also contain the primary Patient ID (SUPPL §6.X.2.5.1.1.2)');
  }
  if (p.birthDate !== undefined && !DA.test(p.birthDate)) iss.warn('GW_KOS_BAD_DA', '(0010,0030)', 'Patient Birth Date is not YYYYMMDD');
}

/** General Study and Referenced Request (SUPPL §6.X.2.6, §6.X.2.8.1). */
function validateStudy(iss: Issues, s: Manifest['study']): void {
  checkUid(iss, s.studyInstanceUid, '(0020,000D)', 'Study Instance UID');
  if (!s.date) iss.warn('GW_KOS_NO_STUDY_DATE', '(0008,0020)', 'Study Date missing (R+, SUPPL Table 6.X.2.6-1)');
  else if (!DA.test(s.date)) iss.warn('GW_KOS_BAD_DA', '(0008,0020)', 'Study Date is not YYYYMMDD');
  if (s.time !== undefined && !TM.test(s.time)) iss.warn('GW_KOS_BAD_TM', '(0008,0030)', 'Study Time is not HHMMSS.FFFFFF');
  if (s.requests.length === 0) iss.warn('GW_KOS_NO_REQUEST', '(0040,A370)', 'Referenced Request Sequence empty (R+, ≥ 1 item, SUPPL §6.X.2.8.1)');
  s.requests.forEach((r, i) => { if (r.studyInstanceUid) checkUid(iss, r.studyInstanceUid, `(0040,A370)[${i}]>(0020,000D)`, 'Referenced Request Study Instance UID'); });
}

/** Running state of the per-reference checks across the whole evidence. */
interface RefState { facts?: ModelFacts; seen: Set<string>; r: number; dups: number; lastClass?: string }

/** Evidence (Hierarchical SOP Instance Reference macro, PS3.3 C.17.2.1); any number of studies. */
function validateEvidence(iss: Issues, m: Manifest, facts: ModelFacts | undefined): RefState {
  const s = m.study;
  if (m.evidence.length === 0) iss.error('GW_KOS_NO_EVIDENCE', '(0040,A375)', 'Current Requested Procedure Evidence Sequence is missing or empty');
  if (m.evidence.length > 1) iss.info('GW_KOS_MULTI_STUDY', '(0040,A375)', `evidence spans ${m.evidence.length} studies (MADO expects one, SUPPL §6.X.2.2)`);
  let seriesTotal = 0;
  const st: RefState = { facts, seen: new Set(), r: 0, dups: 0 };
  m.evidence.forEach((ev, i) => {
    const ep = `(0040,A375)[${i}]`;
    checkUid(iss, ev.studyInstanceUid, `${ep}>(0020,000D)`, 'referenced Study Instance UID');
    if (m.evidence.length === 1 && ev.studyInstanceUid && s.studyInstanceUid && ev.studyInstanceUid !== s.studyInstanceUid) {
      iss.warn('GW_KOS_STUDY_MISMATCH', `${ep}>(0020,000D)`, 'referenced study differs from the manifest Study Instance UID (SUPPL §6.X.2.2)');
    }
    if (ev.series.length === 0) iss.error('GW_KOS_EMPTY_SERIES_LIST', `${ep}>(0008,1115)`, 'Referenced Series Sequence is missing or empty');
    seriesTotal += ev.series.length;
    ev.series.forEach((se, j) => {
      const sp = `${ep}>(0008,1115)[${j}]`;
      validateSeries(iss, se, sp);
      validateReferences(iss, se, sp, st);
    });
  });
  if (st.dups) iss.warn('GW_KOS_DUPLICATE_REFERENCE', '(0040,A375)', `${st.dups} SOP Instance UID(s) referenced more than once`);
  if (s.numberOfSeries !== undefined && s.numberOfSeries !== seriesTotal) {
    iss.warn('GW_KOS_COUNT_MISMATCH', '(0040,A730)', `Number of Study Related Series (${s.numberOfSeries}) ≠ referenced series (${seriesTotal})`);
  }
  return st;
}

/** Retrieve attributes (SUPPL Table 6.X.2.14-1), counts and series descriptors of one referenced series. */
function validateSeries(iss: Issues, se: Series, sp: string): void {
  checkUid(iss, se.uid, `${sp}>(0020,000E)`, 'Series Instance UID');
  if (!se.retrieveLocationUid) {
    // R+. With a Retrieve URL the series is still retrievable → warning; with a Retrieve AE Title
    // (XDS-I.b, PS3.3 C.17.2.1) a DIMSE peer can still be asked → warning; with none of them a
    // consumer has no way to locate the images → error.
    if (se.retrieveUrl) iss.warn('GW_KOS_NO_RETRIEVE_LOCATION', `${sp}>(0040,E011)`, 'Retrieve Location UID missing (R+); Retrieve URL present');
    else if (se.retrieveAeTitle) iss.warn('GW_KOS_RETRIEVE_AE_ONLY', `${sp}>(0040,E011)`, 'only a Retrieve AE Title locates this series; MADO asks for a Retrieve Location UID (R+) or a Retrieve URL (SUPPL 6.X.2.14)');
    else iss.error('GW_KOS_NO_RETRIEVE_LOCATION', `${sp}>(0040,E011)`, 'Retrieve Location UID missing (R+) and no Retrieve URL: the series cannot be located');
  } else if (!isValidUid(se.retrieveLocationUid)) {
    iss.warn('GW_KOS_BAD_RETRIEVE_LOCATION', `${sp}>(0040,E011)`, 'Retrieve Location UID is not an OID (decisions.md D19)');
  }
  if (se.retrieveUrl !== undefined && !/^https?:\/\/\S+$/i.test(se.retrieveUrl)) iss.warn('GW_KOS_BAD_RETRIEVE_URL', `${sp}>(0008,1190)`, 'Retrieve URL is not an http(s) URL');
  if (se.instances.length === 0) iss.error('GW_KOS_EMPTY_INSTANCE_LIST', `${sp}>(0008,1199)`, 'Referenced SOP Sequence is missing or empty');
  if (se.numberOfInstances !== undefined && se.numberOfInstances !== se.instances.length) {
    iss.warn('GW_KOS_COUNT_MISMATCH', `${sp}`, `Number of Series Related Instances (${se.numberOfInstances}) ≠ referenced instances (${se.instances.length})`);
  }
  if (se.date !== undefined && !DA.test(se.date)) iss.warn('GW_KOS_BAD_DA', sp, 'Series Date is not YYYYMMDD');
  if (se.time !== undefined && !TM.test(se.time)) iss.warn('GW_KOS_BAD_TM', sp, 'Series Time is not HHMMSS.FFFFFF');
}

/**
 * Per-reference loop: paths are built only for an issue; a SOP Class UID equal to the previous
 * valid one (the usual case) is not checked again.
 */
function validateReferences(iss: Issues, se: Series, sp: string, st: RefState): void {
  const insts = se.instances;
  const facts = st.facts;
  for (let k = 0; k < insts.length; k++) {
    const inst = insts[k]!;
    const cls = inst.sopClassUid;
    if (cls !== st.lastClass) {
      if (!cls || !isValidUid(cls)) iss.error(cls ? 'GW_KOS_BAD_UID' : 'GW_KOS_MISSING_UID', `${sp}>(0008,1199)[${k}]>(0008,1150)`, 'Referenced SOP Class UID missing or malformed');
      else st.lastClass = cls;
    }
    const uid = inst.sopInstanceUid;
    if (!uid || !isValidUid(uid)) iss.error(uid ? 'GW_KOS_BAD_UID' : 'GW_KOS_MISSING_UID', `${sp}>(0008,1199)[${k}]>(0008,1155)`, 'Referenced SOP Instance UID missing or malformed');
    else if (facts) { if (facts.firstRef[st.r] !== 1) st.dups++; }
    else { const before = st.seen.size; st.seen.add(uid); if (st.seen.size === before) st.dups++; }
    st.r++;
  }
}
