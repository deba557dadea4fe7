import { spawn, type ChildProcess } from 'node:child_process';
import { access, stat, constants } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { systemClock, type Clock, type TimerHandle } from '../../lib/clock.ts';
import { formatDuration } from '../../lib/duration.ts';

// puppetserver's policy executable contract: argv[1] is the certname, stdin is the PEM CSR, exit 0
// signs and anything else leaves the request pending. puppetserver waits forever for it inside the
// CSR request; here a timeout bounds it, and every failure becomes "don't sign" with a reason,
// because a broken policy script must never turn into a 500 for the agent.

export const defaultExecutableTimeoutMs = 10_000;
export const defaultKillGraceMs = 2_000;
export const defaultMaxOutputBytes = 64 * 1024;

export type PolicyExecutableOptions = {
  path: string;
  certname: string;
  csrPem: string;
  timeoutMs?: number;
  /** How long SIGTERM gets before the process group is sent SIGKILL. */
  killGraceMs?: number;
  /** Cap for each of stdout and stderr; the rest is read and dropped. */
  maxOutputBytes?: number;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
};

export type PolicyExecutableResult = {
  sign: boolean;
  reason: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
};

type Capture = { text(): string };

function capture(stream: Readable | null, max: number): Capture {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = 0;
  // Reading on past the cap keeps the pipe drained, so a chatty script cannot block on write.
  stream?.on('data', (chunk: Buffer) => {
    const room = max - kept;
    if (room > 0) {
      const part = chunk.subarray(0, room);
      chunks.push(part);
      kept += part.length;
    }
    dropped += chunk.length - Math.min(chunk.length, Math.max(room, 0));
  });
  stream?.on('error', () => undefined);
  return {
    text: () => {
      const text = Buffer.concat(chunks).toString('utf8');
      return dropped > 0 ? `${text}\n[${dropped} more bytes not kept]` : text;
    },
  };
}

function positiveOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

async function unusableReason(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return 'is not a regular file';
    await access(path, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
    if (code === 'EACCES') return 'is not executable';
    return `cannot be used (${code ?? String(err)})`;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // The script was started as a group leader, so this also reaches whatever it started itself
    // (a `sleep`, a curl to an inventory service) instead of leaving them holding our pipes.
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Runs the policy executable; never rejects. */
export async function runPolicyExecutable(options: PolicyExecutableOptions): Promise<PolicyExecutableResult> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = positiveOr(options.timeoutMs, defaultExecutableTimeoutMs);
  const graceMs = positiveOr(options.killGraceMs, defaultKillGraceMs);
  const maxOutput = positiveOr(options.maxOutputBytes, defaultMaxOutputBytes);
  // Resolved so that a bare name is never looked up on PATH.
  const path = resolve(options.path);
  const label = `policy executable ${path}`;
  const started = clock.now();
  const refused = (reason: string): PolicyExecutableResult => ({
    sign: false, reason: `${label} ${reason}`, exitCode: null, signal: null, timedOut: false,
    durationMs: clock.now() - started, stdout: '', stderr: '',
  });

  const problem = await unusableReason(path);
  if (problem !== undefined) return refused(problem);

  let child: ChildProcess;
  try {
    child = spawn(path, [options.certname], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: options.env ?? process.env,
      windowsHide: true,
    });
  } catch (err) {
    return refused(`could not be started: ${(err as Error).message}`);
  }

  const stdout = capture(child.stdout, maxOutput);
  const stderr = capture(child.stderr, maxOutput);

  return new Promise<PolicyExecutableResult>((resolveResult) => {
    const timers: TimerHandle[] = [];
    let settled = false;
    let timedOut = false;

    const finish = (result: PolicyExecutableResult): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) t.cancel();
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.stdin?.destroy();
      resolveResult(result);
    };

    const finishExited = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      const base = {
        exitCode, signal, timedOut, durationMs: clock.now() - started, stdout: stdout.text(), stderr: stderr.text(),
      };
      if (timedOut) {
        finish({ ...base, sign: false, reason: `${label} timed out after ${formatDuration(timeoutMs)}` });
      } else if (exitCode === 0) {
        finish({ ...base, sign: true, reason: `${label} exited 0` });
      } else if (exitCode !== null) {
        finish({ ...base, sign: false, reason: `${label} exited ${exitCode}` });
      } else {
        finish({ ...base, sign: false, reason: `${label} was killed by ${signal ?? 'a signal'}` });
      }
    };

    child.on('error', (err) => {
      // Spawn failures arrive here (the file changed after the checks above); errors from signalling
      // a process that is already gone do too, and those change nothing.
      if (child.pid === undefined) finish(refused(`could not be started: ${err.message}`));
    });

    child.on('close', (code, signal) => finishExited(code, signal));

    child.on('exit', (code, signal) => {
      // A script that exits but leaves a background job holding stdout would otherwise keep 'close'
      // from firing until that job ends; its exit status is already the decision.
      timers.push(clock.setTimeout(() => finishExited(code, signal), Math.min(graceMs, 500)));
    });

    timers.push(clock.setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      timers.push(clock.setTimeout(() => {
        killGroup(child, 'SIGKILL');
        // Something outside the group may still hold the pipes; stop waiting for it.
        timers.push(clock.setTimeout(() => finishExited(null, 'SIGKILL'), graceMs));
      }, graceMs));
    }, timeoutMs));

    // A script that decides without reading its stdin closes the pipe under us; that EPIPE is
    // expected and must not surface as an unhandled 'error'.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.csrPem);
  });
}
