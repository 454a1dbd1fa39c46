/**
 * QIDO-RS (RAD-129) answered from the manifest index — no upstream call. PS3.18 §8.3.4 / §10.6
 * (PS3.18 §8.3.4, §10.6.3.3): matching on the attributes the index holds, includefield (and =all),
 * limit/offset with a server maximum (Warning 299 when the server capped the page), default return
 * keys per level, Retrieve URL (0008,1190) pointing at this gateway.
 *
 * No matches → 200 with [] (PS3.18 also allows 204; an empty array is easier for clients and is
 * what dicomweb-client and OHIF handle without special cases). Unsupported matching keys → 400
 * (silently ignoring a filter would widen the result).
 */
import type { Request, Response, Router } from 'express';
import type { AppDeps } from '../deps.js';
import { patientFilter, principalOf } from '../auth/principal.js';
import { isValidUid } from '../dicom/uid.js';
import { GatewayError } from '../http/errors.js';
import { searchIndex, type InstanceRow, type QidoCriteria, type QidoLevel, type Range, type SeriesRow, type StudyRow } from '../store/imaging-index.js';
import { negotiate } from './accept.js';
import { gatewayRetrieveUrl } from './metadata.js';
import { uidParam } from './params.js';

export const QIDO_MAX_LIMIT = 1000;

type Row = StudyRow & Partial<SeriesRow> & Partial<InstanceRow>;
type Value = unknown[] | null | undefined; // undefined = unknown (omit), null = known empty (Type 2)

interface Attr {
  keyword: string;
  tag: string;
  vr: string;
  level: QidoLevel;
  get: (r: Row, base: string) => Value;
}

const str = (v: string | null | undefined): Value => (v === null || v === undefined || v === '' ? null : [v]);
const num = (v: number | null | undefined): Value => (v === null || v === undefined ? null : [v]);
const pn = (v: string | null | undefined): Value => {
  if (!v) return null;
  const [a, i, p] = v.split('=');
  const o: Record<string, string> = {};
  if (a) o.Alphabetic = a;
  if (i) o.Ideographic = i;
  if (p) o.Phonetic = p;
  return [o];
};

