/**
 * Validate a manifest: drop or pick a KOS or FHIR file; POST /fhir/$validate runs the ingest
 * rules on it (nothing is stored) and the OperationOutcome is listed: severity, element path,
 * message, code.
 */
import { api } from '../api.js';
import { clear, h, show } from '../dom.js';
import { errorBox } from '../messages.js';

function contentTypeOf(bytes: Uint8Array): string {
  // DICOM Part 10: "DICM" after the 128-byte preamble (PS3.10 §7.1)
  if (bytes.length > 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d) return 'application/dicom';
  const first = new TextDecoder().decode(bytes.subarray(0, 64)).replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '<') return 'application/fhir+xml';
  if (first === '{' || first === '[') return 'application/fhir+json';
  return 'application/dicom';
}

function outcomeList(outcome: any): HTMLElement {
  const issues: any[] = outcome?.issue ?? [];
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
  const warnings = issues.filter((i) => i.severity === 'warning').length;
  const summary = h('p', { class: errors ? 'verdict invalid' : 'verdict valid', id: 'verdict' }, errors ? `Invalid: ${errors} error${errors > 1 ? 's' : ''}, ${warnings} warning${warnings === 1 ? '' : 's'}` : `Valid${warnings ? ` with ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`);
  const rows = issues.map((i) =>
    h(
      'tr',
      { class: `sev-${i.severity}` },
      h('td', { 'data-label': 'Severity' }, h('span', { class: `badge sev-${i.severity}` }, i.severity)),
      h('td', { 'data-label': 'Element' }, h('code', {}, (i.expression ?? i.location ?? []).join(', '))),
      h('td', { 'data-label': 'Message' }, i.details?.text ?? i.diagnostics ?? ''),
      h('td', { 'data-label': 'Code' }, h('code', {}, i.details?.coding?.[0]?.code ?? i.code ?? '')),
    ),
  );
  return h(
    'div',
    {},
    summary,
    h(
      'table',
      { class: 'list issues', id: 'issues' },
      h('caption', { class: 'sr-only' }, 'Validation issues'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Severity'), h('th', { scope: 'col' }, 'Element'), h('th', { scope: 'col' }, 'Message'), h('th', { scope: 'col' }, 'Code'))),
      h('tbody', {}, ...rows),
    ),
  );
}

async function validate(file: File, out: HTMLElement): Promise<void> {
  clear(out);
  out.append(h('p', { class: 'muted' }, `Validating ${file.name}…`));
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const r = await api('/fhir/$validate', { method: 'POST', headers: { 'content-type': contentTypeOf(bytes), accept: 'application/fhir+json' }, body: bytes });
    const outcome = await r.json();
    clear(out);
    out.append(h('h2', {}, `Result for ${file.name}`), outcomeList(outcome));
  } catch (err) {
    clear(out);
    out.append(errorBox(err, 'Validation request failed'));
  }
}

export function validateView(): void {
  const out = h('div', { id: 'validation', 'aria-live': 'polite' });
  const input = h('input', { type: 'file', id: 'manifest-file', accept: '.dcm,.json,.xml,application/dicom,application/json,application/fhir+json,application/fhir+xml' });
  input.addEventListener('change', () => {
    const f = input.files?.[0];
    if (f) void validate(f, out);
  });
  const drop = h('div', { class: 'drop', id: 'drop-zone' }, h('p', {}, 'Drop a KOS (.dcm) or a FHIR manifest (.json, .xml) here, or '), input, h('label', { for: 'manifest-file', class: 'button' }, 'choose a file'));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) void validate(f, out);
  });
  show('Validate a manifest', h('section', { class: 'card' }, h('h1', {}, 'Validate a manifest'), h('p', {}, 'The gateway checks the file with the same rules as when it is submitted, and stores nothing.'), drop), out);
}
