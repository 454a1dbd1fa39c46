/**
 * A patient's manifests, one row each (both DocumentReferences of a manifest share its
 * masterIdentifier), with status and replacement, source format, counts and per-series
 * thumbnails; actions: open in a viewer, download the KOS or the FHIR manifest, show both
 * DocumentReferences.
 */
import { api, fhir, localPath, resources } from '../api.js';
import type { UiConfig } from '../config.js';
import { clear, formatDate, h, saveBlob, show } from '../dom.js';
import { errorBox } from '../messages.js';
import { seriesStrip } from './thumbnails.js';

const KOS_FORMAT = '1.2.840.10008.5.1.4.1.1.88.59';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';

let current: any | undefined;

export function patientName(p: any): string {
  const n = p?.name?.[0];
  if (!n) return '';
  if (n.text) return n.text;
  return [(n.given ?? []).join(' '), n.family].filter(Boolean).join(' ');
}

export function identifierText(i: any): string {
  return i?.system ? `${i.system}|${i.value ?? ''}` : `|${i?.value ?? ''}`;
}

export async function openPatient(_config: UiConfig, p: any): Promise<void> {
  current = p;
  if (location.hash === '#/patient') window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = '#/patient';
}

/** EHR deep link: /ui/?patient.identifier=SYSTEM|VALUE opens that patient's list directly. */
export async function openPatientByIdentifier(config: UiConfig, identifier: string): Promise<void> {
  show('Patient', h('p', { class: 'muted' }, 'Looking up the patient…'));
  try {
    const found = resources(await fhir(`Patient?identifier=${encodeURIComponent(identifier)}&_count=10`), 'Patient');
    if (found.length === 1) return openPatient(config, found[0]);
    if (!found.length) {
      show('Patient', h('section', { class: 'card' }, h('h1', {}, 'Patient not found'), h('p', { id: 'no-results', class: 'empty' }, `No patient with identifier ${identifier} (or none you may see).`), h('a', { href: '#/' }, 'Search for a patient')));
      return;
    }
    show('Patient', h('section', { class: 'card' }, h('h1', {}, 'Several patients match'), h('ul', {}, ...found.map((p) => h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => void openPatient(config, p) }, `${patientName(p)} — ${(p.identifier ?? []).map(identifierText).join(', ')}`))))));
  } catch (err) {
    show('Patient', errorBox(err, 'Patient lookup failed'));
  }
}

interface Row {
  key: string;
  kos?: any;
  fhir?: any;
  /** the docref whose fields are shown (KOS one if present) */
  doc: any;
  replacedBy?: Row;
  el?: HTMLElement;
}

function groupRows(docs: any[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const d of docs) {
    const key = d.masterIdentifier?.value ?? d.id;
    const row: Row = byKey.get(key) ?? { key, doc: d };
    if (d.content?.[0]?.format?.code === KOS_FORMAT) row.kos = d;
    else row.fhir = d;
    row.doc = row.kos ?? row.fhir ?? d;
    byKey.set(key, row);
  }
  const rows = [...byKey.values()];
  const byDocId = new Map<string, Row>();
  for (const r of rows) for (const d of [r.kos, r.fhir]) if (d) byDocId.set(`DocumentReference/${d.id}`, r);
  for (const r of rows) {
    for (const d of [r.kos, r.fhir]) {
      for (const rel of d?.relatesTo ?? []) {
        const old = rel.code === 'replaces' ? byDocId.get(rel.target?.reference) : undefined;
        if (old && old !== r) old.replacedBy = r;
      }
    }
  }
  const date = (r: Row) => r.doc.context?.period?.start ?? r.doc.date ?? '';
  return rows.sort((a, b) => date(b).localeCompare(date(a)) || String(b.doc.date ?? '').localeCompare(String(a.doc.date ?? '')));
}

function accessionOf(d: any): string {
  const sr = (d.context?.related ?? []).find((x: any) => x.type === 'ServiceRequest');
  return sr?.identifier?.value ?? '';
}

