/**
 * A throwaway Orthanc (Debian packages orthanc + orthanc-dicomweb) on a free loopback port, after
 * the Debian package: no auth, no DIMSE listener, storage in a temp dir, and
 * DicomWeb.Host set to the real host:port (otherwise RetrieveURL/BulkDataURI name
 * "localhost" and the default port). Under CI=true a missing Orthanc is a failure; elsewhere the
 * caller skips with the reason returned here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ORTHANC_BIN = process.env.ORTHANC_BIN ?? '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = process.env.ORTHANC_DICOMWEB_PLUGIN ?? '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface Orthanc {
  url: string;
  /** DICOMweb base URL (…/dicom-web) */
  dicomweb: string;
  dir: string;
  proc: ChildProcess;
  /** POST /instances; returns the Orthanc instance id */
  upload: (dicom: Buffer) => Promise<string>;
  stop: () => Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Why Orthanc cannot run here, or undefined when it can. */
export function orthancUnavailable(): string | undefined {
  if (!fs.existsSync(ORTHANC_BIN)) return `Orthanc not installed (${ORTHANC_BIN}; apt-get install orthanc orthanc-dicomweb)`;
  if (!fs.existsSync(DICOMWEB_PLUGIN)) return `Orthanc DICOMweb plugin not installed (${DICOMWEB_PLUGIN})`;
  return undefined;
}

/**
 * Start Orthanc, or return { skip } when it is not installed (throws under CI=true).
 * `options.maximumStorageMb` etc. are merged into the configuration.
 */
export async function startOrthanc(extra: Record<string, unknown> = {}): Promise<Orthanc | { skip: string }> {
  const missing = orthancUnavailable();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`CI=true and ${missing}`);
    return { skip: missing };
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orthanc-'));
  const config = {
    Name: 'mado-gateway-test',
    StorageDirectory: path.join(dir, 'db'),
    IndexDirectory: path.join(dir, 'db'),
    Plugins: [DICOMWEB_PLUGIN],
    HttpPort: port,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: false,
    SaveJobs: false,
    HttpThreadsCount: 16,
    HttpCompressionEnabled: true,
    StorageCompression: false,
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: true, WadoRoot: '/wado', Host: `127.0.0.1:${port}`, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full' },
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'orthanc.json'), JSON.stringify(config));
  const log = fs.openSync(path.join(dir, 'orthanc.log'), 'w');
  const proc = spawn(ORTHANC_BIN, [path.join(dir, 'orthanc.json')], { stdio: ['ignore', log, log] });
  const kill = () => {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.once('exit', kill);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`Orthanc exited (${proc.exitCode}):\n${fs.readFileSync(path.join(dir, 'orthanc.log'), 'utf8').slice(-2000)}`);
    try {
      const r = await fetch(`${url}/system`, { signal: AbortSignal.timeout(2000) }); // a port taken by a silent listener must not hang the poll
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      kill();
      throw new Error('Orthanc did not start within 20 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const plugins = (await (await fetch(`${url}/plugins`, { signal: AbortSignal.timeout(10_000) })).json()) as string[];
  if (!plugins.includes('dicom-web')) {
    kill();
    throw new Error(`Orthanc started without the DICOMweb plugin (plugins: ${plugins.join(', ')})`);
  }
  return {
    url,
    dicomweb: `${url}/dicom-web`,
    dir,
    proc,
    upload: async (dicom: Buffer) => {
      const r = await fetch(`${url}/instances`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: new Uint8Array(dicom), signal: AbortSignal.timeout(60_000) });
      const body = (await r.json()) as { ID?: string; Status?: string };
      if (!r.ok || !body.ID) throw new Error(`Orthanc refused an instance: ${r.status} ${JSON.stringify(body)}`);
      return body.ID;
    },
    stop: async () => {
      process.off('exit', kill);
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        // storage is thrown away: SIGKILL (Orthanc's SIGTERM shutdown takes ≈ 3 s)
        kill();
        await exited;
      }
      fs.closeSync(log);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
