/**
 * What every feature module is given (passed in, never global): the frozen config, the
 * database, the logger. Its own file so feature modules need not import the app that mounts them.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Db } from './store/db.js';

export interface AppDeps {
  config: Readonly<Config>;
  db: Db;
  log: Logger;
  version: string;
}
