import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './lib/atomic-file.ts';

// Files through which the CLI finds and talks to the running `ringmaster serve` of a state
// directory: its pid, the outcome of the last reload it was asked for, and where its admin API
// listens (the port may be kernel-picked, and the CLI must not guess it from the config).

export type ReloadStatus = { generation: number; ok: boolean; at: string; message: string; needsRestart: string[] };

export const pidFile = (stateDir: string): string => join(stateDir, 'ringmaster.pid');
export const reloadStatusFile = (stateDir: string): string => join(stateDir, 'reload-status.json');
export const adminEndpointFile = (stateDir: string): string => join(stateDir, 'admin.json');

/** The admin API of the process `pid`; the CLI trusts it only while that pid is the running serve. */
export type AdminEndpoint = { pid: number; address: string; port: number };

export async function writePid(stateDir: string, pid: number): Promise<void> {
  await writeFileAtomic(pidFile(stateDir), `${pid}\n`);
}

export async function removePid(stateDir: string, pid: number): Promise<void> {
  if ((await readPid(stateDir)) === pid) await rm(pidFile(stateDir), { force: true });
}

export async function readPid(stateDir: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(pidFile(stateDir), 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readReloadStatus(stateDir: string): Promise<ReloadStatus | undefined> {
  try {
    return JSON.parse(await readFile(reloadStatusFile(stateDir), 'utf8')) as ReloadStatus;
  } catch {
    return undefined;
  }
}

export async function writeReloadStatus(stateDir: string, status: ReloadStatus): Promise<void> {
  await writeFileAtomic(reloadStatusFile(stateDir), `${JSON.stringify(status)}\n`);
}

export async function writeAdminEndpoint(stateDir: string, endpoint: AdminEndpoint): Promise<void> {
  await writeFileAtomic(adminEndpointFile(stateDir), `${JSON.stringify(endpoint)}\n`);
}

export async function readAdminEndpoint(stateDir: string): Promise<AdminEndpoint | undefined> {
  try {
    const e = JSON.parse(await readFile(adminEndpointFile(stateDir), 'utf8')) as Partial<AdminEndpoint>;
    if (typeof e.pid !== 'number' || typeof e.address !== 'string' || typeof e.port !== 'number') return undefined;
    return { pid: e.pid, address: e.address, port: e.port };
  } catch {
    return undefined;
  }
}

/** Removes the file only when it is this process's, so a stopping process never hides its successor's. */
export async function removeAdminEndpoint(stateDir: string, pid: number): Promise<void> {
  if ((await readAdminEndpoint(stateDir))?.pid === pid) await rm(adminEndpointFile(stateDir), { force: true });
}