const ATTRS: Attr[] = [
  { keyword: 'SpecificCharacterSet', tag: '00080005', vr: 'CS', level: 'study', get: () => ['ISO_IR 192'] },
  { keyword: 'StudyDate', tag: '00080020', vr: 'DA', level: 'study', get: (r) => str(r.studyDate) },
  { keyword: 'StudyTime', tag: '00080030', vr: 'TM', level: 'study', get: (r) => str(r.studyTime) },
  { keyword: 'AccessionNumber', tag: '00080050', vr: 'SH', level: 'study', get: (r) => str(r.accessionNumber) },
  {
    keyword: 'IssuerOfAccessionNumberSequence',
    tag: '00080051',
    vr: 'SQ',
    level: 'study',
    get: (r) => (r.accessionIssuer ? [{ '00400031': { vr: 'UT', Value: [r.accessionIssuer] } }] : undefined),
  },
  // never an empty value: viewers iterate its Value (an unknown modality is omitted, PS3.18 §10.6.3.3)
  { keyword: 'ModalitiesInStudy', tag: '00080061', vr: 'CS', level: 'study', get: (r) => (r.modalities?.length ? r.modalities : undefined) },
  { keyword: 'ReferringPhysicianName', tag: '00080090', vr: 'PN', level: 'study', get: (r) => pn(r.referringPhysician) },
  { keyword: 'TimezoneOffsetFromUTC', tag: '00080201', vr: 'SH', level: 'study', get: (r) => (r.timezoneOffset ? [r.timezoneOffset] : undefined) },
  { keyword: 'StudyDescription', tag: '00081030', vr: 'LO', level: 'study', get: (r) => str(r.description) },
  { keyword: 'PatientName', tag: '00100010', vr: 'PN', level: 'study', get: (r) => pn(r.patientName) },
  { keyword: 'PatientID', tag: '00100020', vr: 'LO', level: 'study', get: (r) => str(r.patientIdValue) },
  { keyword: 'IssuerOfPatientID', tag: '00100021', vr: 'LO', level: 'study', get: (r) => (r.patientIdIssuer ? [r.patientIdIssuer] : undefined) },
  { keyword: 'PatientBirthDate', tag: '00100030', vr: 'DA', level: 'study', get: (r) => str(r.patientBirthDate) },
  { keyword: 'PatientSex', tag: '00100040', vr: 'CS', level: 'study', get: (r) => str(r.patientSex) },
  { keyword: 'StudyInstanceUID', tag: '0020000D', vr: 'UI', level: 'study', get: (r) => [r.study] },
  { keyword: 'StudyID', tag: '00200010', vr: 'SH', level: 'study', get: (r) => str(r.studyId) },
  { keyword: 'NumberOfStudyRelatedSeries', tag: '00201206', vr: 'IS', level: 'study', get: (r) => [r.nSeries ?? 0] },
  { keyword: 'NumberOfStudyRelatedInstances', tag: '00201208', vr: 'IS', level: 'study', get: (r) => [r.nInstances ?? 0] },
  // Type 1 in the General Series Module (PS3.3 C.7.3.1): omitted rather than empty when unknowable
  { keyword: 'Modality', tag: '00080060', vr: 'CS', level: 'series', get: (r) => (r.modality ? [r.modality] : undefined) },
  { keyword: 'SeriesDate', tag: '00080021', vr: 'DA', level: 'series', get: (r) => (r.seriesDate ? [r.seriesDate] : undefined) },
  { keyword: 'SeriesTime', tag: '00080031', vr: 'TM', level: 'series', get: (r) => (r.seriesTime ? [r.seriesTime] : undefined) },
  { keyword: 'SeriesDescription', tag: '0008103E', vr: 'LO', level: 'series', get: (r) => (r.seriesDescription ? [r.seriesDescription] : undefined) },
  { keyword: 'SeriesInstanceUID', tag: '0020000E', vr: 'UI', level: 'series', get: (r) => (r.series ? [r.series] : undefined) },
  { keyword: 'SeriesNumber', tag: '00200011', vr: 'IS', level: 'series', get: (r) => num(r.seriesNumber) },
  { keyword: 'NumberOfSeriesRelatedInstances', tag: '00201209', vr: 'IS', level: 'series', get: (r) => [r.nSeriesInstances ?? 0] },
  { keyword: 'SOPClassUID', tag: '00080016', vr: 'UI', level: 'instance', get: (r) => (r.sopClass ? [r.sopClass] : undefined) },
  { keyword: 'SOPInstanceUID', tag: '00080018', vr: 'UI', level: 'instance', get: (r) => (r.sop ? [r.sop] : undefined) },
  { keyword: 'InstanceNumber', tag: '00200013', vr: 'IS', level: 'instance', get: (r) => num(r.instanceNumber) },
  { keyword: 'NumberOfFrames', tag: '00280008', vr: 'IS', level: 'instance', get: (r) => (r.frames ? [r.frames] : undefined) },
];
const RETRIEVE_URL: Attr = { keyword: 'RetrieveURL', tag: '00081190', vr: 'UR', level: 'study', get: () => undefined };

const BY_NAME = new Map<string, Attr>();
for (const a of [...ATTRS, RETRIEVE_URL]) {
  BY_NAME.set(a.keyword.toLowerCase(), a);
  BY_NAME.set(a.tag.toLowerCase(), a);
}

/** PS3.18 Tables 10.6.3-3/-4/-5 default return keys (PS3.18 §10.6.3.3). */
const DEFAULTS: Record<QidoLevel, string[]> = {
  study: ['00080005', '00080020', '00080030', '00080050', '00080061', '00080090', '00080201', '00081190', '00100010', '00100020', '00100021', '00100030', '00100040', '0020000D', '00200010', '00201206', '00201208'],
  series: ['00080060', '00080201', '0008103E', '00081190', '0020000E', '00200011', '00201209'],
  instance: ['00080016', '00080018', '00080201', '00081190', '00200013', '00280008'],
};
const LEVEL_RANK: Record<QidoLevel, number> = { study: 0, series: 1, instance: 2 };

const IGNORED = new Set(['fuzzymatching', 'emptyvaluematching', 'multiplevaluematching']);
const ACCESSION_ISSUER_KEYS = new Set(['00080051.00400031', 'issuerofaccessionnumbersequence.localnamespaceentityid']);

function bad(message: string): GatewayError {
  return new GatewayError(400, 'GW_QIDO_BAD_PARAM', message);
}

function uidList(name: string, v: string): string[] {
  const list = v.split(/[,\\]/).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0 || list.length > 1000 || !list.every(isValidUid)) throw bad(`${name} must be a list of valid UIDs`);
  return list;
}

