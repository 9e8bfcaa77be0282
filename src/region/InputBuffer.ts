/**
 * One tick's worth of player inputs for one region, as a growable
 * struct-of-arrays batch (no object per input).
 *
 * In-process the gateway pushes straight into the region's buffer; across
 * nodes the gateway sends `toBytes()` as the payload of ONE entity message per
 * (gateway, region, tick) and the region appends it with `appendBytes` (or
 * `InputBuffer.fromBytes`).
 *
 * Wire format (little endian), `INPUT_HEADER_BYTES + count * INPUT_RECORD_BYTES` bytes:
 *   u32 count
 *   count x { u32 entityId, u32 seq, f32 dx, f32 dy, f32 dz, u32 buttons }
 *
 * Values are stored with their wire precision: ids, seqs and buttons as u32
 * (`>>> 0`), directions as f32. A finite direction component beyond the f32
 * range is saturated to +-F32_MAX (never Infinity) so a huge vector keeps its
 * direction; a non-finite component (NaN, +-Infinity: impossible after the
 * gateway's validation) is stored as 0. `fromBytes`/`appendBytes` reject
 * non-finite directions as malformed.
 *
 * Typed arrays are read through the accessors; they are reallocated (doubled)
 * when full, so never hold on to them across `push`.
 */

export const INPUT_HEADER_BYTES = 4
export const INPUT_RECORD_BYTES = 24

const F32_MAX = 3.4028234663852886e38
const DEFAULT_CAPACITY = 64

/** In f32 range: as is; finite beyond it: saturated (keeps the direction); NaN/Infinity: 0. */
const toF32Safe = (v: number): number =>
  v <= F32_MAX && v >= -F32_MAX ? v : Number.isFinite(v) ? (v > 0 ? F32_MAX : -F32_MAX) : 0

export class InputBuffer {
  private n = 0
  private ids: Uint32Array
  private seqs: Uint32Array
  private dxs: Float32Array
  private dys: Float32Array
  private dzs: Float32Array
  private btns: Uint32Array

  constructor(initialCapacity: number = DEFAULT_CAPACITY) {
    const cap = Math.max(1, Math.floor(initialCapacity) || 1)
    this.ids = new Uint32Array(cap)
    this.seqs = new Uint32Array(cap)
    this.dxs = new Float32Array(cap)
    this.dys = new Float32Array(cap)
    this.dzs = new Float32Array(cap)
    this.btns = new Uint32Array(cap)
  }

  /** Number of inputs in the batch. */
  get count(): number {
    return this.n
  }

  /** Current capacity (grows by doubling, never shrinks). */
  get capacity(): number {
    return this.ids.length
  }

  push(entityId: number, seq: number, dx: number, dy: number, dz: number, buttons: number): void {
    const i = this.n
    if (i === this.ids.length) this.grow(i * 2)
    this.ids[i] = entityId >>> 0
    this.seqs[i] = seq >>> 0
    this.dxs[i] = toF32Safe(dx)
    this.dys[i] = toF32Safe(dy)
    this.dzs[i] = toF32Safe(dz)
    this.btns[i] = buttons >>> 0
    this.n = i + 1
  }

  /** Empties the batch, keeping its capacity. */
  clear(): void {
    this.n = 0
  }

  entityId(i: number): number {
    return this.ids[i]!
  }
  seq(i: number): number {
    return this.seqs[i]!
  }
  dx(i: number): number {
    return this.dxs[i]!
  }
  dy(i: number): number {
    return this.dys[i]!
  }
  dz(i: number): number {
    return this.dzs[i]!
  }
  buttons(i: number): number {
    return this.btns[i]!
  }

  /** Byte length of `toBytes()` for the current batch. */
  get byteLength(): number {
    return INPUT_HEADER_BYTES + this.n * INPUT_RECORD_BYTES
  }

