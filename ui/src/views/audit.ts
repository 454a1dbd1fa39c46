/**
 * The audit trail (administrators): recent AuditEvents, filterable by patient, user,
 * transaction and date; each row says who, what, when, outcome, break-glass.
 */
import { fhir, resources } from '../api.js';
import { clear, formatDateTime, h, show } from '../dom.js';
import { errorBox } from '../messages.js';

const OUTCOME: Record<string, string> = { '0': 'success', '4': 'minor failure', '8': 'serious failure', '12': 'major failure' };
const TRANSACTIONS = ['', 'ITI-65', 'ITI-66', 'ITI-67', 'ITI-68', 'RAD-107', 'RAD-129', 'STOW-RS', 'read', 'search-type', 'operation'];

function who(e: any): string {
  const users = (e.agent ?? []).filter((a: any) => a.requestor);
  const a = users[0] ?? e.agent?.[0];
  return a?.who?.display ?? a?.who?.identifier?.value ?? a?.altId ?? a?.name ?? '';
}

function what(e: any): string {
  const sub = (e.subtype ?? []).map((c: any) => c.code).join(' ');
  // Referenced resources only (the request id and the query hash are identifiers, not "what")
  const ents = (e.entity ?? []).map((x: any) => x.what?.reference).filter((r: string | undefined) => r && !/^Patient\//.test(r)).slice(0, 3).join(', ');
  return [sub, ents].filter(Boolean).join(' — ');
}

function patientOf(e: any): string {
  const p = (e.entity ?? []).find((x: any) => /^Patient\//.test(x.what?.reference ?? ''));
  return p?.what?.reference ?? '';
}

function breakGlass(e: any): boolean {
  return (e.purposeOfEvent ?? []).some((p: any) => (p.coding ?? []).some((c: any) => c.code === 'BTG')) || (e.agent ?? []).some((a: any) => (a.purposeOfUse ?? []).some((p: any) => (p.coding ?? []).some((c: any) => c.code === 'BTG')));
}

function table(events: any[], query: string): HTMLElement {
  // data-query: which filter these rows answer
  if (!events.length) return h('p', { class: 'empty', 'data-query': query }, 'No audit events match.');
  const rows = events.map((e) =>
    h(
      'tr',
      { class: breakGlass(e) ? 'btg' : '', 'data-outcome': e.outcome },
      h('td', { 'data-label': 'When' }, formatDateTime(e.recorded)),
      h('td', { 'data-label': 'Who', class: 'who' }, who(e)),
      h('td', { 'data-label': 'What', class: 'what' }, what(e)),
      h('td', { 'data-label': 'Patient' }, patientOf(e)),
      h('td', { 'data-label': 'Outcome' }, h('span', { class: `badge outcome-${e.outcome}` }, OUTCOME[e.outcome] ?? e.outcome ?? '')),
      h('td', { 'data-label': 'Break-glass' }, breakGlass(e) ? h('span', { class: 'badge btg' }, 'BREAK-GLASS') : ''),
    ),
  );
  return h(
    'table',
    { class: 'list audit', id: 'audit-events', 'data-query': query },
    h('caption', { class: 'sr-only' }, 'Audit events'),
    h('thead', {}, h('tr', {}, ...['When', 'Who', 'What', 'Patient', 'Outcome', 'Break-glass'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows),
  );
}

function field(id: string, label: string, input: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

let runs = 0;

export async function auditView(): Promise<void> {
  const out = h('div', { id: 'audit-results', 'aria-live': 'polite' });
  const patient = h('input', { id: 'f-patient', type: 'text', placeholder: 'Patient/{id}', autocomplete: 'off' });
  const user = h('input', { id: 'f-user', type: 'text', placeholder: 'user (token subject)', autocomplete: 'off' });
  const tx = h('select', { id: 'f-tx' }, ...TRANSACTIONS.map((t) => h('option', { value: t }, t || 'any')));
  const from = h('input', { id: 'f-from', type: 'date' });
  const to = h('input', { id: 'f-to', type: 'date' });
  const form = h(
    'form',
    { class: 'filters' },
    field('f-patient', 'Patient', patient),
    field('f-user', 'User', user),
    field('f-tx', 'Transaction', tx),
    field('f-from', 'From', from),
    field('f-to', 'To', to),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'),
  );
  const run = async () => {
    const q = new URLSearchParams({ _count: '100' }); // newest first is the server's order
    if (patient.value.trim()) q.set('patient', patient.value.trim());
    if (user.value.trim()) q.set('agent', user.value.trim());
    if (tx.value) q.set('subtype', tx.value);
    if (from.value) q.append('date', `ge${from.value}`);
    if (to.value) q.append('date', `le${to.value}`);
    clear(out);
    out.append(h('p', { class: 'muted' }, 'Loading…'));
    const mine = ++runs;
    try {
      const b = await fhir(`AuditEvent?${q.toString()}`);
      if (mine !== runs) return; // a newer filter was applied meanwhile
      clear(out);
      out.append(table(resources(b, 'AuditEvent'), q.toString()));
    } catch (err) {
      if (mine !== runs) return;
      clear(out);
      out.append(errorBox(err, 'The audit trail could not be read'));
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  show('Audit trail', h('section', { class: 'card' }, h('h1', {}, 'Audit trail'), form), out);
  await run();
}
