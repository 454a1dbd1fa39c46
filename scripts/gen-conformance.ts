/**
 * CONFORMANCE.md from the same registry as the CapabilityStatement (src/fhir/registry.ts), so the
 * document states exactly what is implemented. Everything from the `<!-- dicomweb -->` marker on is
 * hand-written (DICOMweb section) and kept verbatim. test/unit/search-conformance.test.ts fails
 * when the file is stale. Run: npx tsx scripts/gen-conformance.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';
import { loadConfig } from '../src/config.js';
import { buildCapabilityStatement } from '../src/fhir/capability.js';
import { resourceRegistry } from '../src/fhir/registry.js';
import { SORTS } from '../src/fhir/search/params.js';
import { createLogger } from '../src/log.js';
import { fhirModules } from '../src/modules.js';
import { createDb } from '../src/store/db.js';

export const MARKER = '<!-- dicomweb -->';
export const CONFORMANCE_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../CONFORMANCE.md');

let mounted = false;
/** Mount every FHIR module on a throw-away router so each registers its capabilities (no I/O). */
export function registerAll(): void {
  if (mounted) return;
  mounted = true;
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://conformance@127.0.0.1:1/none' });
  const db = createDb({ url: config.databaseUrl!, poolMax: 1 });
  const router = Router();
  for (const m of fhirModules) m(router, { config, db, log: createLogger('silent'), version: 'conformance' });
  void db.destroy();
}