  /** Encodes the batch (one allocation: the returned bytes). */
  toBytes(): Uint8Array {
    const n = this.n
    const out = new Uint8Array(INPUT_HEADER_BYTES + n * INPUT_RECORD_BYTES)
    const view = new DataView(out.buffer)
    view.setUint32(0, n, true)
    let o = INPUT_HEADER_BYTES
    for (let i = 0; i < n; i++, o += INPUT_RECORD_BYTES) {
      view.setUint32(o, this.ids[i]!, true)
      view.setUint32(o + 4, this.seqs[i]!, true)
      view.setFloat32(o + 8, this.dxs[i]!, true)
      view.setFloat32(o + 12, this.dys[i]!, true)
      view.setFloat32(o + 16, this.dzs[i]!, true)
      view.setUint32(o + 20, this.btns[i]!, true)
    }
    return out
  }

  /**
   * Validates `bytes` as one encoded batch and appends its inputs (in order)
   * to this buffer. Throws an Error naming the problem on malformed input;
   * on error the buffer is left unchanged.
   */
  appendBytes(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) {
      throw new Error("input batch: expected a Uint8Array")
    }
    const len = bytes.byteLength
    if (len < INPUT_HEADER_BYTES) {
      throw new Error(`input batch: ${len} bytes is shorter than the ${INPUT_HEADER_BYTES}-byte header`)
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, len)
    const count = view.getUint32(0, true)
    const expected = INPUT_HEADER_BYTES + count * INPUT_RECORD_BYTES
    if (len !== expected) {
      throw new Error(
        `input batch: header says ${count} inputs (${expected} bytes) but the payload is ${len} bytes`
      )
    }
    // Validate before mutating so a bad batch leaves the buffer untouched.
    for (let i = 0, o = INPUT_HEADER_BYTES; i < count; i++, o += INPUT_RECORD_BYTES) {
      if (
        !Number.isFinite(view.getFloat32(o + 8, true)) ||
        !Number.isFinite(view.getFloat32(o + 12, true)) ||
        !Number.isFinite(view.getFloat32(o + 16, true))
      ) {
        throw new Error(`input batch: input ${i} has a non-finite direction`)
      }
    }
    const start = this.n
    const needed = start + count
    if (needed > this.ids.length) {
      let cap = this.ids.length
      while (cap < needed) cap *= 2
      this.grow(cap)
    }
    for (let i = 0, o = INPUT_HEADER_BYTES; i < count; i++, o += INPUT_RECORD_BYTES) {
      const j = start + i
      this.ids[j] = view.getUint32(o, true)
      this.seqs[j] = view.getUint32(o + 4, true)
      this.dxs[j] = view.getFloat32(o + 8, true)
      this.dys[j] = view.getFloat32(o + 12, true)
      this.dzs[j] = view.getFloat32(o + 16, true)
      this.btns[j] = view.getUint32(o + 20, true)
    }
    this.n = needed
  }

  /** Decodes one encoded batch; throws an Error naming the problem on malformed input. */
  static fromBytes(bytes: Uint8Array): InputBuffer {
    const count =
      bytes instanceof Uint8Array && bytes.byteLength >= INPUT_HEADER_BYTES
        ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true)
        : 0
    // Size from the real payload, not the (untrusted) header count.
    const fits = bytes instanceof Uint8Array ? Math.floor(bytes.byteLength / INPUT_RECORD_BYTES) : 0
    const buf = new InputBuffer(Math.max(DEFAULT_CAPACITY, Math.min(count, fits)))
    buf.appendBytes(bytes)
    return buf
  }

  private grow(capacity: number): void {
    const n = this.n
    const ids = new Uint32Array(capacity)
    const seqs = new Uint32Array(capacity)
    const dxs = new Float32Array(capacity)
    const dys = new Float32Array(capacity)
    const dzs = new Float32Array(capacity)
    const btns = new Uint32Array(capacity)
    ids.set(this.ids.subarray(0, n))
    seqs.set(this.seqs.subarray(0, n))
    dxs.set(this.dxs.subarray(0, n))
    dys.set(this.dys.subarray(0, n))
    dzs.set(this.dzs.subarray(0, n))
    btns.set(this.btns.subarray(0, n))
    this.ids = ids
    this.seqs = seqs
    this.dxs = dxs
    this.dys = dys
    this.dzs = dzs
    this.btns = btns
  }
}
