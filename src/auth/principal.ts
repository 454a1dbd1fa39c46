/**
 * Who is calling, as every route sees it (`req.principal`), and the one question search and
 * retrieval code asks of it: which patients may this caller see? The answer is applied inside
 * the SQL (never as a post-filter) so totals and paging never reveal hidden resources.
 *
 * src/auth/ authenticates requests and fills req.principal; until a request has been
 * authenticated (or when no authentication is configured — loopback only, see config.ts) the
 * principal is LOOPBACK_PRINCIPAL, which may see everything.
 */
export { LOOPBACK_PRINCIPAL, patientFilter, type PatientFilter, type Principal, type Role } from '../model/access.js';
import { LOOPBACK_PRINCIPAL, type Principal } from '../model/access.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
    }
  }
}

/** The request's principal (LOOPBACK_PRINCIPAL when authentication is not configured). */
export function principalOf(req: { principal?: Principal }): Principal {
  return req.principal ?? LOOPBACK_PRINCIPAL;
}
