/** Fault-injection state, kept apart from the wiring so its bookkeeping is testable. */

export const SERVER_BUSY = 'com.microsoft:server-busy';
export const DETACH_FORCED = 'amqp:link:detach-forced';

export class FaultPlan {
  private readonly rejects = new Map<string, { remaining: number; condition: string }>();
  /** Milliseconds by which deliveries to consumers are held back (0 = none). */
  deliveryDelayMs = 0;

  rejectNextSends(hub: string, n: number, condition = SERVER_BUSY): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a whole number');
    if (n === 0) this.rejects.delete(hub.toLowerCase());
    else this.rejects.set(hub.toLowerCase(), { remaining: n, condition });
  }

  /** Consumes one planned rejection for `hub`, returning its condition, or undefined to let the send through. */
  takeSendRejection(hub: string): string | undefined {
    const key = hub.toLowerCase();
    const r = this.rejects.get(key);
    if (!r) return undefined;
    r.remaining--;
    if (r.remaining <= 0) this.rejects.delete(key);
    return r.condition;
  }

  delayDeliveries(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('ms must be a non-negative number');
    this.deliveryDelayMs = ms;
  }

  clear(): void {
    this.rejects.clear();
    this.deliveryDelayMs = 0;
  }
}