const esc = (s: string | undefined) => (s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');

const POLICIES = `## Search behaviour (all types)

- **GET and POST**: \`GET [type]?…\` and \`POST [type]/_search\` (application/x-www-form-urlencoded; URL and body parameters combined), ITI-67 §2:3.67.4.1.2.
- **Formats**: JSON and XML (\`_format=json|xml\` or \`Accept\`), ITI TF-2 App. Z.6; 406 otherwise.
- **Tokens**: \`system|value\`, \`|value\` (no system), \`value\` (any system), \`system|\` (any value). Comma = OR (at most 100 values per parameter), repetition = AND, \`\\\\,\` escapes a comma. Surrounding double quotes are stripped (MADO IG examples, decisions.md D17). UIDs match as \`urn:oid:<uid>\` or bare, UUIDs as \`urn:uuid:<uuid>\` or bare with hex digits in either case (decisions.md D14). \`format\` matches on the code whatever the system (decisions.md D4).
- **Person names of authors** (\`author.given\`, \`author.family\`, \`source.given\`, \`source.family\`): by default each given/family value starts with the search value after both are folded (Unicode compatibility decomposition, accents removed, case folded, whitespace trimmed); \`:exact\` is the whole value, case- and accent-sensitive (FHIR 3.1.1.4.7). Only contained Practitioner, Patient or RelatedPerson resources the reference points at resolve.
- **Patient identity**: \`patient.identifier\`, \`subject:identifier\`, \`patient:identifier\` need \`system|value\` (or \`|value\` for an identifier without an issuer); a bare value is refused with 400, because a Patient ID means nothing without its issuer.
- **Dates**: prefixes \`eq ne lt gt le ge sa eb\` with FHIR precision semantics (\`2024\` = the whole year). Values without a zone are UTC. \`period\` is an interval; a period with only a start (MADO gives the study start) is that instant. \`ge\`/\`lt\` on \`period\` give MHD's serviceStopTimeFrom/serviceStartTimeTo overlap.
- **Status**: DocumentReference and ImagingStudy searches leave out entered-in-error unless \`status\` asks for it.
- **Unknown parameters**, and the parameters listed as not supported per type, are ignored and reported in an OperationOutcome entry (\`search.mode = outcome\`, severity warning); with \`Prefer: handling=strict\` they are a 400. Unsupported chains and \`_has\` are always 400. Invalid values are 400 naming the parameter (\`issue.expression\`). A search answers 200 with 0..n matches.
- **Paging**: \`_count\` (default and maximum from config \`search.defaultCount\` / \`search.maxCount\`; above the maximum the page is clamped and a warning is added). \`next\` links carry an opaque keyset cursor (sort key values + id): rows inserted while a client pages never shift pages, nothing is skipped or repeated. Links are absolute on \`PUBLIC_BASE_URL\`.
- **Totals**: \`_total=none\` (default, no total), \`estimate\` (planner estimate), \`accurate\` (COUNT); \`_summary=count\` / \`_count=0\` return the total only.
- **Sorting**: \`_sort\` takes one or more comma-separated keys of those listed per type, each ascending or \`-\`descending (e.g. \`_sort=-date,_lastUpdated\`); the id is always the last tiebreak, so the order is total and the keyset cursor pages any combination without skipping or repeating. A key missing from a resource sorts as the earliest instant. An unknown or repeated key is a 400 naming \`_sort\`. Default \`-_lastUpdated\`.
- **\`_elements\`**: top-level elements, marked SUBSETTED. **\`_include\` / \`_revinclude\`**: the values listed per type; at most 1,000 included resources per page, and a warning when that cap applies (never silent).
- **Authorisation**: every query and read carries the caller's patient filter inside the SQL; a resource of another patient is 404 on read and absent from searches and totals.
- **Reads** carry \`ETag: W/"versionId"\` and \`Last-Modified\`; \`If-None-Match\` → 304.

## Security: scopes and audit

- **Discovery**: \`GET /.well-known/smart-configuration\` (also under \`/fhir/\`) from the configured IdP's discovery document; the CapabilityStatement's \`rest.security\` carries the SMART \`oauth-uris\` extension. Tokens: JWT (verified locally) or opaque (RFC 7662 introspection, IUA ITI-102).
- **Scope forms honoured**: SMART v2 \`patient|user|system/<Type|*>.<c r u d s>\`; SMART v1 \`.read\`, \`.write\`, \`.*\`; SMART v2 granular \`<context>/DocumentReference.<perm>?category=…\`, \`?type=…\`, \`?security-label=…\` and \`<context>/ImagingStudy.<perm>?modality=…\` (token values \`system|code\`, \`code\` or \`system|\`; comma = any of, \`&\` = all of; several granular scopes = any of; a plain scope of the same reach lifts the narrowing). A granular scope narrows search results and totals, reads, ITI-68 (the document content follows the DocumentReference scopes) and DICOMweb (QIDO-RS, WADO-RS) inside the SQL: outside it is a 404. A query with any other parameter makes the scope grant nothing. IHE IUA \`ITI-65\` … \`ITI-68\`; the RAD-107 scope (config \`auth.rad107Scope\`) for DICOMweb.
- **Confidentiality**: documents labelled \`R\` or \`V\` (HL7 v3 Confidentiality, \`DocumentReference.securityLabel\`) are visible only to the roles in \`auth.confidentiality\` (default radiologists) or under break-glass (audited); otherwise they are absent from searches and totals and 404 on read, ITI-68 and DICOMweb.
- **Audit profiles** (\`meta.profile\` of each AuditEvent of a successful request; one AuditEvent per patient concerned): ITI-65 \`IHE.MHD.ProvideBundle.Audit.Recipient\` (DCM 110107 Import; patient, submission set, documents); ITI-67 \`IHE.MHD.FindDocumentReferences.Audit.Responder\` and ITI-66 \`IHE.MHD.FindDocumentLists.Audit.Responder\` (BALP PatientQuery: type \`rest\`, subtypes search-type + transaction + DCM 110112 Query; base64 of the raw request in \`entity[query].query\`, or of its SHA-256 with \`audit.storeQuery: hash\`); ITI-68 \`IHE.MHD.RetrieveDocument.Audit.Responder\` (BALP PatientRead: subtypes read + ITI-68 + DCM 110106 Export; document and patient); other reads and searches \`IHE.BasicAudit.PatientRead\` / \`Read\` / \`PatientQuery\` / \`Query\` (MHD 4.2.x, BALP 1.1.x). RAD-107 (DCM 110104), QIDO-RS (DCM 110112) and STOW-RS (DCM 110107) follow DICOM PS3.15 A.5 without a FHIR profile; failures (BALP profiles fix outcome 0) and 401/403 (DCM 110113 Security Alert) claim none.

## ITI-68 Retrieve Document

\`GET /fhir/Binary/{id}\` (KOS, \`application/dicom\`) and \`GET /fhir/Bundle/{id}\` (MADO FHIR manifest, \`application/fhir+json\`) are the \`attachment.url\` of the two DocumentReferences of each manifest.

- \`Accept\` (or \`_format\`): \`application/dicom\`, \`application/fhir+json\`, \`application/fhir+xml\`; \`*/*\` or no Accept gives the URL's own form. The stored (native) form is returned byte-identical; the other form is produced by the MADO mapping function (KOS → FHIR Bundle, FHIR → KOS). 406 when nothing acceptable can be produced (also when a FHIR manifest cannot be expressed as a KOS).
- 404 unknown or not visible to the caller; **410 Gone for entered-in-error**; superseded documents stay retrievable (200), because ITI-67 still lists them with \`status=superseded\` and their URLs must resolve.
- \`ETag\` per representation, \`Vary: Accept\`, \`If-None-Match\` → 304.
`;

export function renderConformance(existing?: string): string {
  registerAll();
  const cs = buildCapabilityStatement('{PUBLIC_BASE_URL}', 'n/a', {});
  const lines: string[] = [
    '# Conformance',
    '',
    '<!-- Generated by scripts/gen-conformance.ts from the resource registry (the same source as GET /fhir/metadata). Do not edit above the dicomweb marker; run `npx tsx scripts/gen-conformance.ts`. -->',
    '',
    `FHIR ${cs.fhirVersion}, formats ${(cs.format ?? []).join(', ')}. Instantiates:`,
    '',
    ...(cs.instantiates ?? []).map((u) => `- ${u}`),
    '',
    `System interactions: ${(cs.rest?.[0]?.interaction ?? []).map((i) => i.code).join(', ') || 'none'}.`,
    ...(cs.rest?.[0]?.operation?.length ? ['', `System operations: ${cs.rest[0].operation.map((o) => `\`$${o.name}\` (${o.definition})${o.documentation ? ` — ${esc(o.documentation)}` : ''}`).join('; ')}.`] : []),
    '',
    '## Resources',
    '',
    '| Resource | Interactions | Profile |',
    '|---|---|---|',
    ...resourceRegistry.map((r) => `| ${r.type} | ${r.interactions.join(', ')} | ${[r.profile, ...(r.supportedProfiles ?? [])].filter(Boolean).join('<br>')} |`),
    '',
  ];
  for (const r of resourceRegistry) {
    if (!r.searchParams.length) continue;
    lines.push(`### ${r.type} search parameters`, '', '| Name | Type | Modifiers | Notes |', '|---|---|---|---|');
    for (const p of r.searchParams) lines.push(`| \`${p.name}\` | ${p.type} | ${(p.modifiers ?? []).map((m) => `:${m}`).join(' ')} | ${esc(p.documentation)}${p.definition ? ` (${p.definition})` : ''} |`);
    if (r.unsupportedSearchParams?.length) {
      lines.push('', 'Not supported (ignored with a warning; 400 with `Prefer: handling=strict`):', '');
      for (const p of r.unsupportedSearchParams) lines.push(`- \`${p.name}\` (${p.type}${p.definition ? `, ${p.definition}` : ''}): ${p.reason}`);
    }
    if (SORTS[r.type]) lines.push('', `_sort keys: ${Object.keys(SORTS[r.type]!).map((x) => `\`${x}\``).join(', ')}`);
    if (r.searchInclude?.length) lines.push('', `_include: ${r.searchInclude.map((x) => `\`${x}\``).join(', ')}`);
    if (r.searchRevInclude?.length) lines.push('', `_revinclude: ${r.searchRevInclude.map((x) => `\`${x}\``).join(', ')}`);
    lines.push('');
  }
  const ops = resourceRegistry.flatMap((r) => (r.operations ?? []).map((o) => ({ type: r.type, ...o })));
  if (ops.length) {
    lines.push('## Operations', '');
    for (const o of ops) lines.push(`### \`POST /fhir/${o.type}/$${o.name}\``, '', o.documentation, '');
  }
  lines.push(POLICIES);
  const tail = existing && existing.includes(MARKER) ? existing.slice(existing.indexOf(MARKER)) : `${MARKER}\n\n## DICOMweb\n\n(Hand-written section maintained with the DICOMweb routes.)\n`;
  return `${lines.join('\n')}\n${tail}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const existing = fs.existsSync(CONFORMANCE_PATH) ? fs.readFileSync(CONFORMANCE_PATH, 'utf8') : undefined;
  fs.writeFileSync(CONFORMANCE_PATH, renderConformance(existing));
  console.log(`wrote ${CONFORMANCE_PATH}`);
  process.exit(0);
}
