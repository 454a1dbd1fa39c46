/**
 * Codes used in MADO KOS content (SUPPL TID 2010/1600). The reader accepts all three descriptor code
 * families (99IHE MADOTEMP00x, CP-2595 placeholders ddd00x/DCM, final DCM 1315xx; decisions.md D6/D7);
 * the writer emits the final DCM codes.
 */
import type { Code, KosKind } from '../model/manifest.js';

export { KOS_SOP_CLASS_UID } from '../model/manifest.js';

export const TITLE_MANIFEST_WITH_DESCRIPTION: Code = { value: 'MADOTEMP001', scheme: '99IHE', meaning: 'Manifest with Description' };

export type Concept =
  | 'seriesDescription' | 'seriesDate' | 'seriesTime' | 'numberOfSeriesInstances' | 'numberOfStudySeries'
  | 'keyObjectDescription' | 'procedureCode' | 'imageLibrary' | 'imageLibraryGroup' | 'modality' | 'targetRegion'
  | 'seriesNumber' | 'seriesInstanceUid' | 'laterality' | 'instanceNumber' | 'numberOfFrames' | 'documentTitle';

/** Concept name code value → meaning. Matched on the code value alone: these values are unique
 * across the families and some producers omit the coding scheme (decisions.md D12). */
const CONCEPTS: Record<string, Concept> = {
  '131563': 'seriesDescription', MADOTEMP002: 'seriesDescription', ddd002: 'seriesDescription',
  '131561': 'seriesDate', MADOTEMP003: 'seriesDate', ddd003: 'seriesDate',
  '131562': 'seriesTime', MADOTEMP004: 'seriesTime', ddd004: 'seriesTime',
  '131564': 'numberOfSeriesInstances', MADOTEMP007: 'numberOfSeriesInstances', ddd007: 'numberOfSeriesInstances',
  '131565': 'numberOfStudySeries', MADOTEMP009: 'numberOfStudySeries', ddd009: 'numberOfStudySeries',
  '113012': 'keyObjectDescription',
  '121023': 'procedureCode',
  '111028': 'imageLibrary',
  '126200': 'imageLibraryGroup',
  '121139': 'modality',
  '123014': 'targetRegion',
  '113607': 'seriesNumber',
  '112002': 'seriesInstanceUid',
  '111027': 'laterality',
  '113609': 'instanceNumber',
  '121140': 'numberOfFrames',
  '121144': 'documentTitle',
};
export function conceptOf(value: string | undefined): Concept | undefined {
  return value === undefined ? undefined : CONCEPTS[value];
}

/** Codes the writer emits (final DCM values, SUPPL TID 2010/1600 table). */
export const C = {
  keyObjectDescription: { value: '113012', scheme: 'DCM', meaning: 'Key Object Description' },
  procedureCode: { value: '121023', scheme: 'DCM', meaning: 'Procedure Code' },
  imageLibrary: { value: '111028', scheme: 'DCM', meaning: 'Image Library' },
  imageLibraryGroup: { value: '126200', scheme: 'DCM', meaning: 'Image Library Group' },
  modality: { value: '121139', scheme: 'DCM', meaning: 'Modality' },
  targetRegion: { value: '123014', scheme: 'DCM', meaning: 'Target Region' },
  numberOfStudySeries: { value: '131565', scheme: 'DCM', meaning: 'Number of Study Related Series' },
  seriesDate: { value: '131561', scheme: 'DCM', meaning: 'Series Date' },
  seriesTime: { value: '131562', scheme: 'DCM', meaning: 'Series Time' },
  seriesDescription: { value: '131563', scheme: 'DCM', meaning: 'Series Description' },
  numberOfSeriesInstances: { value: '131564', scheme: 'DCM', meaning: 'Number of Series Related Instances' },
  seriesNumber: { value: '113607', scheme: 'DCM', meaning: 'Series Number' },
  seriesInstanceUid: { value: '112002', scheme: 'DCM', meaning: 'Series Instance UID' },
  laterality: { value: '111027', scheme: 'DCM', meaning: 'Image Laterality' },
  instanceNumber: { value: '113609', scheme: 'DCM', meaning: 'Instance Number' },
  numberOfFrames: { value: '121140', scheme: 'DCM', meaning: 'Number of Frames' },
  documentTitle: { value: '121144', scheme: 'DCM', meaning: 'Document Title' },
  unitSeries: { value: '{series}', scheme: 'UCUM', meaning: 'series' },
  unitInstances: { value: '{instances}', scheme: 'UCUM', meaning: 'instances' },
  unitFrames: { value: '{frames}', scheme: 'UCUM', meaning: 'frames' },
} satisfies Record<string, Code>;

/** CID 7011 Rejection Note titles (IOCM, PS3.16): these KOS instruct deletion, never a manifest. */
const REJECTION_TITLES = new Set(['113001', '113037', '113038', '113039']);
/** CID 7010 key-image style titles (Key Image Note and friends, PS3.16). */
const KIN_TITLES = new Set(['113000', '113002', '113003', '113004', '113005', '113006', '113007', '113008',
  '113009', '113010', '113013', '113018', '113020', '113021', '113036']);

export interface TitleClass { kind: KosKind; mado: boolean }

/** Classify a KOS by its document title (decisions.md D6: accept MADOTEMP001/99IHE and ddd001/DCM;
 * the final DCM code is not published yet, so a "Manifest with Description" meaning is accepted too). */
export function classifyTitle(t: Code | undefined): TitleClass {
  if (!t) return { kind: 'other-kos', mado: false };
  if (t.value === 'MADOTEMP001' || t.value === 'ddd001') return { kind: 'manifest', mado: true };
  if (t.scheme === 'DCM' || t.scheme === '') {
    if (REJECTION_TITLES.has(t.value)) return { kind: 'rejection-note', mado: false };
    if (KIN_TITLES.has(t.value)) return { kind: 'key-image-note', mado: false };
    // XDS-I.b "Manifest" (113030): a manifest, but not MADO's "Manifest with Description".
    if (t.value === '113030') return { kind: 'manifest', mado: false };
  }
  if ((t.meaning ?? '').trim().toLowerCase() === 'manifest with description') return { kind: 'manifest', mado: true };
  return { kind: 'other-kos', mado: false };
}