function range(name: string, v: string, re: RegExp): Range | undefined {
  const m = /^([^-]*)(-?)([^-]*)$/.exec(v);
  if (!m) throw bad(`${name}: expected a value or a range a-b, -b, a-`);
  const [, a, dash, b] = m;
  if ((a && !re.test(a)) || (b && !re.test(b))) throw bad(`${name}: invalid value`);
  if (!dash) return a ? { from: a, to: a } : undefined;
  if (!a && !b) return undefined;
  return { from: a || undefined, to: b || undefined };
}

function pattern(name: string, v: string, max = 64): string | undefined {
  if (v === '' || v === '*') return undefined; // universal matching
  if (v.length > max || /[\u0000-\u001f]/.test(v)) throw bad(`${name}: invalid value`);
  return v;
}

function codes(name: string, v: string): string[] {
  const list = v.split(/[,\\]/).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0 || !list.every((c) => /^[A-Z0-9_ ]{1,16}$/.test(c))) throw bad(`${name} must be a list of code strings`);
  return list;
}

function int(name: string, v: string): number {
  if (!/^\d{1,9}$/.test(v)) throw bad(`${name} must be a non-negative integer`);
  return Number(v);
}

interface Parsed {
  criteria: QidoCriteria;
  limit: number;
  offset: number;
  capped: boolean;
  include: Set<string>;
  includeAll: boolean;
}

export function parseQido(qs: string, level: QidoLevel): Parsed {
  const p = new URLSearchParams(qs);
  const c: QidoCriteria = {};
  const include = new Set<string>();
  let includeAll = false;
  let limit: number | undefined;
  let offset = 0;
  const seen = new Set<string>();
  for (const [rawKey, value] of p) {
    const key = rawKey.trim().toLowerCase();
    if (key === 'includefield') {
      for (const f of value.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (f.toLowerCase() === 'all') includeAll = true;
        else {
          const a = BY_NAME.get(f.toLowerCase());
          if (a) include.add(a.tag);
          else if (!/^[0-9A-Fa-f]{8}$|^[A-Za-z][A-Za-z0-9]{0,63}$/.test(f)) throw bad(`includefield: "${f.slice(0, 64)}" is not an attribute keyword or tag`);
          // unknown attributes are "return if available": the index does not hold them
        }
      }
      continue;
    }
    if (seen.has(key)) throw bad(`Parameter "${rawKey.slice(0, 64)}" given more than once`);
    seen.add(key);
    if (IGNORED.has(key)) {
      if (!/^(true|false)$/i.test(value)) throw bad(`${rawKey} must be true or false`);
      continue;
    }
    if (key === 'limit') {
      limit = int('limit', value);
      continue;
    }
    if (key === 'offset') {
      offset = int('offset', value);
      continue;
    }
    if (ACCESSION_ISSUER_KEYS.has(key)) {
      const v = pattern(rawKey, value);
      if (v !== undefined) c.accessionIssuer = v;
      continue;
    }
    const a = BY_NAME.get(key);
    if (!a) throw bad(`Matching on "${rawKey.slice(0, 64)}" is not supported`);
    if (value === '' || value === '*') continue; // universal match
    switch (a.tag) {
      case '0020000D': c.studyUids = uidList(a.keyword, value); break;
      case '0020000E': c.seriesUids = uidList(a.keyword, value); break;
      case '00080018': c.sopUids = uidList(a.keyword, value); break;
      case '00080016': c.sopClassUids = uidList(a.keyword, value); break;
      case '00080020': c.studyDate = range(a.keyword, value, /^\d{8}$/); break;
      case '00080030': c.studyTime = range(a.keyword, value, /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/); break;
      case '00100030': c.patientBirthDate = range(a.keyword, value, /^\d{8}$/); break;
      case '00080050': c.accessionNumber = pattern(a.keyword, value, 16); break;
      case '00080061': c.modalitiesInStudy = codes(a.keyword, value); break;
      case '00080060': c.modalities = codes(a.keyword, value); break;
      case '00100020': c.patientId = pattern(a.keyword, value); break;
      case '00100021': c.patientIdIssuer = pattern(a.keyword, value); break;
      case '00100010': c.patientName = pattern(a.keyword, value, 324); break;
      case '00100040': c.patientSex = codes(a.keyword, value)[0]; break;
      case '00081030': c.studyDescription = pattern(a.keyword, value); break;
      case '00200010': c.studyId = pattern(a.keyword, value, 16); break;
      case '0008103E': c.seriesDescription = pattern(a.keyword, value); break;
      case '00200011': c.seriesNumber = int(a.keyword, value); break;
      case '00200013': c.instanceNumber = int(a.keyword, value); break;
      default:
        throw bad(`Matching on "${rawKey.slice(0, 64)}" is not supported`);
    }
    include.add(a.tag); // matched attributes are returned (PS3.18 §10.6.3.3)
  }
  if (offset > 1_000_000) throw bad('offset too large');
  const capped = limit === undefined || limit > QIDO_MAX_LIMIT;
  void level;
  return { criteria: c, limit: Math.min(limit ?? QIDO_MAX_LIMIT, QIDO_MAX_LIMIT), offset, capped, include, includeAll };
}

