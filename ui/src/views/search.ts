/**
 * Patient search: by business identifier (system|value), by name, or by study (Accession Number
 * or Study Instance UID, through ImagingStudy with its patient included).
 */
import { fhir, resources } from '../api.js';
import type { UiConfig } from '../config.js';
import { clear, formatDate, h, show } from '../dom.js';
import { errorBox } from '../messages.js';
import { openPatient, patientName, identifierText } from './patient.js';

type Mode = 'identifier' | 'name' | 'study';

const HINT: Record<Mode, string> = {
  identifier: 'system|value, e.g. urn:oid:1.2.3.4|12345 (|value for an identifier without issuer)',
  name: 'family or given name (starts with)',
  study: 'Accession Number or Study Instance UID',
};

let lastMode: Mode = 'identifier';
let lastTerm = '';
let searches = 0;

async function find(mode: Mode, term: string): Promise<any[]> {
  if (mode === 'identifier') return resources(await fhir(`Patient?identifier=${encodeURIComponent(term)}&_count=50`), 'Patient');
  if (mode === 'name') return resources(await fhir(`Patient?name=${encodeURIComponent(term)}&_count=50`), 'Patient');
  const b = await fhir(`ImagingStudy?identifier=${encodeURIComponent(term)}&_include=ImagingStudy:patient&_count=50`);
  const seen = new Map<string, any>();
  for (const p of resources(b, 'Patient')) seen.set(p.id, p);
  return [...seen.values()];
}

function resultsTable(config: UiConfig, patients: any[], term: string): HTMLElement {
  // data-term: which search these results answer (a later answer never hides behind an earlier one)
  if (!patients.length) return h('p', { class: 'empty', id: 'no-results', 'data-term': term }, 'No patient found (or none you may see).');
  const rows = patients.map((p) =>
    h(
      'tr',
      {},
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => void openPatient(config, p) }, patientName(p) || '(no name)')),
      h('td', {}, (p.identifier ?? []).map(identifierText).join(', ')),
      h('td', {}, formatDate(p.birthDate)),
      h('td', {}, p.gender ?? ''),
    ),
  );
  return h(
    'table',
    { class: 'list', id: 'patients', 'data-term': term },
    h('caption', { class: 'sr-only' }, 'Patients found'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Identifiers'), h('th', { scope: 'col' }, 'Birth date'), h('th', { scope: 'col' }, 'Sex'))),
    h('tbody', {}, ...rows),
  );
}

export function searchView(config: UiConfig): void {
  const out = h('div', { id: 'search-results', 'aria-live': 'polite' });
  const select = h(
    'select',
    { id: 'search-mode', name: 'mode' },
    h('option', { value: 'identifier' }, 'Patient identifier'),
    h('option', { value: 'name' }, 'Patient name'),
    h('option', { value: 'study' }, 'Study (accession or UID)'),
  );
  select.value = lastMode;
  const input = h('input', { id: 'search-term', name: 'term', type: 'search', required: true, autocomplete: 'off', value: lastTerm, 'aria-describedby': 'search-hint' });
  const hint = h('p', { id: 'search-hint', class: 'hint' }, HINT[lastMode]);
  select.addEventListener('change', () => {
    hint.textContent = HINT[select.value as Mode];
  });
  const form = h(
    'form',
    { class: 'search', role: 'search' },
    h('label', { for: 'search-mode' }, 'Search by'),
    select,
    h('label', { for: 'search-term', class: 'sr-only' }, 'Search term'),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    lastMode = select.value as Mode;
    lastTerm = input.value.trim();
    clear(out);
    out.append(h('p', { class: 'muted' }, 'Searching…'));
    const term = lastTerm;
    const mine = ++searches;
    find(lastMode, term).then(
      (ps) => {
        if (mine !== searches) return; // a newer search was started meanwhile
        clear(out);
        out.append(resultsTable(config, ps, term));
      },
      (err) => {
        if (mine !== searches) return;
        clear(out);
        out.append(errorBox(err, 'Search failed'));
      },
    );
  });
  show('Patients', h('section', { class: 'card' }, h('h1', {}, 'Find a patient'), form, hint), out);
  input.focus();
}