function studyUidOf(d: any): string {
  const st = (d.context?.related ?? []).find((x: any) => x.type === 'ImagingStudy');
  return String(st?.identifier?.value ?? '').replace(/^urn:oid:/, '');
}

function modalitiesOf(d: any): string[] {
  return [...new Set((d.context?.event ?? []).flatMap((e: any) => e.coding ?? []).filter((c: any) => c.system === DCM).map((c: any) => String(c.code)))] as string[];
}

function statusCell(r: Row, focusRow: (r: Row) => void): HTMLElement {
  const s = String(r.doc.status);
  const label = s === 'entered-in-error' ? 'entered in error' : s;
  const cell = h('td', { 'data-label': 'Status' }, h('span', { class: `badge status-${s}` }, label));
  if (s === 'superseded') {
    if (r.replacedBy) {
      const target = r.replacedBy;
      cell.append(' ', h('button', { type: 'button', class: 'link replaced-by', onclick: () => focusRow(target) }, `replaced by “${target.doc.description ?? 'a later manifest'}”${target.doc.date ? ` of ${formatDate(target.doc.date)}` : ''}`));
    } else cell.append(' ', h('span', { class: 'muted' }, '(no successor)'));
  }
  return cell;
}

async function download(path: string, accept: string, filename: string, msg: HTMLElement): Promise<void> {
  clear(msg);
  try {
    const r = await api(localPath(path), { headers: { accept } });
    saveBlob(await r.blob(), filename);
  } catch (err) {
    msg.append(errorBox(err, 'Download failed'));
  }
}

function viewerHref(config: UiConfig, studyUid: string, bundle: any): string | undefined {
  if (config.viewerUrl && studyUid) return config.viewerUrl.replace(/\{study\}/g, encodeURIComponent(studyUid));
  const ep = resources(bundle, 'Endpoint').find((e: any) => e.connectionType?.code === 'ihe-iid' && e.address);
  return ep?.address;
}

function actions(config: UiConfig, r: Row, msg: HTMLElement): { cell: HTMLElement; setBundle: (b: any) => void } {
  const sop = String(r.doc.masterIdentifier?.value ?? r.key).replace(/^urn:oid:/, '');
  const viewer = h('span', { class: 'viewer' });
  const set = (b: any) => {
    const href = viewerHref(config, studyUidOf(r.doc), b);
    clear(viewer);
    if (href) viewer.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer', class: 'button' }, 'Open in viewer'));
  };
  set(undefined);
  const docrefs = h(
    'details',
    { class: 'docrefs' },
    h('summary', {}, 'DocumentReferences'),
    ...[r.kos, r.fhir].filter(Boolean).map((d) => h('div', {}, h('h4', {}, d.content?.[0]?.format?.code === KOS_FORMAT ? 'KOS DocumentReference' : 'FHIR DocumentReference'), h('pre', {}, JSON.stringify(d, null, 2)))),
  );
  const cell = h(
    'td',
    { 'data-label': 'Actions' },
    h(
      'div',
      { class: 'actions' },
      viewer,
    r.kos ? h('button', { type: 'button', class: 'dl-kos', onclick: () => void download(r.kos.content[0].attachment.url, 'application/dicom', `manifest-${sop}.dcm`, msg) }, 'Download KOS') : null,
    r.fhir ? h('button', { type: 'button', class: 'dl-fhir', onclick: () => void download(r.fhir.content[0].attachment.url, 'application/fhir+json', `manifest-${sop}.json`, msg) }, 'Download FHIR') : null,
      docrefs,
    ),
  );
  return { cell, setBundle: set };
}

/** Fetch the FHIR manifest (ITI-68) for counts, series and the viewer Endpoint; the gateway says which form was submitted. */
async function loadManifest(r: Row): Promise<{ bundle: any; source: string }> {
  const d = r.fhir ?? r.kos;
  const url = r.fhir?.content?.[0]?.attachment?.url ?? String(d.content[0].attachment.url).replace('/Binary/kos-', '/Bundle/mado-');
  const resp = await api(localPath(url), { headers: { accept: 'application/fhir+json' } });
  const source = resp.headers.get('x-manifest-source') ?? '';
  return { bundle: await resp.json(), source: source === 'kos' ? 'KOS' : source === 'fhir' ? 'FHIR' : '?' };
}

