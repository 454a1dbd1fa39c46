/**
 * `mado-gateway` command line (contract "Command line"). Exit codes: 0 success, 1 invalid input,
 * 2 usage error, 3 runtime failure.
 */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';

const USAGE = `usage: mado-gateway <command> [options]

commands:
  serve                              start the gateway (what npm start runs)
  migrate                            run database migrations and exit
  kos2fhir FILE.dcm [--base-url URL] print the MADO FHIR document Bundle for a KOS
  fhir2kos FILE.json -o OUT.dcm      write a KOS from a MADO FHIR Bundle (or legacy List form)
  validate FILE                      validate a KOS or FHIR manifest (exit 0 valid, 1 invalid)
  import PATH... --url BASE          bulk-ingest files/folders into a running gateway
  publish --url BASE (--study UID... | --since YYYYMMDD | --all) [--upstream NAME] [--concurrency N]
                                     have a running gateway publish manifests built from its upstream
  hash-password                      read a password on stdin, print a hash for auth.basic
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => serve,
  migrate: async () => migrate,
  kos2fhir: async () => (await import('./cli/convert.js')).runKos2Fhir,
  fhir2kos: async () => (await import('./cli/convert.js')).runFhir2Kos,
  validate: async () => (await import('./cli/convert.js')).runValidate,
  import: async () => (await import('./cli/import.js')).runImport,
  publish: async () => (await import('./cli/publish.js')).runPublish,
  'hash-password': async () => (await import('./cli/hash-password.js')).runHashPassword,
};

async function serve(): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const { startServer } = await import('./server.js');
  const running = await startServer(config, log);
  log.info({ fhir: `${config.publicBaseUrl}/fhir`, dicomweb: `${config.publicBaseUrl}/dicomweb`, listen: running.url }, 'mado-gateway ready');
  process.stdout.write(`mado-gateway listening on ${running.url}\n  FHIR:     ${config.publicBaseUrl}/fhir\n  DICOMweb: ${config.publicBaseUrl}/dicomweb\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      running.close().then(resolve, (err) => {
        log.error({ err: String(err) }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function migrate(): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const { openDatabase } = await import('./server.js');
  const { migrateLatest } = await import('./store/migrate.js');
  const { db, embedded } = await openDatabase(config, log);
  try {
    const { applied } = await migrateLatest(db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    return 0;
  } finally {
    await db.destroy();
    await embedded?.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`mado-gateway: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mado-gateway: configuration error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`mado-gateway: ${(err as Error)?.message ?? String(err)}\n`);
    return 3;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`mado-gateway: ${String(err)}\n`);
    process.exit(3);
  },
);
