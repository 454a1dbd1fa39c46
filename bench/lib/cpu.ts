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

/** cutime + cstime (fields 16, 17): CPU of children that exited and were waited for (e.g. closed PostgreSQL backends). */
function waitedChildrenCpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[13]) + Number(rest[14])) * 10;
  } catch {
    return 0;
  }
}

/** Parent pid of a process (/proc/PID/stat field 4). */
export function parentPid(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Summed CPU ms of a process and its live children, e.g. one PostgreSQL cluster: the postmaster
 * and its backends (other clusters on the machine are not counted), including backends that
 * exited during the measurement.
 */
export function cpuMsOfTree(root: number): number {
  let sum = cpuMs(root) + waitedChildrenCpuMs(root);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (parentPid(Number(d)) === root) sum += cpuMs(Number(d));
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
