/**
 * The manifest model: what a MADO imaging manifest says, independent of its encoding.
 *
 * Both encodings (DICOM KOS, SUPPL §6.X.2; MADO FHIR document Bundle, IG FHIR manifest) map to and
 * from this model, so the KOS reader/writer (src/dicom) and the FHIR mapping (src/fhir/mapping)
 * never see each other's libraries. No dcmjs or FHIR types appear here.
 *
 * Conventions
 * - UIDs are bare dotted strings ("1.2.3"), never "urn:oid:"-prefixed.
 * - DICOM dates are kept as DICOM strings (DA "YYYYMMDD", TM "HHMMSS.FFFFFF") plus the manifest's
 *   Timezone Offset From UTC ("+HHMM"), because a KOS → model → KOS round trip must keep them
 *   verbatim. Conversion to FHIR dateTime happens in the FHIR mapping.
 * - Optional fields are omitted (not null) when unknown.
 */

/** A coded concept (DICOM code sequence item / FHIR Coding). `scheme` is the DICOM Coding Scheme
 * Designator ("DCM", "SCT", "99IHE", …); the FHIR mapping translates it to a system URI. */
export interface Code {
  value: string;
  scheme: string;
  meaning?: string;
  /** Coding Scheme Version (0008,0103), when given */
  schemeVersion?: string;
}

/** HL7 v2 hierarchic designator / Issuer of Patient ID qualifiers (PS3.3 Table 10-17, 10-18). */
export interface Issuer {
  /** Issuer of Patient ID (0010,0021) / Local Namespace Entity ID (0040,0031): a label */
  localNamespace?: string;
  /** Universal Entity ID (0040,0032), e.g. an OID */
  universalEntityId?: string;
  /** Universal Entity ID Type (0040,0033), e.g. "ISO" */
  universalEntityIdType?: string;
}

export interface PatientIdentifier {
  value: string;
  issuer?: Issuer;
  /** Type of Patient ID (0010,0022): TEXT | RFID | BARCODE */
  typeOfPatientId?: string;
}

/** PN with its three component groups, each "Family^Given^Middle^Prefix^Suffix" as in DICOM. */
export interface PersonName {
  alphabetic?: string;
  ideographic?: string;
  phonetic?: string;
}

export interface Patient {
  /** Primary Patient ID (0010,0020) with its issuer */
  id?: PatientIdentifier;
  /** Other Patient IDs Sequence (0010,1002) items; MADO: includes the primary id again */
  otherIds: PatientIdentifier[];
  name?: PersonName;
  /** DA */
  birthDate?: string;
  /** CS: M | F | O */
  sex?: string;
}

export interface Accession {
  value: string;
  issuer?: Issuer;
}

/** One Referenced Request Sequence (0040,A370) item (PS3.3 Table 10-8, SUPPL 6.X.2.11). */
export interface RequestedProcedure {
  studyInstanceUid?: string;
  accession?: Accession;
  /** Placer Order Number / Imaging Service Request (0040,2016) + Order Placer Identifier Sequence */
  placerOrderNumber?: string;
  placerIssuer?: Issuer;
  /** Filler Order Number / Imaging Service Request (0040,2017) + Order Filler Identifier Sequence */
  fillerOrderNumber?: string;
  fillerIssuer?: Issuer;
  requestedProcedureId?: string;
  requestedProcedureDescription?: string;
  requestedProcedureCodes: Code[];
}

export interface Instance {
  sopClassUid: string;
  sopInstanceUid: string;
  /** Instance Number (113609), integer */
  number?: number;
  /** Number of Frames (121140) */
  numberOfFrames?: number;
  /** Referenced Frame Number (0008,1160) on the evidence reference, when a subset is referenced */
  referencedFrameNumbers?: number[];
  /** When the instance is itself a KOS: its Document Title (121144) */
  koDocumentTitle?: Code;
  /** When the instance is itself a KOS: its Key Object Description (113012) */
  koDescription?: string;
}

export interface Series {
  uid: string;
  /** Modality code value, e.g. "CT" (scheme DCM implied) */
  modality?: string;
  /** Series Number (113607), integer */
  number?: number;
  description?: string;
  /** DA */
  date?: string;
  /** TM */
  time?: string;
  /** Fine-grained Target Region (123014) at series level */
  bodySite?: Code;
  /** Image Laterality (111027) */
  laterality?: Code;
  /** Retrieve URL (0008,1190): WADO-RS base URI (MADO §X.4.1.2), trailing "/" removed */
  retrieveUrl?: string;
  /** Retrieve Location UID (0040,E011) */
  retrieveLocationUid?: string;
  /** Retrieve AE Title (0008,0054) */
  retrieveAeTitle?: string;
  /** Number of Series Related Instances (131564); falls back to instances.length */
  numberOfInstances?: number;
  instances: Instance[];
}

