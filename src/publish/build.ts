/**
 * DICOM JSON (PS3.18 Annex F) of one study → the manifest model of a MADO manifest (SUPPL §6.X.2).
 * Pure: no I/O. Fed one series at a time (study QIDO record, then per series its QIDO record and
 * its instances' metadata, one document at a time), it keeps only the few attributes TID 1600/1601
 * need per instance, so a study of any size never has all its metadata documents in memory.
 *
 * Patient identity is never guessed (SUPPL §6.X.2.5.1.1: the Patient ID is R+ and always qualified
 * by its assigning authority): Issuer of Patient ID (0010,0021) / Issuer of Patient ID Qualifiers
 * (0010,0024) from the instances, else the issuer configured for the upstream, else the study is
 * refused with the reason.
 */
import type { Accession, Code, Instance, Issuer, Manifest, PersonName, Series } from '../model/manifest.js';
import { KOS_SOP_CLASS_UID } from '../model/manifest.js';

export type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

export class PublishRefusal extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'PublishRefusal';
  }
}

export function str(ds: DicomJson | undefined, tag: string): string | undefined {
  const v = ds?.[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'object' ? undefined : String(v).trim();
  return s === '' ? undefined : s;
}

function int(ds: DicomJson | undefined, tag: string): number | undefined {
  const s = str(ds, tag);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isInteger(n) ? n : undefined;
}

function items(ds: DicomJson | undefined, tag: string): DicomJson[] {
  const v = ds?.[tag]?.Value;
  return Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as DicomJson[]) : [];
}

