/**
 * What the IHE audit profiles mark required, as checks over an AuditEvent — transcribed from the
 * profiles' differentials (MHD 4.2.x: IHE.MHD.ProvideBundle.Audit.Recipient,
 * IHE.MHD.FindDocumentReferences.Audit.Responder, IHE.MHD.FindDocumentLists.Audit.Responder,
 * IHE.MHD.RetrieveDocument.Audit.Responder; their BALP 1.1 parents IHE.BasicAudit.Query /
 * PatientQuery / Read / PatientRead), not from the gateway's code. Slices are matched the way the
 * profiles discriminate them (by agent.type / entity.type pattern). Returns the violations found.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from '@medplum/fhirtypes';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const MHD = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/';
const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/';

const has = (cs: Coding[] | undefined, system: string, code: string) => (cs ?? []).some((c) => c.system === system && c.code === code);
const agentsOf = (e: AuditEvent, code: string, system = DCM) => (e.agent ?? []).filter((a) => has(a.type?.coding, system, code));
const entitiesOf = (e: AuditEvent, system: string, code: string) => (e.entity ?? []).filter((x) => x.type?.system === system && x.type?.code === code);
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

type Check = (e: AuditEvent, out: string[]) => void;

function agentSlice(name: string, code: string, opts: { observer?: boolean } = {}): Check {
  return (e, out) => {
    const a: AuditEventAgent[] = agentsOf(e, code);
    if (a.length !== 1) return void out.push(`agent[${name}] (${code}) must occur once, found ${a.length}`);
    if (!a[0]!.who) out.push(`agent[${name}].who 1..1`);
    if (!a[0]!.network) out.push(`agent[${name}].network 1..1`);
    if (opts.observer && !same(a[0]!.who, e.source?.observer)) out.push(`agent[${name}] val-audit-source: who = source.observer`);
  };
}

const userSlice: Check = (e, out) => {
  const u = agentsOf(e, 'IRCP', 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType');
  if (u.length > 1) out.push('agent[user] 0..1');
  for (const a of u) {
    if (!a.who) out.push('agent[user].who 1..1');
    if (a.requestor !== true) out.push('agent[user].requestor = true');
    if (a.network) out.push('agent[user].network 0..0');
  }
};

function patientSlice(required: boolean): Check {
  return (e, out) => {
    const p: AuditEventEntity[] = entitiesOf(e, ENTITY_TYPE, '1');
    if (p.length > 1 || (required && p.length !== 1)) return void out.push(`entity[patient] ${required ? '1..1' : '0..1'}, found ${p.length}`);
    for (const x of p) {
      if (!(x.role?.system === OBJECT_ROLE && x.role.code === '1')) out.push('entity[patient].role = object-role#1');
      if (!/^Patient\//.test(x.what?.reference ?? '')) out.push('entity[patient].what only Reference(Patient)');
    }
  };
}

const transactionSlice: Check = (e, out) => {
  const t = entitiesOf(e, 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType', 'XrequestId');
  if (t.length > 1) out.push('entity[transaction] 0..1');
  if (t.some((x) => !x.what?.identifier?.value)) out.push('entity[transaction].what.identifier.value 1..1');
};

const base = (type: [string, string], action: string, outcome0: boolean): Check => (e, out) => {
  if (!(e.type?.system === type[0] && e.type.code === type[1])) out.push(`type = ${type[0]}#${type[1]}`);
  if (e.action !== action) out.push(`action = ${action}`);
  if (!e.recorded) out.push('recorded 1..1');
  if (!e.outcome) out.push('outcome 1..1');
  if (outcome0 && e.outcome !== '0') out.push('outcome = 0 (BALP: success)');
  if ((e as { modifierExtension?: unknown[] }).modifierExtension?.length) out.push('modifierExtension 0..0');
  if (!e.source?.observer) out.push('source.observer 1..1');
};

const subtypeSlice = (code: string, min = 2): Check => (e, out) => {
  if ((e.subtype ?? []).length < min) out.push(`subtype ${min}..*`);
  if ((e.subtype ?? []).filter((c) => c.system === 'urn:ihe:event-type-code' && c.code === code).length !== 1) out.push(`subtype[${code}] 1..1`);
};

const restful = (codes: string[]): Check => (e, out) => {
  if (!(e.subtype ?? []).some((c) => c.system === 'http://hl7.org/fhir/restful-interaction' && codes.includes(c.code ?? ''))) out.push(`subtype: restful-interaction ${codes.join('|')}`);
};

const querySlice: Check = (e, out) => {
  const q = entitiesOf(e, ENTITY_TYPE, '2').filter((x) => x.role?.system === OBJECT_ROLE && x.role.code === '24');
  if (q.length !== 1) return void out.push(`entity[query] 1..1, found ${q.length}`);
  if (!q[0]!.query) out.push('entity[query].query 1..1');
  if (q[0]!.what) out.push('entity[query].what 0..0');
  if (q[0]!.detail?.length) out.push('entity[query].detail 0..0');
  if (entitiesOf(e, ENTITY_TYPE, '2').length !== 1) out.push('entity type 2 other than the query (query slice discriminated by type)');
};

const dataSlice = (roles: string[]): Check => (e, out) => {
  const d = entitiesOf(e, ENTITY_TYPE, '2');
  if (d.length !== 1) return void out.push(`entity[data] 1..1 (entity.type = System Object), found ${d.length}`);
  if (!d[0]!.what?.reference && !d[0]!.what?.identifier) out.push('entity[data].what 1..1');
  if (!roles.includes(d[0]!.role?.code ?? '')) out.push(`entity[data].role in ${roles.join('|')}`);
};

const submissionSetSlice: Check = (e, out) => {
  const s = entitiesOf(e, ENTITY_TYPE, '2');
  if (s.length !== 1) return void out.push(`entity[submissionSet] 1..1 (entity.type = System Object), found ${s.length}`);
  if (!(s[0]!.role?.system === OBJECT_ROLE && s[0]!.role.code === '20')) out.push('entity[submissionSet].role = object-role#20 Job');
  if (!/^List\//.test(s[0]!.what?.reference ?? '')) out.push('entity[submissionSet].what only Reference(List)');
};

const REST: [string, string] = ['http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest'];
const queryBase = (patient: boolean): Check[] => [base(REST, 'E', true), restful(['search', 'search-type', 'search-system']), agentSlice('client', '110153'), agentSlice('server', '110152'), userSlice, transactionSlice, querySlice, patientSlice(patient)];
const readBase = (patient: boolean): Check[] => [base(REST, 'R', true), restful(['read', 'vread']), agentSlice('client', '110152'), agentSlice('server', '110153'), userSlice, transactionSlice, dataSlice(['3', '4', '20']), patientSlice(patient)];

export const PROFILE_CHECKS: Record<string, Check[]> = {
  [`${BALP}IHE.BasicAudit.Query`]: queryBase(false),
  [`${BALP}IHE.BasicAudit.PatientQuery`]: queryBase(true),
  [`${BALP}IHE.BasicAudit.Read`]: readBase(false),
  [`${BALP}IHE.BasicAudit.PatientRead`]: readBase(true),
  [`${MHD}IHE.MHD.FindDocumentReferences.Audit.Responder`]: [...queryBase(true), subtypeSlice('ITI-67'), agentSlice('server', '110152', { observer: true })],
  [`${MHD}IHE.MHD.FindDocumentLists.Audit.Responder`]: [...queryBase(true), subtypeSlice('ITI-66'), agentSlice('server', '110152', { observer: true })],
  [`${MHD}IHE.MHD.RetrieveDocument.Audit.Responder`]: [...readBase(true), subtypeSlice('ITI-68'), dataSlice(['3']), agentSlice('server', '110153', { observer: true })],
  [`${MHD}IHE.MHD.ProvideBundle.Audit.Recipient`]: [
    base([DCM, '110107'], 'C', false),
    subtypeSlice('ITI-65', 1),
    agentSlice('documentSource', '110153'),
    agentSlice('documentRecipient', '110152', { observer: true }),
    patientSlice(true),
    submissionSetSlice,
  ],
};

/** Violations of every profile the event claims in meta.profile (and "no profile" if none). */
export function profileViolations(e: AuditEvent): string[] {
  const profiles = e.meta?.profile ?? [];
  if (!profiles.length) return ['no meta.profile'];
  const out: string[] = [];
  for (const p of profiles) {
    const checks = PROFILE_CHECKS[p];
    if (!checks) out.push(`unknown profile ${p}`);
    for (const c of checks ?? []) c(e, out);
  }
  return out;
}