function manifestRows(config: UiConfig, r: Row, focusRow: (r: Row) => void): HTMLElement {
  const d = r.doc;
  const counts = h('td', { class: 'counts', 'data-label': 'Series / instances' }, '…');
  const source = h('td', { class: 'source', 'data-label': 'Source' }, '…');
  const mods = h('td', { 'data-label': 'Modalities' }, modalitiesOf(d).join(', '));
  const strip = h('td', { colspan: 8, class: 'series-cell' });
  const msg = h('div', { class: 'row-msg', 'aria-live': 'polite' });
  const act = actions(config, r, msg);
  const body = h(
    'tbody',
    { class: 'manifest', 'data-status': d.status, 'data-study': studyUidOf(d), tabindex: -1 },
    h(
      'tr',
      { class: 'info' },
      h('td', { 'data-label': 'Study date' }, formatDate(d.context?.period?.start)),
      h('td', { 'data-label': 'Description' }, d.description ?? d.content?.[0]?.attachment?.title ?? ''),
      mods,
      h('td', { 'data-label': 'Accession' }, accessionOf(d)),
      counts,
      statusCell(r, focusRow),
      source,
      act.cell,
    ),
    h('tr', { class: 'series-row' }, strip),
  );
  strip.append(msg);
  r.el = body;
  loadManifest(r).then(
    ({ bundle, source: src }) => {
      const study = resources(bundle, 'ImagingStudy')[0];
      const series: any[] = study?.series ?? [];
      const nInst = study?.numberOfInstances ?? series.reduce((n, s) => n + (s.numberOfInstances ?? s.instance?.length ?? 0), 0);
      counts.textContent = `${study?.numberOfSeries ?? series.length} / ${nInst}`;
      source.textContent = src;
      if (study?.modality?.length) mods.textContent = study.modality.map((m: any) => m.code).join(', ');
      act.setBundle(bundle);
      strip.prepend(seriesStrip(study));
    },
    (err) => {
      counts.textContent = '—';
      source.textContent = '—';
      if (d.status !== 'entered-in-error') msg.append(errorBox(err, 'Manifest could not be read'));
    },
  );
  return body;
}

export async function patientView(config: UiConfig): Promise<void> {
  if (!current) {
    location.hash = '#/';
    return;
  }
  const p = current;
  const list = h('div', { id: 'manifests', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading manifests…'));
  show(
    patientName(p) || 'Patient',
    h(
      'section',
      { class: 'card patient' },
      h('h1', { id: 'patient-name' }, patientName(p) || '(no name)'),
      h('p', { class: 'ids' }, (p.identifier ?? []).map(identifierText).join(' · '), p.birthDate ? ` · born ${formatDate(p.birthDate)}` : '', p.gender ? ` · ${p.gender}` : ''),
    ),
    list,
  );
  let docs: any[];
  try {
    const b = await fhir(`DocumentReference?patient=${encodeURIComponent(`Patient/${p.id}`)}&status=current,superseded,entered-in-error&_count=100`);
    docs = resources(b, 'DocumentReference');
  } catch (err) {
    clear(list);
    list.append(errorBox(err, 'Manifests could not be listed'));
    return;
  }
  clear(list);
  const rows = groupRows(docs);
  if (!rows.length) {
    list.append(h('p', { class: 'empty' }, 'No imaging manifests for this patient.'));
    return;
  }
  const focusRow = (r: Row) => {
    r.el?.scrollIntoView({ block: 'center' });
    r.el?.focus();
  };
  const head = ['Study date', 'Description', 'Modalities', 'Accession', 'Series / instances', 'Status', 'Source', 'Actions'];
  list.append(
    h('h2', {}, `Imaging manifests (${rows.length})`),
    h(
      'table',
      { class: 'list manifests' },
      h('caption', { class: 'sr-only' }, 'Imaging manifests of this patient'),
      h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col' }, t)))),
      ...rows.map((r) => manifestRows(config, r, focusRow)),
    ),
  );
}