function personName(ds: DicomJson | undefined, tag: string): PersonName | undefined {
  const v = ds?.[tag]?.Value?.[0] as { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | undefined;
  if (!v || typeof v !== 'object') return undefined;
  const n: PersonName = {};
  if (v.Alphabetic) n.alphabetic = v.Alphabetic;
  if (v.Ideographic) n.ideographic = v.Ideographic;
  if (v.Phonetic) n.phonetic = v.Phonetic;
  return Object.keys(n).length ? n : undefined;
}

function code(ds: DicomJson): Code | undefined {
  const value = str(ds, '00080100') ?? str(ds, '00080119') ?? str(ds, '00080120');
  const scheme = str(ds, '00080102');
  if (!value || !scheme) return undefined;
  const c: Code = { value, scheme };
  const meaning = str(ds, '00080104');
  if (meaning) c.meaning = meaning;
  return c;
}

/** HL7 v2 Hierarchic Designator macro item (PS3.3 Table 10-17). */
function hierarchic(ds: DicomJson | undefined): Issuer | undefined {
  if (!ds) return undefined;
  const i: Issuer = {};
  const local = str(ds, '00400031');
  const uei = str(ds, '00400032');
  const type = str(ds, '00400033');
  if (local) i.localNamespace = local;
  if (uei) i.universalEntityId = uei;
  if (type) i.universalEntityIdType = type;
  return Object.keys(i).length ? i : undefined;
}

/** Body Part Examined (0018,0015) defined terms → SNOMED CT (PS3.16 CID 4031, Annex L). */
const BODY_PART: Record<string, [string, string]> = {
  HEAD: ['69536005', 'Head'], BRAIN: ['12738006', 'Brain'], NECK: ['45048000', 'Neck'], CHEST: ['51185008', 'Thorax'],
  ABDOMEN: ['818983003', 'Abdomen'], PELVIS: ['816092008', 'Pelvis'], SPINE: ['421060004', 'Spine'], CSPINE: ['122494005', 'Cervical spine'],
  TSPINE: ['122495006', 'Thoracic spine'], LSPINE: ['122496007', 'Lumbar spine'], BREAST: ['76752008', 'Breast'], HEART: ['80891009', 'Heart'],
  KNEE: ['72696002', 'Knee'], SHOULDER: ['16982005', 'Shoulder'], HAND: ['85562004', 'Hand'], FOOT: ['56459004', 'Foot'], HIP: ['29836001', 'Hip'],
  ARM: ['53120007', 'Upper limb'], LEG: ['61685007', 'Lower limb'], EXTREMITY: ['66019005', 'Limb'], WHOLEBODY: ['38266002', 'Entire body'],
};
/** Laterality (0020,0060) → SNOMED CT (PS3.16 CID 244). */
const LATERALITY: Record<string, [string, string]> = { R: ['24028007', 'Right'], L: ['7771000', 'Left'], B: ['51440002', 'Right and left'] };

function sct(map: Record<string, [string, string]>, v: string | undefined): Code | undefined {
  const hit = v ? map[v.toUpperCase().replace(/\s+/g, '')] : undefined;
  return hit ? { value: hit[0], scheme: 'SCT', meaning: hit[1] } : undefined;
}

export interface BuildOptions {
  /** The gateway's public WADO-RS base: consumers come through the gateway (MADO §X.4.1.2) */
  retrieveUrl: string;
  /** Identifies the upstream the gateway routes this series' retrievals to */
  retrieveLocationUid: string;
  /** Issuer configured for the upstream (used when the instances carry none) */
  patientIdIssuer?: Issuer;
  institutionName?: string;
  title: Code;
  /** "+HHMM", when the instances carry no Timezone Offset From UTC */
  defaultTimezoneOffset: string;
  manufacturer: string;
}

/** `key`: Patient ID and issuer as one string, compared for every instance */
interface PatientSeen { id: string; issuer?: Issuer; key: string; name?: PersonName; birthDate?: string; sex?: string }

/** One referenced KOS's TID 16XX descriptors: title and Key Object Description (113012). */
function koDescriptors(ds: DicomJson): Pick<Instance, 'koDocumentTitle' | 'koDescription'> {
  const out: Pick<Instance, 'koDocumentTitle' | 'koDescription'> = {};
  const title = items(ds, '0040A043')[0];
  const c = title ? code(title) : undefined;
  if (c) out.koDocumentTitle = c;
  for (const it of items(ds, '0040A730')) {
    const name = items(it, '0040A043')[0];
    if (str(it, '0040A040') === 'TEXT' && name && str(name, '00080100') === '113012') {
      const text = str(it, '0040A160');
      if (text) out.koDescription = text;
      break;
    }
  }
  return out;
}

export class ManifestBuilder {
  private study: DicomJson = {};
  private readonly series: Series[] = [];
  private patient?: PatientSeen;
  private timezone?: string;
  private institution?: string;
  private instanceCount = 0;
  /** The first instance's metadata: study attributes QIDO-RS did not return */
  private firstInstance?: DicomJson;

  constructor(readonly studyInstanceUid: string, private readonly o: BuildOptions) {}

  /** The study's QIDO-RS record (PS3.18 §10.6.3.3.1). */
  setStudy(ds: DicomJson): void {
    this.study = ds;
  }

  get instances(): number {
    return this.instanceCount;
  }

  /** Start a series from its QIDO-RS record; returns a sink for its instances' metadata documents. */
  beginSeries(qido: DicomJson): (instance: DicomJson) => void {
    const uid = str(qido, '0020000E');
    if (!uid) throw new PublishRefusal('GW_PUBLISH_BAD_UPSTREAM_DATA', 'The upstream listed a series without a Series Instance UID');
    const s: Series = { uid, instances: [], retrieveUrl: this.o.retrieveUrl, retrieveLocationUid: this.o.retrieveLocationUid };
    const modality = str(qido, '00080060');
    if (modality) s.modality = modality;
    this.series.push(s);
    let first = true;
    return (ds) => {
      if (first) {
        first = false;
        this.seriesFromInstance(s, qido, ds);
      }
      this.addInstance(s, ds);
    };
  }

  /** Series descriptors (TID 1602) from the series record, else its first instance. */
  private seriesFromInstance(s: Series, qido: DicomJson, ds: DicomJson): void {
    const pick = (tag: string) => str(qido, tag) ?? str(ds, tag);
    s.modality ??= str(ds, '00080060');
    const n = int(qido, '00200011') ?? int(ds, '00200011');
    if (n !== undefined) s.number = n;
    const description = pick('0008103E');
    if (description) s.description = description;
    const date = pick('00080021');
    if (date) s.date = date;
    const time = pick('00080031');
    if (time) s.time = time;
    const body = sct(BODY_PART, pick('00180015'));
    if (body) s.bodySite = body;
    const lat = sct(LATERALITY, pick('00200060'));
    if (lat) s.laterality = lat;
    this.timezone ??= str(ds, '00080201');
    this.institution ??= str(ds, '00080080');
    this.firstInstance ??= ds;
  }

  private addInstance(s: Series, ds: DicomJson): void {
    const sopClassUid = str(ds, '00080016');
    const sopInstanceUid = str(ds, '00080018');
    if (!sopClassUid || !sopInstanceUid) throw new PublishRefusal('GW_PUBLISH_BAD_UPSTREAM_DATA', `An instance of series ${s.uid} has no SOP Class or SOP Instance UID`);
    this.checkPatient(ds);
    const inst: Instance = { sopClassUid, sopInstanceUid };
    const number = int(ds, '00200013');
    if (number !== undefined) inst.number = number;
    const frames = int(ds, '00280008');
    if (frames !== undefined && frames > 0) inst.numberOfFrames = frames;
    if (sopClassUid === KOS_SOP_CLASS_UID) Object.assign(inst, koDescriptors(ds));
    s.instances.push(inst);
    this.instanceCount++;
  }

  /** Every instance must name the same patient: a manifest is about one patient (SUPPL §6.X.2.5). */
  private checkPatient(ds: DicomJson): void {
    const id = str(ds, '00100020');
    if (!id) throw new PublishRefusal('GW_PUBLISH_NO_PATIENT_ID', 'An instance of the study has no Patient ID (0010,0020); a manifest needs one');
    const local = str(ds, '00100021');
    const q = items(ds, '00100024')[0];
    // the issuer as compared: a qualifier's Local Namespace Entity ID wins over Issuer of Patient ID
    const key = `${id}\u0000${str(q, '00400031') ?? local ?? ''}\u0000${str(q, '00400032') ?? ''}\u0000${str(q, '00400033') ?? ''}`;
    if (!this.patient) {
      const qualifiers = hierarchic(q);
      const issuer = local || qualifiers ? { ...(local ? { localNamespace: local } : {}), ...qualifiers } : undefined;
      this.patient = { id, issuer, key, name: personName(ds, '00100010'), birthDate: str(ds, '00100030'), sex: str(ds, '00100040') };
      return;
    }
    if (this.patient.key !== key) {
      throw new PublishRefusal('GW_PUBLISH_PATIENT_MISMATCH', 'The instances of the study name different patients (Patient ID or its issuer differ); the archive must be reconciled first');
    }
  }

  /** Patient with its issuer: from the archive, else the upstream's configured issuer, else refused. */
  private patientOf(): Manifest['patient'] {
    const p = this.patient;
    if (!p) throw new PublishRefusal('GW_PUBLISH_EMPTY_STUDY', 'The study has no instances');
    let issuer = p.issuer;
    const conf = this.o.patientIdIssuer;
    if (!issuer) issuer = conf;
    else if (!issuer.universalEntityId && conf?.universalEntityId && (!conf.localNamespace || conf.localNamespace === issuer.localNamespace)) issuer = { ...conf, ...issuer, universalEntityId: conf.universalEntityId, universalEntityIdType: conf.universalEntityIdType };
    if (!issuer) {
      throw new PublishRefusal('GW_PUBLISH_NO_PATIENT_ISSUER', 'The instances carry no Issuer of Patient ID and no patientIdIssuer is configured for this upstream: the Patient ID cannot be qualified (SUPPL §6.X.2.5.1.1.3), so no manifest is made');
    }
    const id = { value: p.id, issuer };
    const out: Manifest['patient'] = { id, otherIds: [{ ...structuredClone(id), typeOfPatientId: 'TEXT' }] };
    if (p.name) out.name = p.name;
    if (p.birthDate) out.birthDate = p.birthDate;
    if (p.sex) out.sex = p.sex;
    return out;
  }

  private studyOf(): Manifest['study'] {
    const q = this.study;
    const f = this.firstInstance;
    const pick = (tag: string) => str(q, tag) ?? str(f, tag);
    const study: Manifest['study'] = { studyInstanceUid: this.studyInstanceUid, requests: [], procedureCodes: [], modalities: [], anatomicalRegions: [] };
    const set = <K extends keyof Manifest['study']>(k: K, v: Manifest['study'][K] | undefined) => { if (v !== undefined) study[k] = v; };
    set('date', pick('00080020'));
    set('time', pick('00080030'));
    set('description', pick('00081030'));
    set('studyId', pick('00200010'));
    set('referringPhysicianName', personName(q, '00080090') ?? personName(f, '00080090'));
    const acc = pick('00080050');
    let accession: Accession | undefined;
    if (acc) {
      accession = { value: acc };
      const iss = hierarchic(items(q, '00080051')[0] ?? items(f, '00080051')[0]);
      if (iss) accession.issuer = iss;
      study.accession = accession;
    }
    // Referenced Request Sequence: R+, one item (SUPPL §6.X.2.8.1)
    study.requests.push({ studyInstanceUid: this.studyInstanceUid, ...(accession ? { accession } : {}), requestedProcedureCodes: [] });
    for (const it of [...items(q, '00081032'), ...(items(q, '00081032').length ? [] : items(f, '00081032'))]) {
      const c = code(it);
      if (c) study.procedureCodes.push(c);
    }
    return study;
  }

  /** The manifest; `sopInstanceUid` and the content date/time ("now") are the caller's. */
  finish(sopInstanceUid: string, now: Date): Manifest {
    const patient = this.patientOf();
    const study = this.studyOf();
    const series = this.series.filter((s) => s.instances.length > 0);
    if (!series.length) throw new PublishRefusal('GW_PUBLISH_EMPTY_STUDY', 'The study has no instances');
    const byNumber = (a?: number, b?: number) => (a ?? Number.MAX_SAFE_INTEGER) - (b ?? Number.MAX_SAFE_INTEGER);
    series.sort((a, b) => byNumber(a.number, b.number) || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
    for (const s of series) {
      s.instances.sort((a, b) => byNumber(a.number, b.number) || (a.sopInstanceUid < b.sopInstanceUid ? -1 : 1));
      s.numberOfInstances = s.instances.length;
      if (s.modality && !study.modalities.includes(s.modality)) study.modalities.push(s.modality);
      if (s.bodySite && !study.anatomicalRegions.some((r) => r.value === s.bodySite!.value)) study.anatomicalRegions.push(s.bodySite);
    }
    study.numberOfSeries = series.length;
    const tz = this.timezone && /^[+-]\d{4}$/.test(this.timezone) ? this.timezone : this.o.defaultTimezoneOffset;
    const local = localDateTime(now, tz);
    const institutionName = this.o.institutionName ?? this.institution;
    return {
      document: {
        sopInstanceUid, sopClassUid: KOS_SOP_CLASS_UID, title: { ...this.o.title }, contentDate: local.date, contentTime: local.time,
        timezoneOffset: tz, manufacturer: this.o.manufacturer, ...(institutionName ? { institutionName } : {}),
      },
      patient,
      study,
      evidence: [{ studyInstanceUid: this.studyInstanceUid, series }],
    };
  }
}

/** DA / TM of `now` at the manifest's Timezone Offset From UTC (it applies to every DA/TM). */
function localDateTime(now: Date, offset: string): { date: string; time: string } {
  const sign = offset.startsWith('-') ? -1 : 1;
  const mins = sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
  const d = new Date(now.getTime() + mins * 60_000).toISOString();
  return { date: d.slice(0, 10).replace(/-/g, ''), time: d.slice(11, 19).replace(/:/g, '') };
}

/**
 * What makes two manifests of one study "the same publication": everything but the document's own
 * identity and timestamps (SOP Instance UID, content date/time).
 */
export function publicationKey(m: Manifest): string {
  return canonical([m.patient, m.study, m.evidence]);
}

/** JSON with object keys sorted (a stored model comes back from jsonb with its keys reordered). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
