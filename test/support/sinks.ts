import type { DeadLetterRecord, DeadLetterSink } from '../../src/pipeline/types.js';

/** A DeadLetterSink for tests: keeps what it is given; can be told to fail. */
export class RecordingDeadLetterSink implements DeadLetterSink {
  readonly records: DeadLetterRecord[] = [];
  failWith: Error | undefined;
  calls = 0;

  send(records: readonly DeadLetterRecord[]): Promise<void> {
    this.calls += 1;
    if (this.failWith) return Promise.reject(this.failWith);
    this.records.push(...records);
    return Promise.resolve();
  }
}
