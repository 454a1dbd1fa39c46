/**
 * Deterministic synthetic manifests for benches and tests (ingest, search, KOS codec).
 * Same options → byte-identical manifest; no randomness, no clock.
 */
import type { Manifest, Series, StudyReference } from '../model/manifest.js';
import { KOS_SOP_CLASS_UID, TITLE_MANIFEST_WITH_DESCRIPTION } from './codes.js';
import { derivedUid } from './uid.js';

export interface SyntheticOptions { studies?: number; series: number; instancesPerSeries: number; seed: number | string }

const MODALITIES = ['CT', 'MR', 'US', 'CR', 'DX', 'PT', 'NM', 'MG', 'XA'];
const SOP_CLASS: Record<string, string> = {
  CT: '1.2.840.10008.5.1.4.1.1.2', MR: '1.2.840.10008.5.1.4.1.1.4', US: '1.2.840.10008.5.1.4.1.1.6.1', CR: '1.2.840.10008.5.1.4.1.1.1',
  DX: '1.2.840.10008.5.1.4.1.1.1.1', PT: '1.2.840.10008.5.1.4.1.1.128', NM: '1.2.840.10008.5.1.4.1.1.20', MG: '1.2.840.10008.5.1.4.1.1.1.2',
  XA: '1.2.840.10008.5.1.4.1.1.12.1',
};
const REGIONS = [
  { value: '69536005', scheme: 'SCT', meaning: 'Head' }, { value: '51185008', scheme: 'SCT', meaning: 'Thorax' },
  { value: '818983003', scheme: 'SCT', meaning: 'Abdomen' }, { value: '774007', scheme: 'SCT', meaning: 'Structure of head and/or neck' },
];

/** Small deterministic PRNG (mulberry32) seeded from the seed string. */
function prng(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) { h = Math.imul(h ^ seed.charCodeAt(i), 3432918353); h = (h << 13) | (h >>> 19); }
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticManifest(o: SyntheticOptions): Manifest {
  const seed = String(o.seed);
  const rnd = prng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
  const u = (s: string) => derivedUid(`synthetic:${seed}:${s}`);
  const nStudies = Math.max(1, o.studies ?? 1);
  const d8 = (y: number) => `${y}${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`;
  const t6 = () => `${String(Math.floor(rnd() * 24)).padStart(2, '0')}${String(Math.floor(rnd() * 60)).padStart(2, '0')}${String(Math.floor(rnd() * 60)).padStart(2, '0')}`;
  const pid = `PAT${Math.floor(rnd() * 1e8).toString().padStart(8, '0')}`;
  const issuer = { localNamespace: 'HOSP', universalEntityId: '1.2.3.4.5.6.7', universalEntityIdType: 'ISO' };
  const location = '1.2.3.4.5.6.7.8';
  const studyDate = d8(2020 + Math.floor(rnd() * 6));
  const evidence: StudyReference[] = [];
  const modalities: string[] = [];
  for (let st = 0; st < nStudies; st++) {
    const studyUid = u(`study:${st}`);
    const series: Series[] = [];
    for (let se = 0; se < o.series; se++) {
      const mod = pick(MODALITIES);
      if (!modalities.includes(mod)) modalities.push(mod);
      const uid = u(`series:${st}:${se}`);
      const instances = [];
      for (let i = 0; i < o.instancesPerSeries; i++) {
        instances.push({ sopClassUid: SOP_CLASS[mod]!, sopInstanceUid: u(`sop:${st}:${se}:${i}`), number: i + 1 });
      }
      series.push({
        uid, modality: mod, number: se + 1, description: `${mod} series ${se + 1}`, date: studyDate, time: t6(),
        bodySite: pick(REGIONS), retrieveUrl: `https://pacs.example.org/dicom-web/studies/${studyUid}/series/${uid}`,
        retrieveLocationUid: location, retrieveAeTitle: 'PACS', numberOfInstances: instances.length, instances,
      });
    }
    evidence.push({ studyInstanceUid: studyUid, displayUri: `https://viewer.example.org/?study=${studyUid}`, series });
  }
  const sop = u('kos');
  const accession = `ACC${Math.floor(rnd() * 1e9)}`;
  const id = { value: pid, issuer };
  return {
    document: {
      sopInstanceUid: sop, sopClassUid: KOS_SOP_CLASS_UID, seriesInstanceUid: u('kos-series'), seriesNumber: 1, instanceNumber: 1,
      title: { ...TITLE_MANIFEST_WITH_DESCRIPTION }, description: `Synthetic manifest ${seed}`, contentDate: studyDate, contentTime: t6(),
      timezoneOffset: '+0100', manufacturer: 'mado-gateway', institutionName: 'Synthetic Hospital^^^^^^^^^1.2.3.4.5.6.7',
      institutionId: '1.2.3.4.5.6.7', specificCharacterSet: 'ISO_IR 192',
    },
    patient: { id, otherIds: [{ ...structuredClone(id), typeOfPatientId: 'TEXT' }], name: { alphabetic: `SYNTH^PATIENT${seed}` }, birthDate: '19700101', sex: pick(['M', 'F', 'O']) },
    study: {
      studyInstanceUid: evidence[0]!.studyInstanceUid, date: studyDate, time: t6(), description: 'Synthetic study',
      accession: { value: accession, issuer: { universalEntityId: '1.2.3.4.5.6.7.9', universalEntityIdType: 'ISO' } },
      requests: [{ studyInstanceUid: evidence[0]!.studyInstanceUid, accession: { value: accession, issuer: { universalEntityId: '1.2.3.4.5.6.7.9', universalEntityIdType: 'ISO' } },
        placerOrderNumber: `PO${accession}`, placerIssuer: { universalEntityId: '1.2.3.4.5.6.7.10', universalEntityIdType: 'ISO' }, requestedProcedureCodes: [] }],
      procedureCodes: [], modalities, anatomicalRegions: [REGIONS[0]!], numberOfSeries: nStudies * o.series,
    },
    evidence,
  };
}
