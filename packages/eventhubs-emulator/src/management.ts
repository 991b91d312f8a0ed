/**
 * `$management` READ requests: hub and partition properties with the AMQP types the client expects
 * (timestamps, longs, an array of strings). Pure: returns the reply to send.
 */
import rhea from 'rhea';
import type { Hub } from './hubs.js';
import type { PartitionLog } from './partitionLog.js';

const { types } = rhea;

export interface ManagementReply {
  status: number;
  description: string;
  condition?: string;
  /** rhea-typed AMQP value for the body (an amqp-value section). */
  body?: unknown;
}

export interface ManagementRequest {
  operation: unknown;
  type: unknown;
  name: unknown;
  partition: unknown;
}

export function partitionProperties(hub: Hub, log: PartitionLog): Record<string, unknown> {
  const last = log.last();
  return {
    name: types.wrap_string(hub.name),
    type: types.wrap_string('com.microsoft:partition'),
    partition: types.wrap_string(log.partitionId),
    begin_sequence_number: types.wrap_long(log.beginSequenceNumber),
    last_enqueued_sequence_number: types.wrap_long(last ? last.sequenceNumber : -1),
    last_enqueued_offset: types.wrap_string(last ? last.offset : '-1'),
    last_enqueued_time_utc: types.wrap_timestamp(last ? last.enqueuedTimeMs : 0),
    is_partition_empty: types.wrap_boolean(log.size === 0),
  };
}

export function hubProperties(hub: Hub): Record<string, unknown> {
  return {
    name: types.wrap_string(hub.name),
    type: types.wrap_string('com.microsoft:eventhub'),
    created_at: types.wrap_timestamp(hub.createdAtMs),
    partition_count: types.wrap_int(hub.partitions.length),
    partition_ids: types.wrap_array(
      hub.partitions.map((p) => p.partitionId),
      0xa1,
      undefined,
    ),
  };
}

/** Answers a READ; `findHub` looks a hub up case-insensitively. */
export function handleManagementRequest(req: ManagementRequest, findHub: (name: string) => Hub | undefined): ManagementReply {
  if (req.operation !== 'READ') {
    return { status: 501, description: `operation '${String(req.operation)}' is not supported by the emulator`, condition: 'amqp:not-implemented' };
  }
  if (typeof req.name !== 'string') return { status: 400, description: 'the request names no event hub', condition: 'com.microsoft:argument-error' };
  const hub = findHub(req.name);
  if (!hub) return { status: 404, description: `The messaging entity '${req.name}' could not be found.`, condition: 'amqp:not-found' };
  if (req.type === 'com.microsoft:eventhub') {
    return { status: 200, description: 'OK', body: types.wrap_map(hubProperties(hub)) };
  }
  if (req.type === 'com.microsoft:partition') {
    const id = typeof req.partition === 'string' || typeof req.partition === 'number' ? String(req.partition) : '';
    const log = hub.partitions.find((p) => p.partitionId === id);
    if (!log) {
      return {
        status: 400,
        description: `The specified partition '${id}' is invalid for event hub '${hub.name}'. It should be between 0 and ${hub.partitions.length - 1}.`,
        condition: 'com.microsoft:argument-out-of-range',
      };
    }
    return { status: 200, description: 'OK', body: types.wrap_map(partitionProperties(hub, log)) };
  }
  return { status: 400, description: `unknown entity type '${String(req.type)}'`, condition: 'com.microsoft:argument-error' };
}
