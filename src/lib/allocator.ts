import { readFileSync } from 'node:fs';
import { flushCompileCache, getCompileCacheDir } from 'node:module';
import { getHeapSpaceStatistics } from 'node:v8';

// Which malloc the process runs on: bin/ringmaster preloads jemalloc when Debian's libjemalloc2
// is installed (RINGMASTER_MALLOC=system opts out). Logged at start, so that an operator
// comparing memory between hosts can see it.

/** 'jemalloc' when a jemalloc library is mapped into the process (per its /proc maps), else 'system'. */
export function allocatorOf(maps: string): 'jemalloc' | 'system' {
  return /\/libjemalloc\.so[.\d]*$/m.test(maps) ? 'jemalloc' : 'system';
}

export function mallocInUse(): 'jemalloc' | 'system' | 'unknown' {
  try {
    return allocatorOf(readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return 'unknown';
  }
}

/** How V8 collects garbage: on the main thread (bin/ringmaster on one CPU, or RINGMASTER_GC=single) or with helper threads. */
export function gcMode(execArgv: readonly string[] = process.execArgv): 'single-threaded' | 'parallel' {
  return execArgv.includes('--single-threaded-gc') ? 'single-threaded' : 'parallel';
}

/** Whether V8 may create an allocation site's objects straight in the old generation (bin/ringmaster turns it off; RINGMASTER_PRETENURING=on leaves it on). */
export function pretenuring(execArgv: readonly string[] = process.execArgv): 'off' | 'on' {
  return execArgv.includes('--no-allocation-site-pretenuring') ? 'off' : 'on';
}

/** The young generation's fixed semi-space in MB (bin/ringmaster, RINGMASTER_NEW_SPACE_MB), or 'auto' when V8 sizes it. */
export function newSpaceMb(execArgv: readonly string[] = process.execArgv): number | 'auto' {
  const flag = execArgv.find((a) => a.startsWith('--min-semi-space-size='));
  return flag === undefined ? 'auto' : Number(flag.slice(flag.indexOf('=') + 1));
}

/** The size V8 has given its young generation so far, in MB (what a fixed semi-space is seen to do). */
export function newSpaceCommittedMb(): number {
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return young === undefined ? 0 : Math.round(young.space_size / 2 ** 20);
}

/** Where Node keeps the stripped and compiled code of ringmaster's modules (bin/ringmaster sets it), or 'off'. */
export function compileCache(): string {
  return getCompileCacheDir() ?? 'off';
}

/** Writes what the compile cache has gathered so far, so a process that is killed later still leaves it for the next start. */
export function saveCompileCache(): void {
  flushCompileCache();
}
