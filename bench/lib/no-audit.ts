import type { SecurityParts } from '../../src/auth/index.js';

/** Builds the app without the audit recorder: a baseline that isolates the audit trail's cost. */
export const NO_AUDIT: SecurityParts = { makeAuditRecorder: () => undefined };
