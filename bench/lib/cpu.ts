/**
 * CPU accounting for benches: utime + stime from /proc (Linux). Wall-clock figures on a shared
 * 2-core machine are noisy; CPU milliseconds per request or per manifest show where the work goes.
 */
import fs from 'node:fs';

/** utime + stime of one process in ms (/proc/PID/stat fields 14 and 15; USER_HZ 100). */
export function cpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return 0; // process gone
  }
}

/** Summed CPU ms of every live process whose command name is `name` (e.g. all PostgreSQL backends). */
export function cpuMsByName(name: string): number {
  let sum = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')) === name) sum += cpuMs(Number(d));
    } catch {
      // raced with exit
    }
  }
  return sum;
}

/** This process's own CPU ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
