/**
 * `mado-gateway hash-password`: reads a password from stdin and prints the scrypt hash to put in
 * GATEWAY_CONFIG auth.basic[].passwordHash. Secrets never appear in the config in clear.
 */
import { randomBytes, scryptSync } from 'node:crypto';

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function runHashPassword(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!password) {
    process.stderr.write('mado-gateway hash-password: no password on stdin\n');
    return 2;
  }
  process.stdout.write(hashPassword(password) + '\n');
  return 0;
}
