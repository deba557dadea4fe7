import { RingmasterError } from '../lib/errors.ts';
import { formatDuration } from '../lib/duration.ts';

// Compile capacity from Little's law: catalogs arrive at nodes / interval per second and each
// holds a JRuby for the compile time, so on average arrival rate × compile time slots are busy.
// Queues stay short only well below 100 % busy, hence a target utilisation.

export type CapacityPlanInput = {
  nodes: number;
  intervalMs: number;
  /** Mean compile time. */
  compileMs: number;
  /** JRuby instances per compiler. */
  slotsPerCompiler: number;
  /** Share of the slots busy on average that is acceptable, 0 < u ≤ 1. Default 0.7. */
  targetUtilisation?: number;
};

export type CapacityPlan = Required<CapacityPlanInput> & {
  catalogsPerSecond: number;
  /** Slots busy on average (L = λW). */
  busySlots: number;
  slotsNeeded: number;
  compilers: number;
  /** One more, so that losing a compiler keeps the target. */
  compilersWithSpare: number;
};

export function planCapacity(input: CapacityPlanInput): CapacityPlan {
  const targetUtilisation = input.targetUtilisation ?? 0.7;
  const problems = [
    input.nodes >= 1 && Number.isFinite(input.nodes) ? undefined : `nodes must be at least 1, not ${input.nodes}`,
    input.intervalMs > 0 && Number.isFinite(input.intervalMs) ? undefined : `the run interval must be positive, not ${input.intervalMs} ms`,
    input.compileMs > 0 && Number.isFinite(input.compileMs) ? undefined : `the compile time must be positive, not ${input.compileMs} ms`,
    Number.isInteger(input.slotsPerCompiler) && input.slotsPerCompiler >= 1 ? undefined : `slots per compiler must be a whole number from 1, not ${input.slotsPerCompiler}`,
    targetUtilisation > 0 && targetUtilisation <= 1 ? undefined : `the target utilisation must be above 0 and at most 1, not ${targetUtilisation}`,
  ].filter((p) => p !== undefined);
  if (problems.length > 0) throw new RingmasterError('RM_CONFIG_INVALID', `capacity plan: ${problems.join('; ')}`);
  const catalogsPerSecond = input.nodes / (input.intervalMs / 1000);
  const busySlots = catalogsPerSecond * (input.compileMs / 1000);
  const slotsNeeded = busySlots / targetUtilisation;
  const compilers = Math.max(1, Math.ceil(slotsNeeded / input.slotsPerCompiler - 1e-9));
  return { ...input, targetUtilisation, catalogsPerSecond, busySlots, slotsNeeded, compilers, compilersWithSpare: compilers + 1 };
}

const fixed = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function describePlan(p: CapacityPlan): string {
  return `${p.nodes} nodes every ${formatDuration(p.intervalMs)} with ${formatDuration(p.compileMs)} compiles: ${fixed(p.catalogsPerSecond)} catalogs/s keep `
    + `${fixed(p.busySlots)} JRubies busy on average; at ${Math.round(p.targetUtilisation * 100)}% utilisation that needs ${Math.ceil(p.slotsNeeded - 1e-9)} JRubies: `
    + `${p.compilers} compiler${p.compilers === 1 ? '' : 's'} of ${p.slotsPerCompiler} (${p.compilersWithSpare} with one spare).`;
}
