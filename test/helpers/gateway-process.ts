/**
 * Run the real `mado-gateway serve` as a child process (tsx, no build step) and wait until it
 * prints its listening URL. For tests of start-up, shutdown and crash recovery.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface GatewayProcess {
  proc: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `nodeArgs`: extra Node options (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
export function spawnGateway(env: Record<string, string>, args: string[] = ['serve'], nodeArgs: string[] = []): { proc: ChildProcess; output: () => string; exited: Promise<number | null>; ready: Promise<string> } {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        proc.stdout!.off('data', onData);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    exited.then((code) => reject(new Error(`gateway exited with ${code} before listening:\n${out}`)));
  });
  ready.catch(() => {});
  return { proc, output: () => out, exited, ready };
}

export async function startGateway(env: Record<string, string>, nodeArgs: string[] = []): Promise<GatewayProcess> {
  const g = spawnGateway(env, ['serve'], nodeArgs);
  const url = await g.ready;
  return { proc: g.proc, url, output: g.output, exited: g.exited };
}
