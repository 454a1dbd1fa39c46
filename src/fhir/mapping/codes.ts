/** Systems, canonical URLs and code translations used by the MADO mapping (IG FHIR manifest, IG MHD envelope, IG terminology). */
import type { Code } from '../../model/manifest.js';

export const MADO = 'https://profiles.ihe.net/RAD/MADO';
export const SD = `${MADO}/StructureDefinition`;
export const PROFILE = {
  bundle: `${SD}/MadoFhirBundle`,
  composition: `${SD}/MadoComposition`,
  imagingStudy: `${SD}/MadoImagingStudy`,
  patient: `${SD}/MadoPatient`,
  device: `${SD}/MadoCreator`,
  organization: `${SD}/MadoCreatorOrganization`,
  serviceRequest: `${SD}/MadoRequestedProcedure`,
  wadoEndpoint: `${SD}/MadoWadoEndpoint`,
  viewerEndpoint: `${SD}/MadoWebViewerEndpoint`,
  fhirDocRef: `${SD}/MadoFhirDocumentReference`,
  kosDocRef: `${SD}/MadoDicomKosDocumentReference`,
} as const;

export const EXT = {
  anatomicalRegion: `${SD}/MadoAnatomicalRegionExtension`,
  numberOfFrames: `${SD}/MadoNumberOfFrames`,
  koDocumentTitle: `${SD}/MadoKeyObjectDocumentTitle`,
  retrieveLocationUid: `${SD}/MadoRetrieveLocationUIDExtension`,
  r5BodySite: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.bodySite',
  r5Modality: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.modality',
  r5ContentProfile: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.content.profile',
  dataAbsentReason: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason',
  /** HumanName representation (ISO 21090 EN.use): IDE ideographic, SYL syllabic (phonetic), ABC alphabetic */
  enRepresentation: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation',
} as const;

export const SYS = {
  dcm: 'http://dicom.nema.org/resources/ontology/DCM',
  dcmUid: 'http://dicom.nema.org/resources/ontology/DCMUID',
  /** Non-conformant system used by the IG JSON examples (decisions.md D4, D21): accepted on input only */
  dicomUidsLegacy: 'http://dicom.nema.org/resources/CodeSystem/DICOM_UIDs',
  rfc3986: 'urn:ietf:rfc:3986',
  dicomUid: 'urn:dicom:uid',
  sct: 'http://snomed.info/sct',
  loinc: 'http://loinc.org',
  ucum: 'http://unitsofmeasure.org',
  v20203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  connType: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
  /** IHE RO SMRT code system: the published code for a DICOM DIMSE Endpoint ("dicom-dimse") */
  dicomConnType: 'https://profiles.ihe.net/RO/SMRT/CodeSystem/dicom-endpoint-connection-type',
  payloadType: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type',
  deviceType: `${MADO}/CodeSystem/MadoDeviceType`,
  formatCode: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode',
  mhdIdType: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDIdentifierTypes',
  /** 99IHE has no FHIR URI; IHE's root OID for it (PS3.16 Table 8-1 lists none) */
  ihe99: 'urn:oid:1.3.6.1.4.1.19376.1.2.3',
} as const;

export const KOS_FORMAT = { system: SYS.dcmUid, code: '1.2.840.10008.5.1.4.1.1.88.59', display: 'Key Object Selection Document' };
export const FHIR_FORMAT = { system: SYS.formatCode, code: 'urn:ihe:rad:MADO:fhir-manifest:2026', display: 'RAD MADO' };

/** DICOM Coding Scheme Designator ⇄ FHIR system (PS3.16 Table 8-1 subset). */
const SCHEME_TO_SYSTEM: Record<string, string> = {
  DCM: SYS.dcm,
  SCT: SYS.sct,
  SRT: 'http://snomed.info/srt',
  LN: SYS.loinc,
  UCUM: SYS.ucum,
  '99IHE': SYS.ihe99,
  RADLEX: 'http://radlex.org',
  RADLEX_: 'http://radlex.org',
  FMA: 'http://purl.org/sig/ont/fma',
  ICD10: 'http://hl7.org/fhir/sid/icd-10',
  NCIt: 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl',
  HL7: 'http://terminology.hl7.org/CodeSystem/v2-0203',
};
const SYSTEM_TO_SCHEME: Record<string, string> = {
  [SYS.dcm]: 'DCM',
  [SYS.sct]: 'SCT',
  'http://snomed.info/srt': 'SRT',
  [SYS.loinc]: 'LN',
  [SYS.ucum]: 'UCUM',
  [SYS.ihe99]: '99IHE',
  'http://radlex.org': 'RADLEX',
  'http://purl.org/sig/ont/fma': 'FMA',
  'http://hl7.org/fhir/sid/icd-10': 'ICD10',
  'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl': 'NCIt',
};
/** Unknown schemes travel as this URN so that they round-trip (no FHIR URI exists for them). */
const SCHEME_URN = 'urn:dicom:coding-scheme:';

export function schemeToSystem(scheme: string): string | undefined {
  if (!scheme) return undefined;
  return SCHEME_TO_SYSTEM[scheme] ?? `${SCHEME_URN}${encodeURIComponent(scheme)}`;
}

export function systemToScheme(system: string | undefined): string {
  if (!system) return '';
  if (SYSTEM_TO_SCHEME[system]) return SYSTEM_TO_SCHEME[system]!;
  if (system.startsWith(SCHEME_URN)) return decodeURIComponent(system.slice(SCHEME_URN.length));
  if (system.startsWith('urn:oid:')) return system.slice(8);
  return system;
}

export interface FhirCoding { system?: string; version?: string; code?: string; display?: string }
export interface FhirCodeableConcept { coding?: FhirCoding[]; text?: string }

export function codeToCoding(c: Code): FhirCoding {
  const out: FhirCoding = {};
  const system = schemeToSystem(c.scheme);
  if (system) out.system = system;
  if (c.schemeVersion) out.version = c.schemeVersion;
  if (c.value) out.code = c.value;
  if (c.meaning) out.display = c.meaning;
  return out;
}

export function codingToCode(c: FhirCoding): Code {
  const out: Code = { value: c.code ?? '', scheme: systemToScheme(c.system) };
  if (c.display) out.meaning = c.display;
  if (c.version) out.schemeVersion = c.version;
  return out;
}

export function codeToConcept(c: Code): FhirCodeableConcept {
  if (!c.value && c.meaning) return { text: c.meaning };
  return { coding: [codeToCoding(c)] };
}

export function conceptToCode(cc: FhirCodeableConcept | undefined): Code | undefined {
  if (!cc) return undefined;
  const c = cc.coding?.find((x) => x.code) ?? cc.coding?.[0];
  if (c) {
    const code = codingToCode(c);
    if (!code.meaning && cc.text) code.meaning = cc.text;
    return code;
  }
  if (cc.text) return { value: '', scheme: '', meaning: cc.text };
  return undefined;
}

export function modalityCoding(m: string): FhirCoding {
  return { system: SYS.dcm, code: m };
}

/** KOS document titles of manifests (decisions.md D6; 113030 = XDS-I "Manifest"), recognised in Composition.type. */
export const KOS_TITLES = new Set(['MADOTEMP001|99IHE', 'ddd001|DCM', '113030|DCM']);
