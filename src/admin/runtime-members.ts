import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { formatProblems } from '../config/load.ts';
import { validateMemberOverlay, type AdminMemberBody, type MemberOverlay } from '../config/schema.ts';
import type { Gateway } from '../gateway/gateway.ts';
import type { GatewayConfig } from '../gateway/config.ts';
import type { Member } from '../pool/member.ts';
import { emptyOverlay, mergeOverlay, sourceOf, withDrain, withMember, withoutMember, type MemberSource } from './overlay.ts';

// The run-time member changes of one running ringmaster: held in memory, saved to
// `<stateDir>/members.json` before they take effect (so an answer of the admin API means the change
// survives a restart), and laid over the file's pools whenever the gateway is (re)configured.
// Changes are applied one at a time, in the order they arrived.

export const membersFile = (stateDir: string): string => join(stateDir, 'members.json');

export type Actor = { by: string };

export class RuntimeMembers {
  readonly path: string;
  #overlay: MemberOverlay;
  #file: GatewayConfig | undefined;
  #gateway: Gateway | undefined;
  #log: Log;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, overlay: MemberOverlay, log: Log) {
    this.path = path;
    this.#overlay = overlay;
    this.#log = log;
  }

  /** Reads `<stateDir>/members.json`; a missing file is an empty overlay, a broken one an error. */
  static async open(stateDir: string, log: Log): Promise<RuntimeMembers> {
    const path = membersFile(stateDir);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new RuntimeMembers(path, emptyOverlay(), log);
      throw new RingmasterError('RM_MEMBERS_FILE_INVALID', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new RingmasterError('RM_MEMBERS_FILE_INVALID', `${path} is not JSON: ${errorMessage(err)}`, { cause: err });
    }
    const result = validateMemberOverlay(parsed);
    if (!result.ok) throw new RingmasterError('RM_MEMBERS_FILE_INVALID', formatProblems(path, result.problems), { details: { problems: result.problems } });
    return new RuntimeMembers(path, result.value, log);
  }

  /**
   * The gateway configuration for this configuration file: its pools with the run-time changes
   * laid over them. Remembers the file's configuration for later changes. Entries the file has
   * overtaken are dropped, logged, and the smaller overlay saved in the background (dropping is
   * repeatable, so a failed save loses nothing).
   */
  effective(file: GatewayConfig): GatewayConfig {
    this.#file = file;
    const merged = mergeOverlay(file.pools, this.#overlay);
    if (merged.dropped.length > 0) {
      for (const d of merged.dropped) this.#log.warn({ pool: d.pool, member: d.member }, `run-time member change dropped: ${d.why}`);
      this.#overlay = merged.overlay;
      this.#serially(() => this.#save(this.#overlay)).catch((err: unknown) => this.#log.error({ code: 'RM_STATE_DIR', err: errorMessage(err) }, 'cannot save run-time member changes'));
    }
    return { ...file, pools: merged.pools };
  }

  /** The gateway that run-time changes are applied to; set once it runs `effective(...)`. */
  attach(gateway: Gateway): void {
    this.#gateway = gateway;
  }

  /** Resolves once every change and save queued so far is done (for a clean stop, and tests). */
  async settled(): Promise<void> {
    await this.#queue;
  }

  sourceOf(pool: string, member: string): MemberSource | undefined {
    return this.#file ? sourceOf(this.#file.pools, this.#overlay, pool, member) : undefined;
  }

  /** Drains (or enables) a member; resolves with the member once the change is saved and live. */
  drain(pool: string, member: string, draining: boolean, actor: Actor): Promise<Member> {
    return this.#change(
      (file) => withDrain(file.pools, this.#overlay, pool, member, draining),
      (gateway) => {
        gateway.pools().get(pool)?.setDraining(member, draining);
        this.#log.info({ pool, member, by: actor.by }, draining ? 'member drained through the admin API' : 'member enabled through the admin API');
        return this.#member(gateway, pool, member);
      },
    );
  }

  /** Adds or replaces a run-time member. */
  put(pool: string, member: string, body: AdminMemberBody, actor: Actor): Promise<{ member: Member; created: boolean }> {
    let created = false;
    return this.#change(
      (file) => {
        const next = withMember(file.pools, this.#overlay, pool, member, body);
        created = next.created;
        return next.overlay;
      },
      (gateway, file) => {
        gateway.reload(this.effective(file));
        this.#log.info({ pool, member, url: body.url, by: actor.by }, created ? 'member added through the admin API' : 'member replaced through the admin API');
        return { member: this.#member(gateway, pool, member), created };
      },
    );
  }

  /** Removes a run-time member; its requests in flight finish (the gateway closes its connections after them). */
  remove(pool: string, member: string, actor: Actor): Promise<Member | undefined> {
    return this.#change(
      (file) => withoutMember(file.pools, this.#overlay, pool, member),
      (gateway, file) => {
        const removed = gateway.pools().get(pool)?.member(member);
        gateway.reload(this.effective(file));
        this.#log.info({ pool, member, inFlight: removed?.inFlight ?? 0, by: actor.by }, 'member removed through the admin API');
        return removed;
      },
    );
  }

  /** Computes the next overlay, saves it, then makes it live; a failed save changes nothing. */
  #change<T>(next: (file: GatewayConfig) => MemberOverlay, apply: (gateway: Gateway, file: GatewayConfig) => T): Promise<T> {
    return this.#serially(async () => {
      const file = this.#file;
      const gateway = this.#gateway;
      if (!file || !gateway) throw new RingmasterError('RM_ADMIN_UNAVAILABLE', 'the gateway is not running yet');
      const overlay = next(file);
      await this.#save(overlay);
      this.#overlay = overlay;
      // A reload may have run while the file was written: apply on top of the newest file.
      return apply(gateway, this.#file ?? file);
    });
  }

  #member(gateway: Gateway, pool: string, member: string): Member {
    const found = gateway.pools().get(pool)?.member(member);
    if (!found) throw new RingmasterError('RM_NOT_FOUND', `pool ${pool} has no member named ${member}`);
    return found;
  }

  async #save(overlay: MemberOverlay): Promise<void> {
    try {
      await writeFileAtomic(this.path, `${JSON.stringify(overlay, null, 2)}\n`);
    } catch (err) {
      throw new RingmasterError('RM_STATE_DIR', `cannot save run-time member changes to ${this.path}: ${errorMessage(err)}`, { cause: err });
    }
  }

  #serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
