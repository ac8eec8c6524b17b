// SeqId: KalamDB's 64-bit Snowflake version id (_seq). Never a JS number: values exceed
// 2^53, so it is held as a bigint and serialised as an exact decimal string.

// The bit layout is the Rust core's (`SeqId`), generated into core-constants.ts.
import { SEQ_ID_EPOCH_MS, SEQ_ID_SEQUENCE_MASK, SEQ_ID_TIMESTAMP_SHIFT, SEQ_ID_WORKER_MASK, SEQ_ID_WORKER_SHIFT } from './core-constants.js';

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

export class SeqId {
  readonly #value: bigint;

  private constructor(value: bigint) {
    if (value < I64_MIN || value > I64_MAX) throw new RangeError(`SeqId out of 64-bit range: ${value}`);
    this.#value = value;
  }

  /**
   * From a bigint, a decimal string, another SeqId, or a safe integer number. A number above
   * 2^53 is refused rather than silently rounded.
   */
  static from(value: SeqId | bigint | string | number): SeqId {
    if (value instanceof SeqId) return value;
    if (typeof value === 'bigint') return new SeqId(value);
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new RangeError(`SeqId ${value} is not a safe integer; pass a string or bigint`);
      return new SeqId(BigInt(value));
    }
    const text = String(value).trim();
    if (!/^-?\d+$/.test(text)) throw new SyntaxError(`not a SeqId: ${JSON.stringify(value)}`);
    return new SeqId(BigInt(text));
  }

  /** Like {@link SeqId.from} but returns null for null/undefined/unparsable input. */
  static tryFrom(value: unknown): SeqId | null {
    if (value === null || value === undefined) return null;
    try {
      return SeqId.from(value as SeqId | bigint | string | number);
    } catch {
      return null;
    }
  }

  toBigInt(): bigint {
    return this.#value;
  }

  /** Exact decimal form; what checkpoints should store. */
  toString(): string {
    return this.#value.toString();
  }

  /** JSON form is the exact decimal string, so `JSON.stringify(checkpoint)` never loses digits. */
  toJSON(): string {
    return this.toString();
  }

  /** Milliseconds since the Unix epoch when this version was written. */
  timestampMillis(): number {
    return Number((this.#value >> SEQ_ID_TIMESTAMP_SHIFT) + SEQ_ID_EPOCH_MS);
  }

  toDate(): Date {
    return new Date(this.timestampMillis());
  }

  workerId(): number {
    return Number((this.#value >> SEQ_ID_WORKER_SHIFT) & SEQ_ID_WORKER_MASK);
  }

  sequence(): number {
    return Number(this.#value & SEQ_ID_SEQUENCE_MASK);
  }

  compareTo(other: SeqId | bigint | string | number): number {
    const b = SeqId.from(other).#value;
    return this.#value < b ? -1 : this.#value > b ? 1 : 0;
  }

  equals(other: SeqId | bigint | string | number): boolean {
    return this.compareTo(other) === 0;
  }
}
