/**
 * The emulator's namespace model: hubs, their partitions (each a PartitionLog) and consumer groups.
 * Names are case-insensitive as on the service, but reported as declared.
 */
import { PartitionLog, type RetentionLimits } from './partitionLog.js';

export interface EmulatorHubSpec {
  name: string;
  partitions: number;
  /** Extra consumer groups; '$Default' always exists. */
  consumerGroups?: string[];
}

export interface Hub {
  readonly name: string;
  readonly createdAtMs: number;
  readonly partitions: PartitionLog[];
  /** lower-cased name → declared name */
  readonly consumerGroups: Map<string, string>;
  roundRobin: number;
}

export const DEFAULT_CONSUMER_GROUP = '$Default';
const HUB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/;
const GROUP_NAME = /^(\$Default|[A-Za-z0-9][A-Za-z0-9._-]{0,49})$/i;

export function validateHubSpec(spec: EmulatorHubSpec): void {
  if (!HUB_NAME.test(spec.name)) throw new RangeError(`invalid event hub name '${spec.name}'`);
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 1024) {
    throw new RangeError(`hub '${spec.name}': partitions must be a whole number from 1 to 1024`);
  }
  for (const g of spec.consumerGroups ?? []) {
    if (!GROUP_NAME.test(g)) throw new RangeError(`hub '${spec.name}': invalid consumer group name '${g}'`);
  }
}

export interface HubFactoryOptions {
  opaqueOffsets: boolean;
  retention: RetentionLimits | undefined;
  now: () => number;
}

export function createHub(spec: EmulatorHubSpec, opts: HubFactoryOptions): Hub {
  validateHubSpec(spec);
  const consumerGroups = new Map<string, string>([[DEFAULT_CONSUMER_GROUP.toLowerCase(), DEFAULT_CONSUMER_GROUP]]);
  for (const g of spec.consumerGroups ?? []) consumerGroups.set(g.toLowerCase(), g);
  const partitions: PartitionLog[] = [];
  for (let i = 0; i < spec.partitions; i++) {
    partitions.push(new PartitionLog({ partitionId: String(i), opaqueOffsets: opts.opaqueOffsets, retention: opts.retention, now: opts.now }));
  }
  return { name: spec.name, createdAtMs: opts.now(), partitions, consumerGroups, roundRobin: 0 };
}

/** What a link address names. */
export type Address =
  | { kind: 'cbs' }
  | { kind: 'management' }
  | { kind: 'hub'; hub: string }
  | { kind: 'partition'; hub: string; partitionId: string }
  | { kind: 'consumer'; hub: string; consumerGroup: string; partitionId: string }
  | { kind: 'unknown'; address: string };

/** Parses a link address (`$cbs`, `$management`, `hub`, `hub/Partitions/0`, `hub/ConsumerGroups/cg/Partitions/0`). */
export function parseAddress(address: string | undefined): Address {
  if (address === undefined) return { kind: 'unknown', address: '' };
  // Some clients send the full URI (amqps://host/hub/...); only the path matters.
  const path = address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*\//i, '').replace(/^\/+|\/+$/g, '');
  const lower = path.toLowerCase();
  if (lower === '$cbs') return { kind: 'cbs' };
  if (lower === '$management' || /^[^/]+\/\$management$/.test(lower)) return { kind: 'management' };
  const parts = path.split('/');
  if (parts.length === 1 && parts[0]) return { kind: 'hub', hub: parts[0] };
  if (parts.length === 3 && parts[1]?.toLowerCase() === 'partitions' && parts[0] && parts[2]) {
    return { kind: 'partition', hub: parts[0], partitionId: parts[2] };
  }
  if (parts.length === 5 && parts[1]?.toLowerCase() === 'consumergroups' && parts[3]?.toLowerCase() === 'partitions' && parts[0] && parts[2] && parts[4]) {
    return { kind: 'consumer', hub: parts[0], consumerGroup: parts[2], partitionId: parts[4] };
  }
  return { kind: 'unknown', address };
}
