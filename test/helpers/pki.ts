/**
 * Throw-away X.509 material made with the openssl CLI into a test's temp directory: a CA,
 * certificates it issues, self-signed ones. Valid for one day; files are <name>.key / <name>.pem.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

export function makeCa(dir: string, cn: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', `/CN=${cn}`], dir);
}

/** A certificate signed by the CA of makeCa; `san` e.g. "IP:127.0.0.1,DNS:localhost". */
export function issueCert(dir: string, name: string, subject: string, san?: string): void {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  const args = ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1'];
  if (san) {
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    args.push('-extfile', `${name}.ext`);
  }
  openssl(args, dir);
}

export function selfSignedCert(dir: string, name: string, subject: string, san?: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', subject, ...(san ? ['-addext', `subjectAltName=${san}`] : [])], dir);
}

/** Run make(dir); false when openssl is missing (an error under CI=true, where it must exist). */
export function tryPki(make: () => void): boolean {
  try {
    make();
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`openssl is required under CI: ${(err as Error).message}`);
    return false;
  }
}
