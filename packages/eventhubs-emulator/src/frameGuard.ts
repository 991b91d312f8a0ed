/**
 * rhea buffers an incoming AMQP frame until all of the size its header declares has arrived (up to
 * 4 GiB), whoever the peer is: an unauthenticated client could make the emulator hold gigabytes by
 * declaring a huge frame and trickling it. This watches the byte stream beside rhea and says when a
 * frame declares more than the limit, so the connection can be dropped before anything is held.
 * Pure: bytes in, a verdict out.
 */

const HEADER = Buffer.from('AMQP');

export class FrameSizeGuard {
  /** Bytes still to skip: the rest of the current frame or protocol header. */
  private skip = 0;
  /** Bytes of an incomplete frame size or protocol header seen so far. */
  private partial = Buffer.alloc(0);

  constructor(readonly maxFrameSize: number) {}

  /** Feeds received bytes; false when a frame declares more than maxFrameSize. */
  push(chunk: Buffer): boolean {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      const need = 8 - this.partial.length;
      const take = chunk.subarray(off, off + need);
      this.partial = Buffer.concat([this.partial, take]);
      off += take.length;
      if (this.partial.length < 4) continue;
      if (this.partial.subarray(0, 4).equals(HEADER)) {
        // A protocol header (SASL or AMQP): 8 bytes, no size.
        if (this.partial.length < 8) continue;
        this.partial = Buffer.alloc(0);
        continue;
      }
      const size = this.partial.readUInt32BE(0);
      if (size > this.maxFrameSize || size < 8) return false;
      this.skip = size - this.partial.length;
      this.partial = Buffer.alloc(0);
    }
    return true;
  }
}
