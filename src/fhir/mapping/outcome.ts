import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { ValidationIssue } from '../../model/manifest.js';

/** FHIR issue-type code for our GW_* codes (OperationOutcome.issue.code, required binding). */
function issueType(code: string): OperationOutcomeIssue['code'] {
  if (/MISSING|REQUIRED/.test(code)) return 'required';
  if (/UNRESOLVED/.test(code)) return 'not-found';
  if (/INVARIANT|MADO_/.test(code)) return 'invariant';
  if (/BAD_|INVALID|FORMAT|DATE|UID/.test(code)) return 'value';
  if (/LEGACY|INFO/.test(code)) return 'informational';
  return 'processing';
}

/** ValidationIssue[] → OperationOutcome; `expression` = [path] when a path is known. An empty list gives one "information: ok". */
export function issuesToOperationOutcome(issues: ValidationIssue[]): OperationOutcome {
  const out: OperationOutcomeIssue[] = issues.map((i) => {
    const x: OperationOutcomeIssue = {
      severity: i.severity,
      code: issueType(i.code),
      details: { coding: [{ system: 'urn:mado-gateway:issue-code', code: i.code }], text: i.message },
    };
    if (i.path) x.expression = [i.path];
    return x;
  });
  if (!out.length) out.push({ severity: 'information', code: 'informational', details: { text: 'No issues found' } });
  return { resourceType: 'OperationOutcome', issue: out };
}
