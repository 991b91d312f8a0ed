/**
 * Handler factory for the `partitions` timer (daily, and at start-up). Kept apart from the
 * registration so tests call it as the host does, with their own dependencies and clock.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { maintain, type MaintainDeps } from './maintain.js';
import type { MaintenanceResult } from '../db/partitions.js';

export function makePartitionsTimerHandler(getDeps: () => Promise<MaintainDeps>) {
  return async function partitionsHandler(_timer: Timer, context: InvocationContext): Promise<MaintenanceResult> {
    const r = await maintain(await getDeps());
    context.log(`partitions created=${r.created.length} dropped=${r.dropped.length} kept=${r.kept.length} ${[...r.created, ...r.dropped].join(',')}`);
    // Kept partitions are retried by the next run; say why, where operators look.
    for (const k of r.kept) context.warn(`partitions kept ${k.name}: ${k.reason}`);
    return r;
  };
}
