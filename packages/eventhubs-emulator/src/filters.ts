/**
 * Start positions of consumer links. The client sends an `apache.org:selector-filter:string`
 * whose text is a comparison on one annotation, e.g. `amqp.annotation.x-opt-offset > '-1'`
 * (earliest), `> '@latest'`, `x-opt-sequence-number >= '42'`, `x-opt-enqueued-time > '<ms>'`.
 */
import type { PartitionLog } from './partitionLog.js';

export const SELECTOR_FILTER_KEY = 'apache.org:selector-filter:string';
export const SELECTOR_FILTER_DESCRIPTOR = 0x0000468c00000004;

export type StartPosition =
  | { kind: 'offset'; offset: string; inclusive: boolean }
  | { kind: 'sequence'; sequenceNumber: number; inclusive: boolean }
  | { kind: 'time'; ms: number; inclusive: boolean };

export class FilterError extends Error {
  override name = 'FilterError';
  constructor(
    message: string,
    readonly condition: string,
  ) {
    super(message);
  }
}

const EXPR = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>|=)\s*'([^']*)'\s*$/;

/** Parses one selector expression; throws FilterError with `amqp:not-implemented` for anything else. */
export function parseSelector(expression: string): StartPosition {
  const m = EXPR.exec(expression);
  if (!m) throw new FilterError(`unsupported selector filter: ${expression}`, 'amqp:not-implemented');
  const [, field, op, value] = m as unknown as [string, string, string, string];
  // '=' appears in older clients' inclusive filters; it means "from this one on".
  const inclusive = op !== '>';
  if (field === 'x-opt-offset') return { kind: 'offset', offset: value, inclusive };
  if (!/^-?\d+$/.test(value)) throw new FilterError(`${field} needs a whole number, got '${value}'`, 'com.microsoft:argument-error');
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new FilterError(`${field} value out of range: '${value}'`, 'com.microsoft:argument-out-of-range');
  if (field === 'x-opt-sequence-number') return { kind: 'sequence', sequenceNumber: n, inclusive };
  return { kind: 'time', ms: n, inclusive };
}

/** The first sequence number a receiver starting at `pos` gets. Throws FilterError when invalid. */
export function resolveStart(log: PartitionLog, pos: StartPosition | undefined): number {
  const begin = log.beginSequenceNumber;
  const end = log.endSequenceNumber;
  if (pos === undefined) return begin;
  switch (pos.kind) {
    case 'offset': {
      if (pos.offset === '-1') return begin;
      if (pos.offset === '@latest') return end;
      const seq = log.sequenceOfOffset(pos.offset);
      if (seq === undefined) {
        throw new FilterError(
          `the offset '${pos.offset}' was not issued by partition ${log.partitionId}`,
          'com.microsoft:argument-out-of-range',
        );
      }
      return Math.max(begin, pos.inclusive ? seq : seq + 1);
    }
    case 'sequence': {
      const start = pos.inclusive ? pos.sequenceNumber : pos.sequenceNumber + 1;
      if (start > end) {
        throw new FilterError(
          `The supplied sequence number '${pos.sequenceNumber}' is invalid. The last sequence number in the system is '${end - 1}'`,
          'com.microsoft:argument-out-of-range',
        );
      }
      return Math.max(begin, start);
    }
    case 'time':
      return log.startAfterTime(pos.inclusive ? pos.ms - 1 : pos.ms);
  }
}