/** The attributes returned for a row at `level`, as a sorted DICOM JSON object. `levels`: the
 * query level plus the upper levels the path does not fix (PS3.18 §10.6.3.3: "all series" also
 * returns study attributes, etc.). */
function toJson(r: Row, level: QidoLevel, levels: Set<QidoLevel>, p: Parsed, base: string): Record<string, unknown> {
  const rank = LEVEL_RANK[level];
  const tags = new Set<string>();
  for (const l of levels) for (const t of DEFAULTS[l]) tags.add(t);
  for (const a of ATTRS) {
    if (LEVEL_RANK[a.level] > rank) continue; // lower-level attributes are never returned
    if (p.includeAll && levels.has(a.level)) tags.add(a.tag);
    if (p.include.has(a.tag)) tags.add(a.tag);
  }
  const out: Record<string, unknown> = {};
  for (const tag of [...tags].sort()) {
    if (tag === '00081190') {
      out[tag] = { vr: 'UR', Value: [level === 'study' ? gatewayRetrieveUrl(base, r.study) : level === 'series' ? gatewayRetrieveUrl(base, r.study, r.series) : gatewayRetrieveUrl(base, r.study, r.series, r.sop)] };
      continue;
    }
    const a = BY_NAME.get(tag.toLowerCase());
    if (!a || LEVEL_RANK[a.level] > rank) continue;
    const v = a.get(r, base);
    if (v === undefined) continue;
    out[tag] = v === null ? { vr: a.vr } : { vr: a.vr, Value: v };
  }
  return out;
}

export function mountQido(router: Router, deps: AppDeps): void {
  const base = deps.config.publicBaseUrl;
  // scope: what the path fixes ('study' = /studies/{s}/…, 'series' = /studies/{s}/series/{se}/…)
  const search = (level: QidoLevel, scope: 'none' | 'study' | 'series') => async (req: Request, res: Response) => {
    const study = scope !== 'none' ? uidParam(req, 'study') : undefined;
    const series = scope === 'series' ? uidParam(req, 'series') : undefined;
    negotiate('search', req.get('accept'));
    const qs = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    const p = parseQido(qs, level);
    if (study) {
      if (p.criteria.studyUids && !p.criteria.studyUids.includes(study)) p.criteria.studyUids = ['0'];
      else p.criteria.studyUids = [study];
    }
    if (series) {
      if (p.criteria.seriesUids && !p.criteria.seriesUids.includes(series)) p.criteria.seriesUids = ['0'];
      else p.criteria.seriesUids = [series];
    }
    const rows = (await searchIndex(deps.db, patientFilter(principalOf(req)), { level, criteria: p.criteria, limit: p.limit, offset: p.offset })) as Row[];
    const more = rows.length > p.limit;
    const page = more ? rows.slice(0, p.limit) : rows;
    const levels = new Set<QidoLevel>([level]);
    if (scope === 'none' && level !== 'study') levels.add('study');
    if (scope !== 'series' && level === 'instance') levels.add('series');
    const body = page.map((r) => toJson(r, level, levels, p, base));
    res.locals.audit = {
      subtype: 'RAD-129',
      action: 'E',
      query: qs,
      count: page.length,
      patientIds: [...new Set(page.map((r) => r.patientId).filter((x): x is string => !!x))],
      entities: study ? [`study:${study}`, ...(series ? [`series:${series}`] : [])] : undefined,
    };
    if (more && p.capped) {
      // PS3.18 §8.3.4.4 (Warning 299 when the server limited the number of results)
      res.setHeader('Warning', `299 ${new URL(base).host} "The number of results exceeded the maximum supported by the server. Additional results can be requested."`);
    }
    res.status(200).type('application/dicom+json').send(JSON.stringify(body));
  };
  router.get('/studies', search('study', 'none'));
  router.get('/series', search('series', 'none'));
  router.get('/instances', search('instance', 'none'));
  router.get('/studies/:study/series', search('series', 'study'));
  router.get('/studies/:study/instances', search('instance', 'study'));
  router.get('/studies/:study/series/:series/instances', search('instance', 'series'));
}