/** One Current Requested Procedure Evidence Sequence item: all references into one study. */
export interface StudyReference {
  studyInstanceUid: string;
  /** Display URI: opaque viewer URL for this study (decisions.md D8) */
  displayUri?: string;
  series: Series[];
}

export interface Study {
  /** Study Instance UID (0020,000D) of the manifest (= the referenced study, SUPPL 6.X.2.2) */
  studyInstanceUid: string;
  /** DA */
  date?: string;
  /** TM */
  time?: string;
  description?: string;
  studyId?: string;
  referringPhysicianName?: PersonName;
  /** Accession Number (0008,0050) + Issuer (0008,0051) of the General Study module, when single */
  accession?: Accession;
  /** Referenced Request Sequence items */
  requests: RequestedProcedure[];
  /** Procedure Code (121023) items of TID 2010 */
  procedureCodes: Code[];
  /** Study-level Modality (121139) items of the Image Library (TID 1600) */
  modalities: string[];
  /** Study-level Target Region (123014) items of the Image Library (anatomical regions) */
  anatomicalRegions: Code[];
  /** Number of Study Related Series (131565) */
  numberOfSeries?: number;
}

export interface ManifestDocument {
  /** SOP Instance UID of the KOS (= Bundle.identifier OID of the FHIR form) */
  sopInstanceUid: string;
  /** SOP Class UID; always KOS 1.2.840.10008.5.1.4.1.1.88.59 for a manifest */
  sopClassUid: string;
  /** KOS series (Modality KO) */
  seriesInstanceUid?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  /** Document title (Concept Name of the root CONTAINER) */
  title: Code;
  /** Key Object Description (113012) text of the root */
  description?: string;
  /** DA / TM */
  contentDate?: string;
  contentTime?: string;
  /** Timezone Offset From UTC (0008,0201), "+HHMM" / "-HHMM" */
  timezoneOffset?: string;
  manufacturer?: string;
  /** Institution Name (0008,0080); may be an HL7 v2 XON ("name^^^^^^^^^OID") */
  institutionName?: string;
  /** Organization identifier parsed from an XON institution name, when present */
  institutionId?: string;
  /** Specific Character Set as read (informative) */
  specificCharacterSet?: string;
}

export interface Manifest {
  document: ManifestDocument;
  patient: Patient;
  study: Study;
  /** Evidence, one entry per referenced study; normally exactly one (SUPPL 6.X.2.2) */
  evidence: StudyReference[];
}

export type IssueSeverity = 'error' | 'warning' | 'information';

/** One validation finding. `path` is a tag path for KOS ("(0040,A375)[0]>(0008,1115)[1]>(0040,E011)")
 * or a FHIRPath expression for FHIR input. `code` is a stable GW_* string. */
export interface ValidationIssue {
  severity: IssueSeverity;
  code: string;
  path: string;
  message: string;
}

/** What kind of KOS a dataset is, decided from its document title (CID 7010). */
export type KosKind = 'manifest' | 'key-image-note' | 'rejection-note' | 'other-kos' | 'not-kos';

export const KOS_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.59';

/** Every instance referenced by the manifest, flattened (for indexing and authorisation). */
export function listReferences(m: Manifest): Array<{ study: string; series: Series; instance: Instance }> {
  const out: Array<{ study: string; series: Series; instance: Instance }> = [];
  for (const st of m.evidence) for (const se of st.series) for (const inst of se.instances) out.push({ study: st.studyInstanceUid, series: se, instance: inst });
  return out;
}

/** The evidence item of the manifest's own study (SUPPL 6.X.2.2: normally the only one); else the first. */
export function primaryEvidence(m: Manifest): StudyReference | undefined {
  return m.evidence.find((e) => e.studyInstanceUid === m.study.studyInstanceUid) ?? m.evidence[0];
}

/** The evidence items of the other studies a manifest references (XDS-I.b, PS3.3 C.17.2.1), primary first excluded. */
export function otherEvidence(m: Manifest): StudyReference[] {
  const p = primaryEvidence(m);
  return m.evidence.filter((e) => e !== p);
}
